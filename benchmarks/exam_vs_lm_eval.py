"""C-Eval val through lm-evaluation-harness and through ``ladder eval``: agreement, accuracy, time.

    .venv/bin/python benchmarks/exam_vs_lm_eval.py --ceval ../shared/data/ceval [--limit 3]
        [--ladder-dtype {auto,float32,bfloat16}] [--work DIR]

lm-eval lives in its own venv (its pins are not Ladder's); make it once with the same torch
and transformers as .venv (last run with lm-eval 0.4.13, torch 2.13.0+cpu, transformers
5.25.0: ``lm-eval run`` is the 0.4.1x command line)::

    python3 -m venv /work/lmeval-venv && /work/lmeval-venv/bin/pip install torch==2.13.0
    /work/lmeval-venv/bin/pip install "lm-eval[hf]" transformers==<.venv's version>

Both sides score the same model pack (a transformers folder), on the same subjects, 0- and
5-shot, with the same batch size and thread count, offline, each as one subprocess timed end
to end (model load included; the load alone is timed separately). lm-eval runs in float32
(the reference); Ladder runs with its own default dtype, ``auto``, unless ``--ladder-dtype``
says otherwise. On CPU ``auto`` measures a float32 and a bfloat16 matmul once and remembers
the faster in ``LADDER_HOME/cpu_profile.json``; the benchmark lets the load-time step make
that measurement once in its own LADDER_HOME and copies the profile into each run's home, so
both shot settings use the same choice, as they would on a user's machine. The dtype Ladder
used (and the profile's timings) is printed with the tables.

lm-eval runs ``benchmarks/lm_eval_tasks/_ceval_local.yaml``, its built-in ``ceval-valid``
task on local CSVs, made to give the model the prompt Ladder gives it (see the YAML): by
default C-Eval's raw text (header, exemplars, question, "答案："), as both tools score an
exam by default; with ``--chat-template`` that text wrapped whole in the model's chat
template as one user message (the suite key ``chat_template: true`` on Ladder's side).
Every question's prompt is compared byte for byte, so the agreement rate compares two
scorers on identical inputs. With the chat template lm-eval's continuation is "\\nA" where
Ladder's is "A" (lm-eval moves the context's trailing newline into the continuation); the
newline's log-probability is the same for all four letters, so the chosen letter is not
affected.

Targets (issue 13), in 0-shot and in 5-shot, with Ladder's default dtype against lm-eval in
float32, in one run: Ladder gives the same answer as lm-eval on >= 99% of the questions, and
Ladder's wall time is <= 0.33x lm-eval's. The questions where the two differ are listed with
both sides' four letter log-probabilities.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

import assistant  # noqa: F401  (offline env first)
from evaluation.suites.subjects import subject_category, subject_zh

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
BASE_TASK = TASKS_DIR / "_ceval_local.yaml"
TASK_UTILS = TASKS_DIR / "ceval_local_utils.py"
LADDER = ROOT / ".venv" / "bin" / "ladder"
LADDER_PYTHON = ROOT / ".venv" / "bin" / "python"
# 2 STEM, 2 Social Science, 1 Humanities, 1 Other; 19 questions each, 5-shot prompts of
# 330-550 tokens, so the whole benchmark takes minutes on two cores.
SUBJECTS = ["computer_network", "middle_school_physics", "high_school_geography", "marxism",
            "ideological_and_moral_cultivation", "basic_medicine"]  # fmt: skip
HEADER = "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"
SENTINEL = "\x00LADDER-USER-MESSAGE\x00"
LETTERS = "ABCD"
DTYPES = ("auto", "float32", "bfloat16")  # Ladder's `dtype` setting; lm-eval always runs float32
AGREE_TARGET = 0.99  # issue 13: same answer as lm-eval on at least 99% of the questions
RATIO_TARGET = 0.33  # issue 13: Ladder's wall time at most 0.33x lm-eval's


@dataclass
class Side:
    """One scorer's run of one shot setting: predicted letter and prompt text per question."""

    wall_s: float
    predicted: dict[str, str | None] = field(default_factory=dict)  # "subject/val/id" -> letter
    prompts: dict[str, str] = field(default_factory=dict)  # the text the model saw
    logprobs: dict[str, list[float]] = field(default_factory=dict)  # the four letters' log-probs
    dtype: str = "float32"  # the dtype the model ran in ("bfloat16 (auto)" when auto chose it)
    cpu_profile: dict[str, Any] | None = None  # Ladder's cpu_profile.json after the run (auto)


