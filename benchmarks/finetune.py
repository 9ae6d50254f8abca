"""LoRA SFT throughput: Ladder's trainer against plain trl ``SFTTrainer`` + peft baselines.

    .venv/bin/python benchmarks/finetune.py [--model smollm2-135m] [--data DIR_OR_JSONL] [--steps 30]
        [--batch-size 8] [--threads N] [--runs ladder,trl-fast,trl-default] [--repeats 2]

Same pack, same examples, same hyperparameters (LoRA r=16, alpha=32, dropout 0.05 on all
linear layers; AdamW, lr 2e-4, 5% warmup then cosine; batch 8; fp32; seed 0), a fixed number
of optimizer steps, loss on the reply tokens only on both sides (trl: a conversational
prompt-completion dataset, where ``completion_only_loss`` is on by default), and the same
examples in the same batches (the baseline reads them in Ladder's order, sequentially). Each trainer
runs in its own subprocess, so its peak RSS is its own.

- ``ladder``: ``finetune.train.run`` with its defaults (``packed`` batching: no padding, and the
  context a micro-batch's examples have in common computed once).
- ``trl (default)``: ``SFTTrainer`` with trl's defaults (no packing, padding per batch,
  gradient checkpointing on), except what must match (the hyperparameters above, fp32).
- ``trl (no-gc)``: the same with gradient checkpointing off.
- ``trl (fastest)``: trl's fastest configuration: ``packing=True`` with ``packing_strategy="bfd"``
  (best-fit decreasing) and ``padding_free=True`` (each batch one flat row, no padding; the
  attention mask is block-diagonal, from the position ids), gradient checkpointing off. It packs
  the same examples (the ones Ladder trains on, one pass) into rows of ``max_length`` tokens,
  ``rows`` of them a step, ``rows`` chosen so that a step holds about as many tokens as Ladder's
  (batch x mean example length / max_length): a similar number of optimizer steps. Packing
  reorders the examples (by length), so it is shuffled by trl's random sampler.
- ``ladder-bare``: Ladder without accelerate when alone (``distributed.ACCELERATE_ALONE =
  False``): what the accelerate wrapper costs one process (``ladder`` goes through it).

``--repeats`` runs the whole list that many times, interleaved (a, b, c, a, b, c), so load from
other work on the machine hits every trainer alike; the table gives the median run of each (the
lower middle one of an even count) and every run's tokens/s.
Each repeat also times a square fp32 matmul with the same threads (the machine's matmul peak,
measured now) and prints every trainer's training FLOP rate as a share of it. FLOPs per trained
token = 4 * N_body + 6 * N_trainable: forward (2 N) and backward through the activations (2 N)
of the frozen base's transformer layers, plus forward and both backward products (6 N) of the
trained LoRA weights; embeddings, the LM head and the attention scores are left out, so it is a
lower bound of the work, counted alike for every trainer.

Throughput counts the real tokens of the examples trained on (no padding; shared context
counts once per example, as the baseline computes it) per second of the training loop
(after model loading and tokenization). "train loss" is the mean over the last 5 steps; "held-out loss"
is the loss on the reply tokens of 64 examples not trained on, computed by the same code for
every trainer. Target: Ladder >= 1.3x trl's fastest configuration's tokens/s with a held-out loss
no worse.
Other work on the machine makes timings noisy: run it on a quiet one for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import assistant  # noqa: E402, F401  (offline env first)

DEFAULT_DATA = ROOT / "datasets" / "sft" / "support_tickets.jsonl"
HELD_OUT = 64
LORA: dict[str, Any] = {"rank": 16, "alpha": 32, "dropout": 0.05}


def load_rows(path: Path) -> list[list[dict[str, str]]]:
    """Conversations from a prepared folder (train.jsonl), a chat JSONL or an Alpaca JSONL."""
    if path.is_dir():
        path = path / "train.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if "messages" in record:
            rows.append(record["messages"])
        else:  # Alpaca: instruction, a blank line, the input
            prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
            rows.append(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]
            )
    return rows


def held_out_loss(model: Any, tokenizer: Any, rows: list[list[dict[str, str]]]) -> float:
    from finetune.train.batches import evaluate_loss
    from finetune.train.data import encode_chat
    from finetune.train.loop import pad_id_of

    examples = [e for e in (encode_chat(tokenizer, r, 1024) for r in rows) if e is not None]
    return evaluate_loss(model, examples, 8, "padded", pad_id_of(tokenizer), "cpu")


def run_ladder(
    args: argparse.Namespace,
    folder: Path,
    train_rows: list[Any],
    eval_rows: list[Any],
    accelerate: bool = True,
) -> dict[str, Any]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.progress import NullProgress
    from assistant.settings import load_settings
    from finetune.train import distributed
    from finetune.train.config import TrainConfig
    from finetune.train.run import TrainRequest, train

    distributed.ACCELERATE_ALONE = accelerate

    class Clock(NullProgress):
        def __init__(self) -> None:
            self.start_s = self.end_s = 0.0
            self.losses: list[float] = []

        def start(self, stage: str, total: float | None = None, unit: str = "items") -> None:
            if stage == "training":
                self.start_s = time.perf_counter()

        def metrics(self, step: int, total: int, values: dict[str, float]) -> None:
            self.losses.append(values["train_loss"])
            self.end_s = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "train.jsonl").write_text(
            "".join(json.dumps({"messages": r}) + "\n" for r in train_rows), "utf-8"
        )
        settings = load_settings(
            {"home": str(Path(tmp) / "home"), "threads": args.threads, "dtype": "float32"}
        )
        config = TrainConfig(
            max_steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=0.05,
            max_seq_len=args.max_seq_len,
            min_examples=1,
            checkpoint_every=0,
            seed=0,
            batching=args.batching,
            **LORA,
        )
        clock = Clock()
        result = train(TrainRequest(str(folder), data, "bench", config), settings, progress=clock)
        seconds = clock.end_s - clock.start_s
        tokens = int(result.manifest["results"]["tokens_seen"])
        base = AutoModelForCausalLM.from_pretrained(folder)
        model = PeftModel.from_pretrained(base, str(result.path))
        loss = held_out_loss(model, AutoTokenizer.from_pretrained(folder), eval_rows)
    return {"tokens": tokens, "seconds": seconds, "losses": clock.losses, "held_out_loss": loss}


def ladder_order(n: int, batch_size: int, steps: int) -> list[int]:
    """The examples Ladder's trainer takes, in order, epoch after epoch, for ``steps`` batches."""
    from finetune.train.batches import epoch_batches

    order: list[int] = []
    epoch = 0
    while len(order) < steps * batch_size:
        order += [i for batch in epoch_batches([0] * n, batch_size, "packed", 0, epoch) for i in batch]
        epoch += 1
    return order[: steps * batch_size]


