"""AppTest tests of the Fine-tune page: the data preparation preview and its report, the live
loss curve and monitor verdict read from the training store, stop and resume of a job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ui.helpers import texts, wait_jobs

Open = Callable[..., Any]


def test_prepare_preview_shows_counts_duplicates_lengths_and_mixing(workbench: Open, tmp_path: Path) -> None:
    rows = [
        {"instruction": f"Route ticket {i}: my parcel {i} is late", "output": "shipping"} for i in range(60)
    ]
    rows += rows[:5]  # five exact duplicates
    domain = tmp_path / "tickets.jsonl"
    domain.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    at = workbench("finetune")
    assert "No prepared data yet" in texts(at)
    at.text_area[0].input(str(domain))
    at.text_input[0].input("tickets")
    at.number_input[0].set_value(2.0)  # general examples per domain example
    next(b for b in at.button if b.label == "Prepare (preview the report)").click().run()
    finished = wait_jobs("cli")
    assert finished[0].status == "done", finished[0].log_tail()
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Duplicates (exact + near)"].startswith("5 + ")
    assert metrics["Mixing domain : general"] == "1 : 2"
    domain_train = int(metrics["Domain examples (train)"])
    assert int(metrics["Training examples"]) == domain_train * 3
    funnel = at.dataframe[0].value
    assert "exact dedup" in set(funnel["step"])
    assert any("Length in tokens" in c.value for c in at.caption)
    assert at.get("arrow_bar_chart") or at.get("vega_lite_chart")


def test_live_loss_curve_and_verdict_come_from_the_training_store(workbench: Open) -> None:
    from assistant.settings import load_settings
    from finetune.store import TrainingStore

    settings = load_settings()
    with TrainingStore(settings.db_path) as store:
        run_id = store.create_run("tickets", "smollm2-135m", "sft", 40, {}, {})
        for step in range(1, 13):
            store.log_step(run_id, step, {"train_loss": 3.0 / step}, "converging", "loss is falling steadily")
    at = workbench("finetune")
    assert any("tickets · running" in str(o) for o in at.selectbox[-1].options)
    assert any("step 12 of 40" in c.value for c in at.caption)
    assert any(p.value == 30 or abs(float(p.value) - 0.3) < 1e-6 for p in at.get("progress"))
    assert any("Loss curve: converging" in i.value for i in at.info)
    assert at.get("arrow_line_chart") or at.get("vega_lite_chart")
    assert "No adapters yet" in texts(at)


def test_a_background_job_stops_and_its_run_resumes(workbench: Open, tmp_path: Path) -> None:
    """Stop interrupts the worker (Ctrl-C): the evaluation is left resumable, and the next
    identical run answers only the items it lacks."""
    from assistant.settings import load_settings
    from evaluation.store import RunStore
    from tests.ui.helpers import write_suite
    from ui.web import jobs

    items = [{"id": f"q{i}", "user_input": f"question {i}", "reference": "x"} for i in range(40)]
    suite = write_suite(tmp_path / "suites", "slow", items)
    script = tmp_path / "slow.json"
    script.write_text(json.dumps({"delay_s": 0.3}), encoding="utf-8")  # 12 s in all: time to stop it
    settings = load_settings()
    params = {"suite": str(suite), "strategies": ["prompt"], "model": f"fake:{script}", "no_judge": True}
    job = jobs.launch(settings, "eval", params, "slow eval")
    deadline = time.time() + 60
    while (current := jobs.get(settings, job.job_id)) and current.done < 8 and current.status != "failed":
        assert time.time() < deadline, current.log_tail()
        time.sleep(0.2)
    jobs.stop(current)
    stopped = jobs.wait(settings, job.job_id, 20)
    assert stopped.status == "stopped"
    with RunStore(settings.db_path) as store:
        run = store.list_runs()[0]
    assert run["status"] == "failed" and 0 < run["records"] < 40
    again = jobs.launch(settings, "eval", params, "slow eval again")
    assert jobs.wait(settings, again.job_id, 60).status == "done"
    with RunStore(settings.db_path) as store:
        resumed = store.load_run(jobs.get(settings, again.job_id).result["run_id"])  # type: ignore[union-attr]
    assert resumed.run_id == run["run_id"] and len(resumed.records) == 40
    at = workbench("evaluate")
    assert any("stopped" in m.value or "done" in m.value for m in at.markdown)


def test_training_from_the_page_registers_an_adapter_with_its_curve(
    workbench: Open, tiny_model_dir: Path
) -> None:
    """A real (tiny) LoRA training launched from the Train form, in a background process."""
    import random

    data = Path("train_data")
    data.mkdir()
    rng = random.Random(0)
    labels = {"red": "alpha", "blue": "beta", "green": "gamma"}
    for split, count in (("train", 60), ("val", 12)):
        rows = []
        for _ in range(count):
            colour = rng.choice(sorted(labels))
            rows.append({"messages": [{"role": "user", "content": f"Label this: {colour}"},
                                      {"role": "assistant", "content": labels[colour]}]})  # fmt: skip
        (data / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    at = workbench("finetune")
    fields = {w.label: w for w in at.text_input}
    fields["Adapter name"].input("tiny-ui")
    fields["Base model (a local pack or folder)"].input(str(tiny_model_dir))
    fields["…or a prepared folder / JSONL path"].input(str(data.resolve()))
    numbers = {w.label: w for w in at.number_input}
    numbers["Max steps (0 = by epochs)"].set_value(6)
    numbers["Batch size"].set_value(4)
    next(b for b in at.button if b.label == "Train in the background").click().run()
    finished = wait_jobs("cli", timeout_s=180)
    assert finished[0].status == "done", finished[0].log_tail(30)
    assert finished[0].params["argv"][:4] == ["finetune", "train", "--name", "tiny-ui"]
    at.run()
    assert any("tiny-ui" in str(o) for o in at.selectbox(key="ft_adapter_pick").options)
    assert any("adapter tiny-ui" in c.value and "step 6 of 6" in c.value for c in at.caption)
    assert at.get("arrow_line_chart") or at.get("vega_lite_chart")