# ---- data ---------------------------------------------------------------------------------------
def data_tree(ceval: Path, subjects: Sequence[str], limit: int | None, work: Path) -> Path:
    """The C-Eval tree both sides read: the original, or a copy with the first ``limit`` val rows."""
    if limit is None:
        return ceval
    root = work / "ceval"
    for split in ("val", "dev"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for subject in subjects:
            source = ceval / split / f"{subject}_{split}.csv"
            with source.open(encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            keep = rows if split == "dev" else rows[: limit + 1]
            with (root / split / source.name).open("w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows(keep)
    return root


def answers(tree: Path, subjects: Sequence[str]) -> dict[str, str]:
    out = {}
    for subject in subjects:
        with (tree / "val" / f"{subject}_val.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out[f"{subject}/val/{row['id']}"] = row["answer"].strip()
    return out


class ChatTemplate:
    """The pack's chat template around one user message, as ``HFLocalBackend.render`` applies it."""

    def __init__(self, pack: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(pack)
        # The text before and after the message, for lm-eval's task YAMLs.
        self.head, _, self.tail = self.render(SENTINEL).partition(SENTINEL)

    def render(self, user_message: str) -> str:
        if not self.tokenizer.chat_template:
            return user_message
        messages = [{"role": "user", "content": user_message}]
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


# ---- lm-eval ------------------------------------------------------------------------------------
def write_tasks(tree: Path, subjects: Sequence[str], head: str, tail: str, folder: Path) -> list[str]:
    """One task YAML per subject, including the base task; returns the task names."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(TASK_UTILS, folder / TASK_UTILS.name)  # `!function` resolves next to the YAML
    question = yaml.safe_load(BASE_TASK.read_text(encoding="utf-8"))["doc_to_text"]
    names = []
    for subject in subjects:
        name, zh = f"ceval_local_{subject}", subject_zh(subject)
        files = {split: str(tree / split / f"{subject}_{split}.csv") for split in ("val", "dev")}
        lines = [
            f"include: {json.dumps(str(BASE_TASK))}",
            f"task: {name}",
            "dataset_kwargs:",
            f"  data_files: {json.dumps(files)}",
            "  converters: !function ceval_local_utils.CSV_AS_TEXT",
            "  na_filter: false",
            '  usecols: ["id", "question", "A", "B", "C", "D", "answer"]',  # dev/ adds `explanation`
            f"description: {json.dumps(head + HEADER.format(subject=zh), ensure_ascii=False)}",
            "fewshot_config:",
            "  sampler: first_n",
            f"  doc_to_text: {json.dumps(question, ensure_ascii=False)}",
            f"doc_to_text: {json.dumps(question + tail, ensure_ascii=False)}",
        ]
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        names.append(name)
    return names


def run_lm_eval(args: argparse.Namespace, pack: Path, tasks: list[str], shots: int, work: Path) -> Side:
    out = work / f"lm_eval_{shots}shot"
    shutil.rmtree(out, ignore_errors=True)  # an unfinished earlier run's files
    command = [
        str(args.lm_eval), "run", "--model", "hf",
        "--model_args", f"pretrained={pack},dtype=float32",
        "--tasks", ",".join(tasks), "--include_path", str(work / "tasks"),
        "--num_fewshot", str(shots), "--batch_size", str(args.batch_size), "--device", "cpu",
        "--log_samples", "--output_path", str(out),
    ]  # fmt: skip
    wall = timed_subprocess(command, env_for(args, HF_DATASETS_CACHE=str(work / "hf_datasets")), "lm-eval")
    side = Side(wall)
    for path in sorted(out.rglob("samples_*.jsonl")):
        # samples_<task>_<timestamp>.jsonl, and both task and timestamp hold underscores.
        subject = next(s for s in args.subject_list if path.name.startswith(f"samples_ceval_local_{s}_"))
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            key = f"{subject}/val/{str(sample['doc']['id']).strip()}"
            lls = [float(r[0]) if isinstance(r, list) else float(r) for r in sample["filtered_resps"]]
            side.predicted[key] = LETTERS[max(range(len(lls)), key=lls.__getitem__)]
            side.logprobs[key] = lls
            side.prompts[key] = sample["arguments"]["gen_args_0"]["arg_0"]
    return side


# ---- Ladder -------------------------------------------------------------------------------------
def run_ladder(args: argparse.Namespace, tree: Path, shots: int, chat: ChatTemplate, work: Path) -> Side:
    home = work / f"ladder_home_{shots}shot"
    shutil.rmtree(home, ignore_errors=True)  # an unfinished earlier run's store
    home.mkdir(parents=True)
    (home / "models").symlink_to(args.models_dir, target_is_directory=True)
    measured = work / "ladder_home_load_auto" / "cpu_profile.json"
    if args.ladder_dtype == "auto" and measured.exists():  # auto's choice, made once by load_times
        shutil.copy(measured, home / "cpu_profile.json")
    suite = work / f"ceval_bench_{shots}shot.yaml"
    spec = {"name": "ceval_bench", "kind": "mcq", "format": "ceval", "data": str(tree), "split": "val",
            "subjects": args.subject_list, "k_shot": shots, "metrics": ["accuracy"],
            "chat_template": args.chat_template}  # fmt: skip
    suite.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    report = work / f"ladder_{shots}shot.json"
    command = [
        str(LADDER), "eval", str(suite), "--strategy", "prompt", "--model", args.model,
        "--mode", "logprob", "--no-cache", "--report", str(report),
        "--threads", str(args.threads), "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    # `auto` is Ladder's default: leave LADDER_DTYPE unset, as a user who never set it would.
    dtype = {} if args.ladder_dtype == "auto" else {"LADDER_DTYPE": args.ladder_dtype}
    env = env_for(args, LADDER_HOME=str(home), LADDER_DEVICE="cpu", **dtype)
    side = Side(timed_subprocess(command, env, "ladder eval"))
    side.dtype, side.cpu_profile = ladder_dtype_used(args.ladder_dtype, home)
    for record in json.loads(report.read_text(encoding="utf-8"))["records"]:
        side.predicted[record["item_id"]] = record["scores"]["accuracy"]["detail"].get("predicted")
        if record.get("choice_scores") is not None:
            side.logprobs[record["item_id"]] = [float(x) for x in record["choice_scores"]]
        # What score_choices puts to the model: the record's prompt, through the chat template
        # when the suite asks for it.
        prompt = record["prompt"]
        side.prompts[record["item_id"]] = chat.render(prompt) if args.chat_template else prompt
    return side


def ladder_dtype_used(setting: str, home: Path) -> tuple[str, dict[str, Any] | None]:
    """The dtype Ladder ran in: the setting, or for ``auto`` the choice in ``cpu_profile.json``."""
    if setting != "auto":
        return setting, None
    try:
        profile = json.loads((home / "cpu_profile.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "auto (no cpu_profile.json: not measured on CPU?)", None
    return f"{profile.get('faster', '?')} (auto)", profile


def resumed(path: Path, make: Callable[..., Any], *args: Any) -> Any:
    """``make(*args)`` (a dict or a ``Side``), saved to ``path``; read back when a run saved it."""
    if path.exists():
        print(f"reusing {path}", file=sys.stderr)
        data = json.loads(path.read_text(encoding="utf-8"))
        return Side(**data) if "wall_s" in data else data
    result = make(*args)
    path.write_text(json.dumps(asdict(result) if isinstance(result, Side) else result), encoding="utf-8")
    return result


# ---- processes ----------------------------------------------------------------------------------
def env_for(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    threads = str(args.threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false")
    env.update(
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1"
    )
    env.update(extra)
    return env


def timed_subprocess(command: list[str], env: dict[str, str], label: str) -> float:
    print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{label} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return wall


LOAD_LM_EVAL = """
from lm_eval.models.huggingface import HFLM
HFLM(pretrained={pack!r}, dtype="float32", device="cpu", batch_size={batch})
"""
LOAD_LADDER = """
from assistant.backends.hf.local import HFLocalBackend
from assistant.settings import load_settings
HFLocalBackend({pack!r}, load_settings({{"dtype": {dtype!r}, "device": "cpu", "threads": {threads}}}))
"""


def load_times(args: argparse.Namespace, pack: Path, work: Path) -> dict[str, float]:
    """Seconds for a subprocess that imports each side's stack and loads the model, nothing else.

    Ladder loads with ``--ladder-dtype``; with ``auto`` its LADDER_HOME starts empty, so this
    load makes auto's one measurement (in the load time), and ``run_ladder`` reuses its profile.
    """
    values = {
        "pack": str(pack),
        "batch": args.batch_size,
        "threads": args.threads,
        "dtype": args.ladder_dtype,
    }
    home = work / f"ladder_home_load_{args.ladder_dtype}"
    shutil.rmtree(home, ignore_errors=True)
    env = env_for(args, LADDER_HOME=str(home))
    return {
        "lm-eval": timed_subprocess(
            [str(args.lm_eval_python), "-c", LOAD_LM_EVAL.format(**values)], env, "load"
        ),
        "ladder": timed_subprocess([str(LADDER_PYTHON), "-c", LOAD_LADDER.format(**values)], env, "load"),
    }


# ---- report -------------------------------------------------------------------------------------
def accuracy(predicted: dict[str, str | None], truth: dict[str, str], keys: list[str]) -> float:
    return sum(predicted.get(k) == truth[k] for k in keys) / len(keys) if keys else 0.0


def ladder_dtype_line(args: argparse.Namespace, results: dict[int, tuple[Side, Side]]) -> str:
    """Which dtype Ladder ran in, per shot setting when they differ, with auto's measurement."""
    used = {shots: ladder.dtype for shots, (_lm, ladder) in results.items()}
    text = ", ".join(sorted(set(used.values())))
    if len(set(used.values())) > 1:
        text = ", ".join(f"{shots}-shot {dtype}" for shots, dtype in used.items())
    profiles = [ladder.cpu_profile for _lm, ladder in results.values() if ladder.cpu_profile]
    if profiles:
        p = profiles[0]
        fp32, bf16 = p.get("float32_s", float("nan")), p.get("bfloat16_s", float("nan"))
        text += f" [cpu_profile.json: float32 {fp32:.3f}s, bfloat16 {bf16:.3f}s, key {p.get('key')}]"
    return f"Ladder dtype: --ladder-dtype {args.ladder_dtype} -> {text}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def logprob_gap(lm: Side, ladder: Side, keys: list[str]) -> tuple[float, float] | None:
    """Median and max |Ladder - lm-eval| over every letter log-probability both sides report."""
    gaps = sorted(
        abs(a - b)
        for k in keys
        if k in lm.logprobs and k in ladder.logprobs and len(lm.logprobs[k]) == len(ladder.logprobs[k])
        for a, b in zip(lm.logprobs[k], ladder.logprobs[k], strict=True)
    )
    return (gaps[len(gaps) // 2], gaps[-1]) if gaps else None


def print_tables(args: argparse.Namespace, results: dict[int, tuple[Side, Side]], truth: dict[str, str],
                 loads: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    used = {shots: ladder.dtype for shots, (_lm, ladder) in results.items()}
    summary: dict[str, Any] = {"model": args.model, "lm_eval_dtype": "float32",
                               "ladder_dtype": args.ladder_dtype, "ladder_dtype_used": used,
                               "threads": args.threads, "batch_size": args.batch_size,
                               "chat_template": args.chat_template, "load_s": loads,
                               "targets": {"agreement_min": AGREE_TARGET, "ratio_max": RATIO_TARGET},
                               "shots": {}}  # fmt: skip
    prompt = "through the chat template" if args.chat_template else "raw (no chat template)"
    limit = f", first {args.limit} questions per subject" if args.limit else ""
    print(f"\nC-Eval val, {args.model}, prompts {prompt}, batch size {args.batch_size}, "
          f"{args.threads} threads{limit}")  # fmt: skip
    print("lm-eval dtype: float32")
    print(ladder_dtype_line(args, results) + "\n")
    header = (
        f"{'subject':<34} {'category':<15} {'shots':>5} {'n':>4} {'agree':>7} {'lm-eval':>8} {'Ladder':>8}"
    )
    print(header)
    print("-" * len(header))
    for shots, (lm, ladder) in results.items():
        for subject in args.subject_list:
            keys = sorted(k for k in truth if k.startswith(f"{subject}/"))
            agree = sum(lm.predicted.get(k) == ladder.predicted.get(k) for k in keys) / max(1, len(keys))
            lm_acc, ladder_acc = accuracy(lm.predicted, truth, keys), accuracy(ladder.predicted, truth, keys)
            category = subject_category(subject) or "?"
            print(f"{subject:<34} {category:<15} {shots:>5} {len(keys):>4} {agree:>7.1%} "
                  f"{lm_acc:>8.3f} {ladder_acc:>8.3f}")  # fmt: skip
        print()
    columns = [
        ("shots", 5),
        ("n", 4),
        ("agree", 7),
        ("same prompt", 11),
        ("lm-eval", 7),
        ("Ladder", 7),
        ("diff pts", 8),
        ("lm-eval s", 9),
        ("Ladder s", 8),
        ("ratio", 5),
        ("ratio-load", 10),
        (f"agree>={AGREE_TARGET:.0%}", 9),
        (f"ratio<={RATIO_TARGET:.2f}", 10),
    ]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    passed = True
    for shots, (lm, ladder) in results.items():
        keys = sorted(truth)
        lm_acc, ladder_acc = accuracy(lm.predicted, truth, keys), accuracy(ladder.predicted, truth, keys)
        same_answers = sum(lm.predicted.get(k) == ladder.predicted.get(k) for k in keys)
        agree = same_answers / len(keys)
        same = sum(k in lm.prompts and lm.prompts[k] == ladder.prompts.get(k) for k in keys)
        ratio = ladder.wall_s / lm.wall_s
        compute_ratio = (ladder.wall_s - loads["ladder"]) / max(1e-9, lm.wall_s - loads["lm-eval"])
        points = 100 * (ladder_acc - lm_acc)
        agree_ok, ratio_ok = agree >= AGREE_TARGET, ratio <= RATIO_TARGET
        passed = passed and agree_ok and ratio_ok
        print(f"{shots:>5} {len(keys):>4} {agree:>7.1%} {same:>5}/{len(keys):<5} {lm_acc:>7.3f} "
              f"{ladder_acc:>7.3f} {points:>+8.1f} {lm.wall_s:>9.1f} {ladder.wall_s:>8.1f} {ratio:>5.2f} "
              f"{compute_ratio:>10.2f} {verdict(agree_ok):>9} {verdict(ratio_ok):>10}")  # fmt: skip
        gap = logprob_gap(lm, ladder, keys)
        summary["shots"][shots] = {
            "n": len(keys), "same_answers": same_answers, "agreement": agree, "identical_prompts": same,
            "lm_eval_accuracy": lm_acc, "ladder_accuracy": ladder_acc, "ladder_dtype": ladder.dtype,
            "lm_eval_wall_s": lm.wall_s, "ladder_wall_s": ladder.wall_s, "ratio": ratio,
            "ratio_without_load": compute_ratio, "agreement_pass": agree_ok, "ratio_pass": ratio_ok,
            "logprob_gap_median": gap[0] if gap else None, "logprob_gap_max": gap[1] if gap else None,
        }  # fmt: skip
    print(f"\nmodel load alone (imports + weights, a subprocess each): lm-eval {loads['lm-eval']:.1f}s, "
          f"Ladder {loads['ladder']:.1f}s; ratio = Ladder wall / lm-eval wall; "
          f"ratio-load = (wall - load) Ladder / lm-eval")  # fmt: skip
    for shots, (lm, ladder) in results.items():
        gap = logprob_gap(lm, ladder, sorted(truth))
        if gap:
            print(f"{shots}-shot letter log-probabilities, |Ladder - lm-eval|: median {gap[0]:.4f}, "
                  f"max {gap[1]:.4f}")  # fmt: skip
    print(f"targets (issue 13, Ladder's default dtype against lm-eval float32, both shot settings): "
          f"same answers >= {AGREE_TARGET:.0%}, Ladder wall <= {RATIO_TARGET:.2f}x lm-eval's")  # fmt: skip
    print(f"verdict: {verdict(passed)}"
          + ("" if args.ladder_dtype == "auto" else f" (but with --ladder-dtype {args.ladder_dtype}, "
             "not Ladder's default)"))  # fmt: skip
    summary["passed"] = passed
    return summary


def print_disagreements(results: dict[int, tuple[Side, Side]], truth: dict[str, str]) -> None:
    """Every question where the two sides chose different letters, with both sides' log-probs."""
    for shots, (lm, ladder) in results.items():
        keys = [k for k in sorted(truth) if lm.predicted.get(k) != ladder.predicted.get(k)]
        if not keys:
            continue
        print(f"\n--- {shots}-shot: {len(keys)} question(s) answered differently "
              "(letter log-probabilities A B C D) ---")  # fmt: skip
        for key in keys:
            chosen = f"lm-eval {lm.predicted.get(key)}  Ladder {ladder.predicted.get(key)}"
            print(f"{key}  answer {truth[key]}  {chosen}")
            for name, side in (("lm-eval", lm), ("Ladder", ladder)):
                lls = side.logprobs.get(key)
                text = " ".join(f"{x:9.4f}" for x in lls) if lls else "(not reported)"
                print(f"    {name:<8} {text}")


def print_prompt_evidence(results: dict[int, tuple[Side, Side]]) -> None:
    for shots, (lm, ladder) in results.items():
        key = next(iter(sorted(set(lm.prompts) & set(ladder.prompts))), None)
        if key is None:
            continue
        verdict = "identical" if lm.prompts[key] == ladder.prompts[key] else "DIFFERENT"
        print(f"\n--- {shots}-shot prompt of {key}, lm-eval then Ladder ({verdict}) ---")
        text_lm, text_ladder = lm.prompts[key], ladder.prompts[key]
        if shots:  # the exemplars are long: show the ends
            text_lm, text_ladder = "…" + text_lm[-300:], "…" + text_ladder[-300:]
        print(repr(text_lm))
        print(repr(text_ladder))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ceval", type=Path, required=True, help="C-Eval root (val/ and dev/ CSVs)")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="pack name under LADDER_HOME/models")
    parser.add_argument("--subjects", default=",".join(SUBJECTS))
    parser.add_argument("--shots", default="0,5")
    # lm-eval keeps log-softmaxed logits for every position of a batch: 8 rows of 1,000 tokens
    # with a 152k vocabulary are ~10 GB in float32, twice that at 16.
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N val questions per subject")
    parser.add_argument(
        "--chat-template",
        action="store_true",
        help="wrap each prompt in the model's chat template (both sides)",
    )
    parser.add_argument(
        "--ladder-dtype",
        choices=DTYPES,
        default="auto",
        help="Ladder's dtype (default: auto, Ladder's default); lm-eval always runs float32",
    )
    parser.add_argument("--lm-eval-venv", type=Path, default=Path("/work/lmeval-venv"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "exam_vs_lm_eval.json")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (prompts, logs)")
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder to keep and resume: finished runs are not redone"
    )
    args = parser.parse_args()
    args.subject_list = [s.strip() for s in args.subjects.split(",") if s.strip()]
    args.lm_eval = args.lm_eval_venv / "bin" / "lm_eval"
    args.lm_eval_python = args.lm_eval_venv / "bin" / "python"
    if not args.lm_eval.exists():
        sys.exit(f"no lm_eval at {args.lm_eval}: make the venv as this script's docstring says")
    home = Path(os.environ.get("LADDER_HOME", Path.home() / ".ladder")).expanduser()
    args.models_dir = home / "models"
    pack = args.models_dir / args.model
    if not (pack / "config.json").exists():
        sys.exit(f"no model pack at {pack}: run `ladder models pull {args.model}` first")
    ceval = args.ceval.resolve()
    if args.work is not None:
        args.keep = True
        args.work.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="exam_vs_lm_eval_"))
    try:
        tree = data_tree(ceval, args.subject_list, args.limit, work)
        truth = answers(tree, args.subject_list)
        chat = ChatTemplate(pack)
        head, tail = (chat.head, chat.tail) if args.chat_template else ("", "")
        tasks = write_tasks(tree, args.subject_list, head, tail, work / "tasks")
        dtype = args.ladder_dtype
        loads = resumed(work / f"load_s_{dtype}.json", load_times, args, pack, work)
        results: dict[int, tuple[Side, Side]] = {}
        mode = "chat" if args.chat_template else "raw"
        for shots in (int(s) for s in args.shots.split(",")):
            lm = resumed(
                work / f"lm_eval_{shots}shot_{mode}.json", run_lm_eval, args, pack, tasks, shots, work
            )
            ladder = resumed(
                work / f"ladder_{shots}shot_{mode}_{dtype}.json", run_ladder, args, tree, shots, chat, work
            )
            results[shots] = (lm, ladder)
        summary = print_tables(args, results, truth, loads)
        print_disagreements(results, truth)
        print_prompt_evidence(results)
        summary["sides"] = {shots: {"lm_eval": asdict(lm), "ladder": asdict(ladder)}
                            for shots, (lm, ladder) in results.items()}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    finally:
        if args.keep:
            print(f"\nwork folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
