"""The shipped alert expression on the running operator's own metrics: the end-to-end alert case.

The simulator marks a Ready instance `valid=false`; the operator's periodic check (a short
`--resync-interval`) sees it and its /metrics reports `oco_platform_instance_valid 0`. Meanwhile
/metrics is scraped at a fixed interval, as Prometheus would, and the scrapes become promtool
`input_series` (with the `job` and `instance` labels a scrape adds). promtool then evaluates the
expression of OpenConnectorsPlatformInstanceInvalid, taken from the chart's rendering, never
copied, at every scrape: false before the first scrape that reports the flip, true from that scrape
on, so within 2 scrapes of it (promtool would report any evaluation that disagrees). The operator
must also report the flip within one resync interval (and three scrapes) of the simulator's flip.

It needs the operator as a process against the real API server and the simulator over HTTP: the
series come from its watch of the status its own platform check wrote. The rules themselves are
unit-tested in tests/chart/test_rules.py.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.chart.rules import JOB, promtool, write_rule_file
from tests.fixtures.operator import OperatorProcess, wait_until
from tests.integration.support import Env

ALERT = "OpenConnectorsPlatformInstanceInvalid"
RESYNC = 5.0  # seconds: the operator's smallest --resync-interval
SCRAPE = 1.0  # seconds between scrapes
BEFORE_FLIP = 3  # scrapes of the instance still valid
AFTER_REPORT = 3  # scrapes after the first that reports the flip
# The operator checks each Ready instance every RESYNC * U(0.9, 1.1) seconds; the check's call, its
# status write and the watch event that updates the series take a moment more (three scrapes'
# worth, for a busy machine), and the next scrape reports it.
REPORTED_WITHIN = math.ceil(RESYNC * 1.1 / SCRAPE) + 3

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Scrapes:
    """/metrics of one operator, taken every SCRAPE seconds: scrape i stands at i * SCRAPE."""

    operator: OperatorProcess
    instance: str
    taken: list[dict[SeriesKey, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def scrape(self) -> dict[SeriesKey, float]:
        # A fixed sampling clock, not a synchronisation: the test waits on what the scrapes show.
        time.sleep(max(0.0, self.started + len(self.taken) * SCRAPE - time.monotonic()))
        target = {"job": JOB, "instance": self.instance}  # what a scrape adds (honor_labels: ours win)
        samples = {
            (sample.name, tuple(sorted({**target, **sample.labels}.items()))): sample.value
            for family in text_string_to_metric_families(self.operator.metrics())
            for sample in family.samples
        }
        samples[("up", tuple(sorted(target.items())))] = 1.0
        self.taken.append(samples)
        return samples


def valid(samples: dict[SeriesKey, float], namespace: str, name: str) -> float | None:
    """The instance's oco_platform_instance_valid in one scrape (None: not exported)."""
    wanted = {("namespace", namespace), ("name", name)}
    for (metric, labels), value in samples.items():
        if metric == "oco_platform_instance_valid" and wanted <= set(labels):
            return value
    return None


def promql_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def input_series(taken: list[dict[SeriesKey, float]]) -> list[dict[str, str]]:
    """promtool's input_series: one value per scrape; `stale` where a series went (as Prometheus
    marks it), `_` before it first appeared."""
    keys = sorted({key for samples in taken for key in samples})
    series = []
    for metric, labels in keys:
        values, seen = [], False
        for samples in taken:
            value = samples.get((metric, labels))
            seen = seen or value is not None
            values.append(promql_value(value) if value is not None else ("stale" if seen else "_"))
        selector = ",".join(f"{name}={json.dumps(value)}" for name, value in labels)
        series.append({"series": f"{metric}{{{selector}}}", "values": " ".join(values)})
    return series


def unit_test(expr: str, scrapes: Scrapes, first_report: int, labels: dict[str, str]) -> dict[str, Any]:
    """`expr` evaluated at every scrape: no result before `first_report`, the instance from it on."""
    sample = {"labels": "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"}
    cases = [
        {
            "expr": expr,
            "eval_time": f"{index * SCRAPE:g}s",
            "exp_samples": [{**sample, "value": 0}] if index >= first_report else [],
        }
        for index in range(len(scrapes.taken))
    ]
    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": f"{SCRAPE:g}s",
        "tests": [
            {
                "interval": f"{SCRAPE:g}s",
                "input_series": input_series(scrapes.taken),
                "promql_expr_test": cases,
            }
        ],
    }


def shipped_expr(rule_file: Path) -> str:
    rules = yaml.safe_load(rule_file.read_text())["groups"][0]["rules"]
    [rule] = [r for r in rules if r.get("alert") == ALERT]
    return str(rule["expr"])


@pytest.mark.slow
@pytest.mark.manual_operator
def test_the_invalid_instance_alert_expression_turns_true_on_the_scraped_flip(
    env: Env, tmp_path: Path
) -> None:
    operator = env.start_operator("--resync-interval", f"{RESYNC:g}")
    instance_id = env.create_ready()["status"]["instanceID"]
    scrapes = Scrapes(operator, f"127.0.0.1:{operator.metrics_port}")
    # The create's own read of the instance is exported first: valid.
    wait_until(lambda: valid(scrapes.scrape(), env.namespace, "crm") == 1.0, 15, "valid=1 exported", 0)
    while len(scrapes.taken) < BEFORE_FLIP:
        scrapes.scrape()

    flip = len(scrapes.taken)  # the first scrape after the flip
    env.simulator.control.mark_invalid(instance_id)

    def first_report() -> int | None:
        reported = valid(scrapes.scrape(), env.namespace, "crm") == 0.0
        return len(scrapes.taken) - 1 if reported else None

    first = wait_until(first_report, (REPORTED_WITHIN + 5) * SCRAPE, "valid=0 exported", 0)
    assert first - flip <= REPORTED_WITHIN, f"reported {first - flip} scrapes after the flip"
    for _ in range(AFTER_REPORT):
        scrapes.scrape()

    rule_file = write_rule_file(tmp_path)
    labels = {"namespace": env.namespace, "name": "crm"}
    test = unit_test(shipped_expr(rule_file), scrapes, first, labels)
    (tmp_path / "e2e_test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = promtool("test", "rules", "e2e_test.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"flip at scrape {flip}, reported at {first}, expression true from scrape {first} on")
