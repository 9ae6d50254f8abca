"""``prepare`` end to end: split, mixing, leakage, the report and manifest, every refusal, and the CLI."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from evaluation.suites.source import SuiteFiles
from finetune.data.load import DataError
from finetune.data.prepare import PrepareConfig, prepare
from finetune.data.split import SplitFractions, general_needed, split_examples, stratum_key
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

SUITES = SuiteFiles()  # how fine-tuning reads the evaluation suites (leakage, QA data)

# fmt: off
VOCAB = (
    "river", "mountain", "lantern", "copper", "violet", "harbor", "meadow", "falcon", "orbit", "quartz",
    "kettle", "marble", "nectar", "jungle", "candle", "piano", "garden", "ladder", "bottle", "zephyr",
    "window", "pepper", "silver", "thunder", "basket", "planet", "pencil", "tiger", "rocket", "saddle",
    "button", "castle", "desert", "forest", "glacier", "island", "jacket", "kitten", "lemon", "mirror",
    "needle", "ocean", "parrot", "rabbit", "shadow", "tunnel", "umbrella", "valley", "walnut", "yogurt",
    "anchor", "bridge", "cactus", "dolphin", "engine",
)
# fmt: on
LABELS = ("alpha", "beta", "gamma")


def domain_rows(count: int, seed: int = 0, prefix: str = "Describe") -> list[dict[str, object]]:
    """Distinct examples (random word lists share few shingles), labelled round-robin."""
    rng = random.Random(seed)
    return [
        {
            "instruction": f"{prefix} {' '.join(rng.sample(VOCAB, 7))}.",
            "output": LABELS[i % 3],
            "tags": [f"label:{LABELS[i % 3]}"],
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings({})


def config(tmp_path: Path, domain: list[Path], **options: object) -> PrepareConfig:
    values: dict[str, object] = {"general": "none", "project_suites": False, "min_examples": 10}
    values.update(options)
    return PrepareConfig(domain=tuple(domain), out=tmp_path / "out", **values)  # type: ignore[arg-type]


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- split ------------------------------------------------------------------------------------
def test_split_is_seeded_and_stratified(tmp_path: Path, settings: Settings) -> None:
    from finetune.data.load import load_file

    examples = load_file(write_jsonl(tmp_path / "d.jsonl", domain_rows(90)))
    fractions = SplitFractions(0.8, 0.1, 0.1)
    first = split_examples(examples, fractions, seed=1, stratify_by="label")
    again = split_examples(examples, fractions, seed=1, stratify_by="label")
    other = split_examples(examples, fractions, seed=2, stratify_by="label")
    assert [[e.source for e in part] for part in first] == [[e.source for e in part] for part in again]
    assert [e.source for e in first[1]] != [e.source for e in other[1]]
    assert [len(part) for part in first] == [72, 9, 9]
    for part, per_label in zip(first, (24, 3, 3), strict=True):
        assert sorted(stratum_key(e, "label") for e in part) == sorted(LABELS * per_label)
    assert len({e.source for part in first for e in part}) == 90  # a partition, no example twice
    assert [stratum_key(e, "tag:label") for e in examples[:3]] == ["alpha", "beta", "gamma"]


def test_split_fractions_are_validated() -> None:
    assert SplitFractions.parse("0.7,0.2,0.1") == SplitFractions(0.7, 0.2, 0.1)
    for bad in ("0.8,0.1", "0.8,0.3,0.1", "a,b,c", "0,0.5,0.5"):
        with pytest.raises(ConfigError, match="--split"):
            SplitFractions.parse(bad)


# ---- prepare -----------------------------------------------------------------------------------
def test_prepare_writes_splits_report_and_manifest(tmp_path: Path, settings: Settings) -> None:
    rows = domain_rows(60)
    rows += [rows[0], rows[1]]  # two exact duplicates
    long_text = "Customers may return any physical product within thirty days of delivery for a full refund."
    rows.append({"instruction": long_text, "output": "alpha"})
    rows.append({"instruction": long_text.replace("thirty", "forty"), "output": "alpha"})  # a near duplicate
    rows.append({"instruction": "x", "output": "y"})  # too short
    rows.append({"instruction": "Call 13812345678 about " + " ".join(VOCAB[:6]), "output": "alpha"})
    domain = write_jsonl(tmp_path / "domain.jsonl", rows)
    general = write_jsonl(tmp_path / "general.jsonl", domain_rows(40, seed=9, prefix="Summarise"))
    result = prepare(
        config(
            tmp_path, [domain], general=str(general), ratio=0.5, mask_pii=True, stratify_by="label", seed=3
        ),
        settings,
        suites=SUITES,
    )
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "report.json",
        "test.jsonl",
        "train.jsonl",
        "val.jsonl",
    ]
    train, val, test = (read(out / f"{name}.jsonl") for name in ("train", "val", "test"))
    # 66 loaded, 1 too short, 2 exact and 1 near duplicate: 62 domain examples -> 50 / 6 / 6.
    assert (len(val), len(test)) == (6, 6)
    assert sum("general" not in r["tags"] for r in train) == 50
    assert sum("general" in r["tags"] for r in train) == general_needed(50, 0.5) == 25
    assert result.counts == {"train": 75, "val": 6, "test": 6}
    first = train[0]
    assert set(first) == {"messages", "tags", "source"}
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert any(r["messages"][0]["content"].startswith("Call [PHONE] about") for r in [*train, *val, *test])

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    steps = {(s["data"], s["step"]): s for s in report["steps"]}
    assert steps[("domain", "clean")]["dropped"] == {"too_short": 1}
    assert steps[("domain", "exact dedup")]["dropped"] == {"exact_duplicate": 2}
    assert steps[("domain", "near dedup")]["dropped"] == {"near_duplicate": 1}
    assert steps[("domain", "leakage")]["after"] == 62
    assert steps[("general", "mix")]["after"] == 25
    assert report["duplicates"]["rate"]["domain"] == pytest.approx(3 / 65, abs=1e-4)
    assert report["duplicates"]["near"][0]["dropped"] == f"{domain}:64"
    assert report["pii_masked"] == {"PHONE": 1}
    assert report["splits"]["train"] == {"domain": 50, "general": 25, "total": 75}
    assert report["mixing"] == {"ratio": 0.5, "domain_train": 50, "general_used": 25, "general_available": 40}
    assert report["lengths"]["tokenizer"] == "estimate" and report["lengths"]["count"] == 87
    assert sum(b["count"] for b in report["lengths"]["histogram"]) == 87
    assert report["label_balance"]["key"] == "label"
    assert report["label_balance"]["train"]["(general)"] == 25
    assert report["label_balance"]["val"] == {"alpha": 2, "beta": 2, "gamma": 2}

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == "chat"
    inputs = {i["role"]: i for i in manifest["inputs"]}
    assert inputs["domain"]["sha256"] == hashlib.sha256(domain.read_bytes()).hexdigest()
    assert inputs["domain"]["examples"] == 66 and inputs["general"]["format"] == "alpaca"
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert manifest["outputs"][name]["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert manifest["settings"]["ratio"] == 0.5 and manifest["settings"]["split"]["val"] == 0.1
    assert manifest["data_hash"] == result.manifest["data_hash"]

    # The same inputs and seed give the same data; another seed does not.
    again = prepare(
        config(
            tmp_path,
            [domain],
            general=str(general),
            ratio=0.5,
            mask_pii=True,
            stratify_by="label",
            seed=3,
            force=True,
        ),
        settings,
        suites=SUITES,
    )
    assert again.manifest["data_hash"] == manifest["data_hash"]
    other = prepare(
        config(
            tmp_path,
            [domain],
            general=str(general),
            ratio=0.5,
            mask_pii=True,
            stratify_by="label",
            seed=4,
            force=True,
        ),
        settings,
        suites=SUITES,
    )
    assert other.manifest["data_hash"] != manifest["data_hash"]


def test_leaking_examples_are_dropped_and_named(tmp_path: Path, settings: Settings) -> None:
    rows = domain_rows(30)
    suite_rows = [
        {"id": "held-1", "user_input": rows[4]["instruction"], "reference": "beta"},
        {
            "id": "held-2",
            "user_input": str(rows[7]["instruction"]).replace("Describe", "Please describe"),
            "reference": "beta",
        },
    ]
    write_jsonl(tmp_path / "held.jsonl", suite_rows)
    (tmp_path / "held.yaml").write_text("name: heldout\nkind: qa\ndata: held.jsonl\n", encoding="utf-8")
    domain = write_jsonl(tmp_path / "d.jsonl", rows)
    result = prepare(config(tmp_path, [domain], suites=(tmp_path / "held.yaml",)), settings, suites=SUITES)
    leaks = {leak["source"]: leak for leak in result.report.leaks}
    assert set(leaks) == {f"{domain}:5", f"{domain}:8"}
    assert (leaks[f"{domain}:5"]["suite"], leaks[f"{domain}:5"]["item"], leaks[f"{domain}:5"]["match"]) == (
        "heldout",
        "held-1",
        "exact",
    )
    assert (leaks[f"{domain}:8"]["item"], leaks[f"{domain}:8"]["match"]) == ("held-2", "near")
    written = [
        r["source"] for name in ("train", "val", "test") for r in read(tmp_path / "out" / f"{name}.jsonl")
    ]
    assert len(written) == 28 and f"{domain}:5" not in written
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["leakage"]["dropped"] == 2
    assert report["leakage"]["suites"][0]["name"] == "heldout"


def test_text_mode_writes_text_records(tmp_path: Path, settings: Settings) -> None:
    rng = random.Random(5)
    paragraphs = [" ".join(rng.sample(VOCAB, 12)) + "." for _ in range(40)]
    notes = tmp_path / "notes.md"
    notes.write_text("\n\n".join(paragraphs), encoding="utf-8")
    result = prepare(config(tmp_path, [notes], text_chunk_chars=200, min_tokens=10), settings, suites=SUITES)
    assert result.report.mode == "text"
    train = read(tmp_path / "out" / "train.jsonl")
    assert set(train[0]) == {"text", "tags", "source"}
    assert all(len(str(r["text"])) <= 200 for r in train)
    assert sum(result.counts.values()) == result.report.count("domain", "leakage")


# ---- refusals: nothing written -----------------------------------------------------------------
def test_not_enough_general_data_is_refused_before_writing(tmp_path: Path, settings: Settings) -> None:
    domain = write_jsonl(tmp_path / "d.jsonl", domain_rows(50))
    general = write_jsonl(tmp_path / "g.jsonl", domain_rows(30, seed=9, prefix="Summarise"))
    with pytest.raises(DataError) as info:
        prepare(config(tmp_path, [domain], general=str(general), ratio=1), settings, suites=SUITES)
    assert "--ratio 1 needs 40 general examples for 40 domain training examples" in info.value.message
    assert "only 30 are available" in info.value.message
    assert info.value.hint == "use --ratio 0.7 or less, or give a larger --general file"
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_too_few_examples_explains_every_step(tmp_path: Path, settings: Settings) -> None:
    rows = domain_rows(12) + domain_rows(12) + [{"instruction": "x", "output": "y"}]
    domain = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as info:
        prepare(config(tmp_path, [domain], min_examples=20), settings, suites=SUITES)
    message = info.value.message
    assert "only 12 domain examples remain, fewer than the minimum of 20" in message
    assert "load 25 → clean 24 (1 too short) → exact dedup 12 (12 exact duplicate)" in message
    assert not (tmp_path / "out").exists()


def test_bad_line_and_unknown_format_write_nothing(tmp_path: Path, settings: Settings) -> None:
    domain = write_jsonl(tmp_path / "d.jsonl", domain_rows(20))
    with domain.open("a", encoding="utf-8") as handle:
        handle.write('{"instruction": "broken", "output": }\n')
    with pytest.raises(DataError) as info:
        prepare(config(tmp_path, [domain]), settings, suites=SUITES)
    assert str(info.value).startswith(f"{domain}:21:")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="unknown format 'yaml'"):
        config(tmp_path, [domain], format="yaml")
    with pytest.raises(ConfigError, match="unknown --stratify-by 'colour'"):
        config(tmp_path, [domain], stratify_by="colour")


def test_existing_output_needs_force(tmp_path: Path, settings: Settings) -> None:
    domain = write_jsonl(tmp_path / "d.jsonl", domain_rows(20))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        prepare(config(tmp_path, [domain]), settings, suites=SUITES)
    assert (tmp_path / "out" / "keep.txt").exists()
    prepare(config(tmp_path, [domain], force=True), settings, suites=SUITES)
    assert not (tmp_path / "out" / "keep.txt").exists() and (tmp_path / "out" / "train.jsonl").exists()


def test_project_general_set_is_correct_and_clean(settings: Settings, tmp_path: Path) -> None:
    """The shipped general set loads, survives cleaning and dedup whole, and leaks no suite item."""
    domain = write_jsonl(tmp_path / "d.jsonl", domain_rows(60))
    result = prepare(
        PrepareConfig(domain=(domain,), out=tmp_path / "out", ratio=1, min_examples=10),
        settings,
        suites=SUITES,
    )
    steps = {(s.data, s.step): s for s in result.report.steps}
    loaded = steps[("general", "load")].after
    assert loaded >= 400
    assert steps[("general", "leakage")].after == loaded  # nothing dropped anywhere
    capitals = [r for r in read(tmp_path / "out" / "train.jsonl") if "capitals" in r["tags"]]
    for row in capitals:
        if "France" in str(row["messages"][0]["content"]):
            assert row["messages"][1]["content"] == "The capital of France is Paris."


# ---- CLI -----------------------------------------------------------------------------------------
def test_cli_prepare_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    domain = write_jsonl(tmp_path / "d.jsonl", domain_rows(60))
    code, out, err = run(
        [
            "finetune",
            "prepare",
            "--domain",
            str(domain),
            "--ratio",
            "1",
            "--out",
            str(tmp_path / "ok"),
            "--stratify-by",
            "label",
        ],
        capsys,
    )
    assert code == 0, err
    assert "data, step by step" in out and "label balance (by label)" in out
    assert "train 96, val 6, test 6" in out  # 48 domain + 48 general in train
    assert (tmp_path / "ok" / "manifest.json").exists()

    bigger = write_jsonl(tmp_path / "big.jsonl", domain_rows(150, seed=4))
    code, _, err = run(
        ["finetune", "prepare", "--domain", str(bigger), "--ratio", "30", "--out", str(tmp_path / "no")],
        capsys,
    )
    assert code == 2 and "--ratio 30 needs 3600 general examples for 120 domain training examples" in err
    assert "hint: use --ratio 26.3 or less" in err  # 3162 general examples / 120
    code, _, err = run(
        ["finetune", "prepare", "--domain", str(domain), "--format", "xml", "--out", str(tmp_path / "no")],
        capsys,
    )
    assert code == 2 and "unknown format 'xml'" in err
    missing = write_jsonl(tmp_path / "m.jsonl", [{"instruction": "no output here"}])
    code, _, err = run(
        ["finetune", "prepare", "--domain", str(missing), "--out", str(tmp_path / "no")], capsys
    )
    assert code == 2 and f"{missing}:1: field 'output': missing" in err
    code, _, err = run(
        [
            "finetune",
            "prepare",
            "--domain",
            str(domain),
            "--split",
            "0.9,0.2,0.1",
            "--out",
            str(tmp_path / "no"),
        ],
        capsys,
    )
    assert code == 2 and "bad --split" in err
    assert not (tmp_path / "no").exists()


# ---- the project's own data sets ----------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_general_set_is_what_its_build_script_writes_and_its_answers_check_out() -> None:
    import datetime
    import runpy

    build = runpy.run_path(str(ROOT / "datasets" / "general" / "build.py"))["build"]
    committed = read(ROOT / "datasets" / "general" / "general_instructions.jsonl")
    assert build() == committed
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    checked = 0
    for row in committed:
        question, answer = str(row["instruction"]), str(row["output"])
        if "arithmetic" in row["tags"]:
            a, op, b, _, result = answer.rstrip("。").split()
            expected = {
                "+": int(a) + int(b),
                "-": int(a) - int(b),
                "×": int(a) * int(b),
                "÷": int(a) / int(b),
            }[op]
            assert float(result) == expected, row
            checked += 1
        elif question.startswith("What day of the week was"):
            day = datetime.date.fromisoformat(question.split()[-1].rstrip("?"))
            assert answer.endswith(f"was a {weekdays[day.weekday()]}."), row
            checked += 1
        elif question.startswith("What number is the Roman numeral"):
            numeral = question.split()[-1].rstrip("?")
            assert answer == f"{numeral} is {roman_value(numeral)}.", row
            checked += 1
        elif question.startswith("It is ") and "What time will it be" in question:
            hours = re.search(r"(\d+) hours?", question.split("in ", 1)[1])
            minutes = re.search(r"(\d+) minutes", question)
            now_h, now_m = map(int, question.split()[2].split(":"))
            total = now_h * 60 + now_m + 60 * int(hours.group(1) if hours else 0)
            total = (total + int(minutes.group(1) if minutes else 0)) % (24 * 60)
            assert answer == f"It will be {total // 60}:{total % 60:02d}.", row
            checked += 1
    assert checked >= 400


def roman_value(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for letter, following in zip(numeral, [*numeral[1:], ""], strict=True):
        value = values[letter]
        total += -value if following and values[following] > value else value
    return total


def test_support_ticket_set_passes_cleaning_dedup_and_the_leakage_check(
    tmp_path: Path, settings: Settings
) -> None:
    from evaluation.suites.spec import load_suite

    suite = load_suite(ROOT / "datasets" / "suites" / "support_tickets.yaml")
    assert len(suite.items) == 120
    training = ROOT / "datasets" / "sft" / "support_tickets.jsonl"
    result = prepare(
        PrepareConfig(domain=(training,), out=tmp_path / "out", general="none", stratify_by="label"),
        settings,
        suites=SUITES,
    )
    steps = {s.step: s for s in result.report.steps if s.data == "domain"}
    assert steps["load"].after == steps["leakage"].after == 360
    assert not result.report.leaks
    assert "support_tickets" in {s["name"] for s in result.report.suites}
    categories = {item.question.reference for item in suite.items}
    assert len(categories) == 8
    assert set(result.report.balance["train"]) == categories
