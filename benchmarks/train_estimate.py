"""How close the decision's training-time estimate is to what training will see.

The estimate is tokens / measured tokens per second, so its error is the error of the token
count (the speed comes from earlier runs or a probe and is the same on both sides). This
script compares, for a decision config, three token counts:

- ``old``: the text of the examples alone, times the epochs (what readiness counted before);
- ``estimate``: ``evaluation.decide.readiness.planned_train_tokens`` (the chat template, the
  split, the general mix, the epochs);
- ``truth``: the data ``prepare`` really writes for that config, encoded by training's own
  encoder (``finetune.train.data.encode_records``) with the base model's tokenizer, times the
  epochs: the tokens the training loop counts as ``tokens_seen``.

    python benchmarks/train_estimate.py                       # the demo's routing config + support tickets
    python benchmarks/train_estimate.py path/to/decide.yaml   # any decision config

Needs the base model packs installed (their tokenizers): qwen2.5-coder-0.5b, smollm2-135m.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before this folder, whose finetune.py would shadow the package

import assistant  # noqa: E402, F401  (offline env first)

SUPPORT_TICKETS = """\
name: support_tickets_estimate
model: smollm2-135m
suites:
  dev: {suites}/support_tickets.yaml
  test: {suites}/support_tickets.yaml
targets:
  exact_match: ">= 0.80"
rungs:
  - {{strategy: prompt}}
allow_finetune: true
finetune:
  raw: [{root}/datasets/sft/support_tickets.jsonl]
"""


def counts(config_path: Path) -> tuple[str, int, int, int]:
    from assistant.settings import load_settings
    from evaluation.decide.engine import load_decision_config
    from evaluation.decide.readiness import load_training_examples, planned_train_tokens
    from evaluation.suites.source import SuiteFiles
    from finetune.data.clean import estimate_tokens
    from finetune.data.prepare import PrepareConfig, prepare, prepare_options
    from finetune.train.config import TrainConfig
    from finetune.train.data import encode_records, locate_data, read_records

    settings = load_settings()
    config = load_decision_config(config_path)
    model = config.model or settings.model
    train = TrainConfig.from_dict(config.finetune.train)
    examples = load_training_examples(config)
    old = int(sum(estimate_tokens(e.full_text) for e in examples) * float(train.epochs or 1))
    estimate = planned_train_tokens(config, settings, examples, model, train)
    with tempfile.TemporaryDirectory() as tmp:
        if config.finetune.data is None:
            suites = tuple(p for p in (config.dev, config.test, config.general) if p is not None)
            options = prepare_options(config.finetune.prepare)
            prep = PrepareConfig(
                domain=tuple(config.finetune.raw), out=Path(tmp) / "data", suites=suites, **options
            )
            prepare(prep, settings, suites=SuiteFiles())
            data = Path(tmp) / "data"
        else:
            data = config.finetune.data
        from transformers import AutoTokenizer

        from assistant.models.refs import parse_model_ref

        tokenizer = AutoTokenizer.from_pretrained(
            str(parse_model_ref(model, settings).local_folder(settings))
        )
        encoded = encode_records(tokenizer, read_records(locate_data(data).train_file), train.max_seq_len)
        truth = int(encoded.n_tokens * float(train.epochs or 1))
    return f"{config.name} ({model})", old, estimate, truth


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("configs", nargs="*", type=Path)
    args = parser.parse_args()
    configs = list(args.configs)
    with tempfile.TemporaryDirectory() as tmp:
        if not configs:
            tickets = Path(tmp) / "support_tickets.yaml"
            tickets.write_text(SUPPORT_TICKETS.format(suites=ROOT / "datasets" / "suites", root=ROOT))
            configs = [tickets, ROOT / "datasets" / "demo" / "decisions" / "ticket_routing.yaml"]
        print(f"{'decision':44} {'old':>9} {'estimate':>9} {'truth':>9} {'old/truth':>9} {'est/truth':>9}")
        for path in configs:
            name, old, estimate, truth = counts(path)
            print(f"{name:44} {old:9d} {estimate:9d} {truth:9d} {old / truth:9.2f} {estimate / truth:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
