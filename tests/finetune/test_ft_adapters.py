"""The adapter registry and ``ladder finetune train | list | info | rm | export`` end to end:
exit codes, the manifest, and an export that transformers loads with the adapter's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_ft_train_helpers import write_chat_data

from assistant.settings import Settings
from finetune.adapters import add_evaluation, base_model_identity, list_adapters, read_manifest
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]
QUICK = [
    *("--max-steps", "30", "--batch-size", "4", "--lr", "1e-2", "--min-examples", "10"),
    *("--rank", "8", "--threads", "1", "--dropout", "0", "--patience", "0"),
]


def test_help_and_listing_adapters_import_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom ui.cli.app import main\n"
        "try:\n    main(['finetune', 'list', '--home', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    command = [sys.executable, "-c", code, str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "no adapters yet" in result.stdout and "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_train_list_info_rm_through_the_cli(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, isolated_home: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    code, out, err = run(
        ["finetune", "train", "--base", str(tiny_model_dir), "--data", str(data), "--name", "cli", *QUICK],
        capsys,
    )
    assert code == 0, err
    assert (
        "trained cli" in out and "complete after 30 steps" in out and f"--model {tiny_model_dir}+cli" in out
    )
    assert "training" in err and "loss" in err, "the progress bar shows the loss"

    code, out, err = run(
        ["finetune", "train", "--base", str(tiny_model_dir), "--data", str(data), "--name", "cli", *QUICK],
        capsys,
    )
    assert code == 2 and "an adapter named 'cli' exists" in err and "--overwrite" in err

    code, out, _ = run(["finetune", "list"], capsys)
    assert code == 0 and "cli" in out and "sft" in out and str(tiny_model_dir.name) in out

    code, out, _ = run(["finetune", "info", "cli"], capsys)
    assert code == 0 and "hash hash-0-60" in out and "60 train / 12 val examples" in out and "rank=8" in out
    code, out, _ = run(["finetune", "info", "cli", "--json"], capsys)
    manifest = json.loads(out)
    assert manifest["data"]["data_hash"] == "hash-0-60" and manifest["results"]["steps"] == 30

    code, _, err = run(["finetune", "info", "nope"], capsys)
    assert code == 3 and "no adapter named 'nope'" in err
    code, out, _ = run(["finetune", "rm", "cli"], capsys)
    assert code == 0 and "removed cli" in out
    assert not (isolated_home / "adapters" / "cli").exists()
    code, _, err = run(["finetune", "rm", "cli"], capsys)
    assert code == 3 and "no adapter named 'cli'" in err
    code, out, _ = run(["finetune", "list"], capsys)
    assert "no adapters yet" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--base", "no-such-model"], 3, "unknown model 'no-such-model'"),
        (["--base", "fake"], 2, "fine-tuning needs a local model"),
        (["--min-examples", "500"], 2, "at least 500 are needed"),
        (["--mode", "cpt"], 2, "a chat record, but --mode cpt"),
        (["--batching", "zigzag"], 2, "batching must be one of packed, grouped, padded"),
        (["--lr", "0"], 2, "learning_rate must be > 0"),
        (["--resume"], 2, "no unfinished training of 'x'"),
    ],
)
def test_train_exit_codes_for_bad_input(
    capsys: pytest.CaptureFixture[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    isolated_home: Path,
    args: list[str],
    code: int,
    message: str,
) -> None:
    data = write_chat_data(tmp_path / "data")
    base = [] if "--base" in args else ["--base", str(tiny_model_dir)]
    got, _, err = run(
        ["finetune", "train", *base, "--data", str(data), "--name", "x", "--min-examples", "10", *args],
        capsys,
    )
    assert got == code and message in err, err
    assert "Traceback" not in err
    assert not (isolated_home / "adapters").exists()


def test_a_bad_data_line_is_named_in_the_error(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    with (data / "train.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{broken\n")
    code, _, err = run(
        ["finetune", "train", "--base", str(tiny_model_dir), "--data", str(data), "--name", "x"], capsys
    )
    assert code == 2 and "train.jsonl:61: not valid JSON" in err
    code, _, err = run(["finetune", "train", "--base", str(tiny_model_dir), "--name", "x"], capsys)
    assert code == 2 and "no training data given" in err


def test_export_merges_into_a_folder_transformers_loads_with_the_same_logits(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, tmp_path: Path, isolated_home: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_chat_data(tmp_path / "data")
    code, _, err = run(
        ["finetune", "train", "--base", str(tiny_model_dir), "--data", str(data), "--name", "exp", *QUICK],
        capsys,
    )
    assert code == 0, err
    out_dir = tmp_path / "merged"
    code, out, err = run(["finetune", "export", "exp", "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert "exported exp" in out and (out_dir / "config.json").is_file()
    assert not list(out_dir.glob("adapter_*")), "a plain model, no PEFT files"
    assert json.loads((out_dir / "ladder_export.json").read_text())["exported_from_adapter"] == "exp"

    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    assert tokenizer.chat_template, "the chat template travels with the export"
    ids = tokenizer("Label this: the a blue", return_tensors="pt")["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, str(isolated_home / "adapters" / "exp")).eval()
        adapter_logits = adapted(ids).logits
        merged_logits = merged(ids).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(base_logits, adapter_logits, atol=1e-3), "the adapter changed the model"

    code, _, err = run(["finetune", "export", "exp", "--out", str(out_dir)], capsys)
    assert code == 2 and "exists and is not empty" in err
    code, _, _ = run(["finetune", "export", "exp", "--out", str(out_dir), "--overwrite"], capsys)
    assert code == 0
    code, _, _ = run(["ask", "Label this: the a red", "--model", str(out_dir), "--max-tokens", "4"], capsys)
    assert code == 0


def test_evaluations_are_appended_to_the_manifest_and_base_identity_is_stable(
    tiny_model_dir: Path, tmp_path: Path, fast_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_chat_data(tmp_path / "data")
    code, _, err = run(
        [
            "finetune",
            "train",
            "--base",
            str(tiny_model_dir),
            "--data",
            str(data),
            "--name",
            "ev",
            *QUICK,
            "--max-steps",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    add_evaluation("ev", fast_settings, {"run_id": "r1", "suite": "s", "metrics": {"accuracy": 0.9}})
    assert read_manifest("ev", fast_settings)["evaluations"] == [
        {"run_id": "r1", "suite": "s", "metrics": {"accuracy": 0.9}}
    ]
    assert [a["name"] for a in list_adapters(fast_settings)] == ["ev"]
    first = base_model_identity(tiny_model_dir)
    assert first == base_model_identity(tiny_model_dir) and first["kind"] == "folder"
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.json").write_text(json.dumps({"gguf_sha256": "abc"}), encoding="utf-8")
    assert base_model_identity(pack)["gguf_sha256"] == "abc" and base_model_identity(pack)["kind"] == "pack"
