"""JUnit XML, so a CI system shows each threshold as a test that passed or failed.

One ``<testsuite>`` per strategy; one ``<testcase>`` per metric: a threshold is checked
(``<failure>`` when missed), a metric without one passes and reports its value in
``<system-out>``. A run that did not complete adds a ``run`` suite with an ``<error>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from evaluation.report import common as c
from evaluation.results import COMPLETE, FAILED, MetricResult, RunResult


def _value_text(metric: MetricResult) -> str:
    text = f"{metric.label} = {c.num(metric.mean)}"
    if interval := c.ci(metric.low, metric.high):
        text += f" (95% CI {interval})"
    text += f", n={metric.n}, n/a={metric.n_na}"
    if metric.na_reasons:
        text += f" ({c.na_reasons(metric.na_reasons)})"
    return text


def _suite(parent: ET.Element, name: str, classname: str, cases: list[ET.Element]) -> None:
    suite = ET.SubElement(parent, "testsuite", name=name)
    failures = errors = 0
    for case in cases:
        case.set("classname", classname)
        failures += case.find("failure") is not None
        errors += case.find("error") is not None
        suite.append(case)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")


def render_junit(run: RunResult) -> str:
    root = ET.Element("testsuites", name=f"ladder {run.suite}")
    for strategy in run.strategies:
        cases = []
        for metric in strategy.metrics.values():
            if metric.threshold is None:
                case = ET.Element("testcase", name=metric.label)
                ET.SubElement(case, "system-out").text = _value_text(metric)
            else:
                case = ET.Element("testcase", name=f"{metric.label} {c.bound_text(metric)}")
                if c.threshold_state(metric) == "fail":
                    failure = ET.SubElement(
                        case, "failure", message=c.threshold_miss(metric), type="threshold"
                    )
                    failure.text = _value_text(metric)
                else:
                    ET.SubElement(case, "system-out").text = _value_text(metric)
            cases.append(case)
        _suite(root, strategy.strategy, f"ladder.{run.suite}.{strategy.strategy}", cases)
    if run.status != COMPLETE:
        case = ET.Element("testcase", name="run")
        if run.status == FAILED:
            message = run.error or "the run failed and recorded no error"
        else:
            message = f"the run is {run.status}: it did not complete"
        ET.SubElement(case, "error", message=message, type=run.status).text = message
        _suite(root, "run", f"ladder.{run.suite}", [case])
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root:
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{run.wall_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