def run_trl(
    args: argparse.Namespace,
    folder: Path,
    train_rows: list[Any],
    eval_rows: list[Any],
    gradient_checkpointing: bool,
    fastest: bool = False,
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from datasets import Dataset  # type: ignore[attr-defined]

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    # Ladder's order of examples, read in sequence: both trainers see the same batches
    order = ladder_order(len(train_rows), args.batch_size, args.steps)
    dataset = Dataset.from_list(
        [{"prompt": train_rows[i][:-1], "completion": train_rows[i][-1:]} for i in order]
    )
    counted = {"tokens": 0, "start": 0.0, "end": 0.0, "steps": 0}
    speed: dict[str, Any] = {"max_steps": args.steps, "per_device_train_batch_size": args.batch_size}
    if fastest:  # one pass over the same examples, packed; about Ladder's tokens per step
        from finetune.train.data import encode_chat

        encoded = (encode_chat(tokenizer, train_rows[i], args.max_seq_len) for i in order)
        lengths = [len(e) for e in encoded if e is not None]
        rows = max(1, round(args.batch_size * (sum(lengths) / len(lengths)) / args.max_seq_len))
        speed = {
            "max_steps": -1,
            "num_train_epochs": 1,
            "per_device_train_batch_size": rows,
            "packing": True,
            "packing_strategy": "bfd",
            "padding_free": True,
            "train_sampling_strategy": "random",
        }
    else:
        speed["train_sampling_strategy"] = "sequential"  # Ladder's order as given: the same batches

    class Clock(TrainerCallback):
        def on_train_begin(self, *a: Any, **k: Any) -> None:
            counted["start"] = time.perf_counter()

        def on_train_end(self, *a: Any, **k: Any) -> None:
            counted["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            output_dir=tmp,
            gradient_accumulation_steps=1,
            learning_rate=args.lr,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            bf16=False,
            fp16=False,
            use_cpu=True,
            seed=0,
            max_length=args.max_seq_len,
            gradient_checkpointing=gradient_checkpointing,
            dataloader_num_workers=0,
            disable_tqdm=True,
            **speed,
        )
        lora = LoraConfig(
            r=LORA["rank"],
            lora_alpha=LORA["alpha"],
            lora_dropout=LORA["dropout"],
            target_modules="all-linear",
            bias="none",
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[Clock()],
        )
        collate = trainer.data_collator

        def counting(features: list[dict[str, Any]]) -> dict[str, Any]:
            batch = collate(features)
            mask = batch.get("attention_mask")  # none in a padding-free batch: every token is real
            counted["tokens"] += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
            counted["steps"] += 1
            return batch

        trainer.data_collator = counting
        trainer.train()
        losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
        loss = held_out_loss(trainer.model, tokenizer, eval_rows)
    return {
        "tokens": counted["tokens"],
        "seconds": counted["end"] - counted["start"],
        "losses": losses,
        "held_out_loss": loss,
        "steps": counted["steps"],
    }


def matmul_peak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The machine's fp32 matmul rate now (best of a few square products, ``--threads``), and the
    parameter counts the FLOP rate needs (the base's transformer layers, the LoRA weights)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.train.config import lora_config

    torch.set_num_threads(args.threads)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(12):
        started = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - started) / 4)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    body = sum(p.numel() for p in model.model.layers.parameters())
    lora = get_peft_model(model, lora_config(LORA["rank"], LORA["alpha"], LORA["dropout"], "all-linear"))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    return {"peak_flops": 2 * n**3 / best, "body_params": body, "trainable_params": trainable}


