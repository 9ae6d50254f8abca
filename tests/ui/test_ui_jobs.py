"""Background jobs keep their state on disk: a new server process (or a reload) finds a running
job again, a killed worker reads as died, and progress comes from the worker's state file."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.ui.helpers import write_suite


def test_a_job_is_found_again_from_disk_and_a_killed_worker_reads_as_died(tmp_path: Path) -> None:
    from assistant.settings import load_settings
    from ui.web import jobs

    items = [{"id": f"q{i}", "user_input": f"question {i}", "reference": "x"} for i in range(100)]
    suite = write_suite(tmp_path / "suites", "slow", items)
    script = tmp_path / "slow.json"
    script.write_text(json.dumps({"delay_s": 0.1}), encoding="utf-8")
    settings = load_settings()
    params = {"suite": str(suite), "model": f"fake:{script}", "no_judge": True}
    job = jobs.launch(settings, "eval", params, {"key": "eval.job_title", "values": {"suite": "slow"}})
    jobs._CHILDREN.clear()  # as if the page (or the whole server) had been restarted
    deadline = time.time() + 60
    while (found := jobs.get(settings, job.job_id)) is not None and found.done < 3:
        assert time.time() < deadline and not found.finished, found.log_tail()
        time.sleep(0.2)
    assert found is not None and found.status == "running" and found.stage
    assert found.total == 100 and found.fraction is not None and 0 < found.fraction < 1
    assert [j.job_id for j in jobs.active(settings, "eval")] == [job.job_id]
    assert found.pid is not None
    os.kill(found.pid, signal.SIGKILL)
    deadline = time.time() + 20
    while (gone := jobs.get(settings, job.job_id)) is not None and not gone.finished:
        assert time.time() < deadline
        time.sleep(0.2)
    assert gone is not None and gone.status == "died" and "ended without finishing" in (gone.error or "")
    assert jobs.active(settings, "eval") == []
