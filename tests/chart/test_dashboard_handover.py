"""The dashboard's panels while two copies of the operator are scraped at once: nothing counted twice.

During a peering handover (or a rolling update) the copy giving up and the copy taking over may
both export for a moment; a copy standing by exports no per-object series and no
`oco_connectorinstances`. Every panel query is evaluated by promtool on the same samples twice: as
one copy exports them (job "single") and as two copies of one job do (job "double", instances a and
b), and the results must be equal. What both copies report alike is the state they read from the
API server (the gauges) and the per-object series the cap drops; what a copy counts of its own work
(calls, reconciles, waits, corrections: the other counters and histograms) the second copy reports
flat, since each is counted by the copy that did it, and summing those over copies is right.

No process: promtool (built from its Go module and cached) evaluates the queries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.rules import promtool
from tests.chart.test_dashboard import DASHBOARD, INTERPOLATED, queries

# Grafana's variables at "All".
VARIABLES = {**INTERPOLATED, "$namespace": ".*", "$name": ".*"}
# Counted by each copy of its own work: the second copy's stay flat.
OWN_WORK = re.compile(r"_(total|bucket)$")
# Counters both copies count alike: every export of each leaves out the same objects' series.
SHARED_COUNTERS = frozenset({"oco_object_series_dropped_total"})
EVAL = "10m"
# One copy's samples: metric, labels (without job and instance), promtool values expression.
CRM, ERP = 'namespace="sales",name="crm"', 'namespace="sales",name="erp"'
SAMPLES: tuple[tuple[str, str, str], ...] = (
    ("oco_connectorinstance_condition", f'{CRM},type="Ready",status="False",reason="APIUnavailable"', "1x40"),
    ("oco_connectorinstance_condition", f'{CRM},type="Stalled",status="True",reason="InvalidSpec"', "1x40"),
    ("oco_connectorinstance_condition", f'{ERP},type="Ready",status="True",reason="Available"', "1x40"),
    ("oco_connectorinstance_condition_last_transition_timestamp_seconds", f'{CRM},type="Ready"', "0x40"),
    ("oco_connectorinstance_condition_last_transition_timestamp_seconds", f'{CRM},type="Stalled"', "60x40"),
    (
        "oco_connectorinstance_info",
        f'{CRM},connector="sfdc",instance_id="7",account="ConnectorAccount/team"',
        "1x40",
    ),
    ("oco_connectorinstance_info", f'{ERP},connector="sap",instance_id="8",account=""', "1x40"),
    ("oco_platform_instance_valid", CRM, "0x40"),
    ("oco_platform_instance_disabled", ERP, "1x40"),
    (
        "oco_account_condition",
        'kind="ConnectorAccount",namespace="sales",name="team",type="Ready",status="False",reason="CircuitOpen"',
        "1x40",
    ),
    (
        "oco_account_condition",
        'kind="ClusterConnectorAccount",namespace="",name="shared",type="Ready",status="True",reason="Available"',
        "1x40",
    ),
    ("oco_connectorinstances", 'ready="False",reason="APIUnavailable"', "1x40"),
    ("oco_connectorinstances", 'ready="True",reason="Available"', "1x40"),
    ("oco_stray_instances", 'host="api.example"', "2x40"),
    ("oco_object_series", "", "22x40"),
    ("oco_object_series_dropped_total", 'namespace="sales"', "0+10x40"),
    ("oco_object_series_dropped_total", 'namespace=""', "0+2x40"),
    ("oco_connectorinstance_drift_corrections_total", CRM, "0+1x40"),
    (
        "oco_account_budget_wait_seconds_total",
        'kind="ConnectorAccount",namespace="sales",name="team"',
        "0+30x40",
    ),
    ("oco_time_to_ready_seconds_bucket", 'cause="create",le="1"', "0+1x40"),
    ("oco_time_to_ready_seconds_bucket", 'cause="create",le="+Inf"', "0+3x40"),
    ("oco_api_requests_total", 'method="GET",status="200"', "0+5x40"),
    ("oco_api_request_duration_seconds_bucket", 'method="GET",le="0.1"', "0+4x40"),
    ("oco_api_request_duration_seconds_bucket", 'method="GET",le="+Inf"', "0+5x40"),
    ("oco_rate_limit_wait_seconds_total", "", "0+1x40"),
    ("oco_reconciles_total", 'result="success"', "0+3x40"),
    ("oco_reconcile_duration_seconds_bucket", 'result="success",le="1"', "0+2x40"),
    ("oco_reconcile_duration_seconds_bucket", 'result="success",le="+Inf"', "0+3x40"),
    ("oco_retries_total", 'reason="APIUnavailable"', "0+1x40"),
)
_METRIC = re.compile(r"\b(oco_\w+)(\{)?")


def with_target(name: str, labels: str, job: str, instance: str) -> str:
    return f'{name}{{job="{job}",instance="{instance}"' + (f",{labels}}}" if labels else "}")


def input_series() -> list[dict[str, str]]:
    rows = []
    for name, labels, values in SAMPLES:
        flat = bool(OWN_WORK.search(name)) and name not in SHARED_COUNTERS
        rows.append({"series": with_target(name, labels, "single", "a"), "values": values})
        rows.append({"series": with_target(name, labels, "double", "a"), "values": values})
        # The second copy: the same state, its own work flat (a constant count from before).
        rows.append(
            {"series": with_target(name, labels, "double", "b"), "values": "7x40" if flat else values}
        )
    return rows


def of_job(expr: str, job: str) -> str:
    """`expr` with its variables at "All" and every metric selector restricted to `job`."""
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return _METRIC.sub(lambda m: f'{m[1]}{{job="{job}", ' if m[2] else f'{m[1]}{{job="{job}"}}', expr)


def cases(expr: str) -> list[dict[str, Any]]:
    """The query answers something with one copy, and the same with two (no series more or fewer,
    none of another value)."""
    one, two = f"({of_job(expr, 'single')})", f"({of_job(expr, 'double')})"
    differ = " or ".join(
        f"({a} {op} ignoring (job) {b})"
        for a, op, b in ((two, "!=", one), (two, "unless", one), (one, "unless", two))
    )
    return [
        {"expr": f"count({one}) > bool 0", "eval_time": EVAL, "exp_samples": [{"labels": "{}", "value": 1}]},
        {"expr": differ, "eval_time": EVAL, "exp_samples": []},
    ]


def evaluate(exprs: list[str], directory: Path) -> tuple[int, str]:
    tests = [
        {
            "interval": "15s",
            "input_series": input_series(),
            "promql_expr_test": [c for e in exprs for c in cases(e)],
        }
    ]
    (directory / "handover_test.yaml").write_text(yaml.safe_dump({"tests": tests}, sort_keys=False))
    done = promtool("test", "rules", "handover_test.yaml", cwd=directory)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def panel_queries() -> list[str]:
    return [expr for where, expr in queries(json.loads(DASHBOARD.read_text())) if where.startswith("panel")]


def test_every_panel_shows_the_same_with_two_copies_of_the_operator_scraped(
    panel_queries: list[str], tmp_path: Path
) -> None:
    assert len(panel_queries) > 30
    returncode, output = evaluate(panel_queries, tmp_path)
    assert returncode == 0, output


@pytest.mark.parametrize(
    "expr",
    [
        "sum by (ready, reason) (oco_connectorinstances)",  # the aggregate, one copy each
        'count(oco_connectorinstance_condition{type="Ready", status!="True"})',  # per object, not max by
        "sum(increase(oco_object_series_dropped_total[$__range]))",  # both copies drop alike
    ],
)
def test_a_query_that_counts_both_copies_is_reported(expr: str, tmp_path: Path) -> None:
    returncode, output = evaluate([expr], tmp_path)
    assert returncode != 0
    assert "unless ignoring (job)" in output  # the comparison failed, not the query's answering at all


def test_the_samples_cover_every_metric_the_panels_query(panel_queries: list[str]) -> None:
    sampled = {name for name, _, _ in SAMPLES}
    queried = {match[1] for expr in panel_queries for match in _METRIC.finditer(expr)}
    assert queried <= sampled, queried - sampled