def worker(args: argparse.Namespace) -> None:
    from assistant.settings import load_settings
    from finetune.adapters import resolve_base

    _ref, folder = resolve_base(args.model, load_settings())
    rows = load_rows(Path(args.data))
    eval_rows, train_rows = rows[:HELD_OUT], rows[HELD_OUT:]
    if args.worker == "peak":
        out = matmul_peak(args, folder)
    elif args.worker in ("ladder", "ladder-bare"):
        out = run_ladder(args, folder, train_rows, eval_rows, accelerate=args.worker == "ladder")
    else:
        out = run_trl(
            args,
            folder,
            train_rows,
            eval_rows,
            gradient_checkpointing=args.worker == "trl-default",
            fastest=args.worker == "trl-fast",
        )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


LABELS = {
    "ladder": "ladder (packed, accelerate)",
    "ladder-bare": "ladder (packed, no accelerate)",
    "trl-default": "trl SFTTrainer (default)",
    "trl-no-gc": "trl (no grad ckpt)",
    "trl-fast": "trl (packing bfd + padding-free, no grad ckpt)",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batching", default="packed", help="Ladder's batching: packed, grouped or padded")
    parser.add_argument("--runs", default="ladder,trl-fast,trl-default")
    parser.add_argument("--repeats", type=int, default=1, help="Interleaved repeats of the whole list.")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "finetune.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    passthrough = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k not in ("worker", "runs", "out", "repeats")
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.runs.split(",")}
    peaks: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name in ["peak", *runs]:
            print(f"repeat {repeat + 1}: {name} · {uptime()}", file=sys.stderr, flush=True)
            out = run_worker(name, passthrough)
            (peaks if name == "peak" else runs[name]).append(out)
            brief = {k: v for k, v in out.items() if k != "losses"}
            print(f"  {name}: {json.dumps(brief)}", file=sys.stderr, flush=True)  # partial results
    print(f"load after: {uptime()}")
    report(args, {name: median_run(found) for name, found in runs.items()}, peaks)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"args": vars(args), "runs": runs, "peaks": peaks}, indent=2), encoding="utf-8"
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_worker(name: str, passthrough: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *passthrough, f"--worker={name}"], capture_output=True, text=True, cwd=ROOT
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(line[len("RESULT ") :]))


def median_run(found: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(found, key=lambda r: r["tokens"] / r["seconds"])
    return dict(ordered[(len(ordered) - 1) // 2], all_rates=[r["tokens"] / r["seconds"] for r in found])


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]], peaks: list[dict[str, Any]]) -> None:
    peak = max(p["peak_flops"] for p in peaks)
    per_token = 4 * peaks[0]["body_params"] + 6 * peaks[0]["trainable_params"]
    each_peak = ", ".join(f"{p['peak_flops'] / 1e9:.1f}" for p in peaks)
    body, trained = peaks[0]["body_params"] / 1e6, peaks[0]["trainable_params"] / 1e6
    print(
        f"\n{args.model}, Ladder {args.steps} steps of batch {args.batch_size}, {args.threads} threads, "
        f"fp32, median of {args.repeats} interleaved run(s) each\n"
        f"matmul peak (fp32, {args.threads} threads, best over the repeats): {peak / 1e9:.1f} GFLOP/s "
        f"(each repeat: {each_peak}); FLOPs per token 4 x {body:.1f}M + 6 x {trained:.2f}M"
        f" = {per_token / 1e6:.0f} MFLOP\n"
    )
    rates = {name: r["tokens"] / r["seconds"] for name, r in results.items()}
    refs = [name for name in ("trl-default", "trl-fast") if name in rates]
    print(
        "| trainer | steps | real tokens | train time | tokens/s (each run) |"
        + "".join(f" vs {LABELS[n].split(' (')[0]} {n.split('-')[1]} |" for n in refs)
        + " FLOP rate | share of peak | peak RSS | train loss (last 5) | held-out loss |"
    )
    print("|---" * (10 + len(refs)) + "|")
    for name, r in results.items():
        rate = rates[name]
        last = sum(r["losses"][-5:]) / len(r["losses"][-5:])
        each = ", ".join(f"{x:,.0f}" for x in r["all_rates"])
        versus = "".join(f" {rate / rates[n]:.2f}x |" for n in refs)
        flops = rate * per_token
        steps = r.get("steps", args.steps)
        print(
            f"| {LABELS.get(name, name)} | {steps} | {r['tokens']:,} | {r['seconds']:.1f} s | "
            f"{rate:,.0f} ({each}) |{versus} {flops / 1e9:.1f} GFLOP/s | {flops / peak:.0%} | "
            f"{r['peak_rss_mb']:,.0f} MB | {last:.4f} | {r['held_out_loss']:.4f} |"
        )


if __name__ == "__main__":
    main()
