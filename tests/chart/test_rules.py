"""The chart's alert rules (prometheusRule.*): rendered by helm, checked and unit-tested by promtool.

promtool's unit tests (tests/chart/rules/alerts_test.yaml) show each alert firing with its labels
and annotations, Prometheus' templates expanded, and not firing where it must not; here they run
against the rules as the chart renders them. The rest holds the rules to the operator's metrics,
to the README's runbooks and to the values, and the chart's conversion of the condition alerts'
thresholds to seconds to Prometheus' own reading of those durations. No process but helm and
promtool (both built from their Go modules and cached, hack/); the end-to-end case, on the
operator's own scraped samples, is tests/integration/test_alert_e2e.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.rules import (
    JOB,
    UNIT_TESTS,
    alerts,
    copy_unit_tests,
    prometheus_rule,
    promtool,
    write_rule_file,
)
from tests.chart.support import CHART, ROOT, helm, render
from tests.chart.test_dashboard import exported_metric_names

SHIPPED = {
    "OpenConnectorsInstanceStalled",
    "OpenConnectorsInstanceNotReady",
    "OpenConnectorsInstanceSyncFailing",
    "OpenConnectorsPlatformInstanceInvalid",
    "OpenConnectorsPlatformInstanceDisabled",
    "OpenConnectorsAccountCircuitOpen",
    "OpenConnectorsAccountBudgetWaits",
    "OpenConnectorsOperatorAbsent",
    "OpenConnectorsDriftCorrectedRepeatedly",
    "OpenConnectorsObjectSeriesDropped",
}


def test_the_rules_pass_promtool_check(tmp_path: Path) -> None:
    done = promtool("check", "rules", str(write_rule_file(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(SHIPPED)} rules found" in done.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say(tmp_path: Path) -> None:
    write_rule_file(tmp_path)
    done = promtool("test", "rules", str(copy_unit_tests(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_fail_on_rules_other_than_the_chart_s(tmp_path: Path) -> None:
    # A threshold moved by a value: the Stalled instance has not fired yet at 16 minutes.
    write_rule_file(tmp_path, "--set", "prometheusRule.stalledFor=20m")
    done = promtool("test", "rules", str(copy_unit_tests(tmp_path)), cwd=tmp_path)
    assert done.returncode != 0
    assert "alertname: OpenConnectorsInstanceStalled, time: 16m" in done.stdout + done.stderr


def test_every_shipped_alert_is_unit_tested_firing_and_quiet() -> None:
    assert set(alerts()) == SHIPPED
    cases = [
        case
        for group in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]
    assert {case["alertname"] for case in cases} == SHIPPED
    assert {case["alertname"] for case in cases if case["exp_alerts"]} == SHIPPED
    assert {case["alertname"] for case in cases if not case["exp_alerts"]} == SHIPPED


def test_every_rule_queries_only_metrics_the_operator_exports() -> None:
    exported = exported_metric_names() | {"up"}  # `up`: Prometheus' own, per scrape target
    for name, rule in alerts().items():
        queried = set(re.findall(r"\b(oco_\w+|up)\b", rule["expr"]))
        assert queried, name
        assert queried <= exported, f"{name}: {queried - exported} not exported"
        assert all(f'job="{JOB}"' in matchers for matchers in re.findall(r"\{[^}]*\}", rule["expr"])), name


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation gone, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_its_runbook_in_the_readme() -> None:
    home = yaml.safe_load((CHART / "Chart.yaml").read_text())["home"]
    readme = (ROOT / "README.md").read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)}
    assert "alerts-and-runbooks" in anchors
    for name, rule in alerts().items():
        base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert base == f"{home}/blob/main/README.md"
        assert anchor == name.lower(), name
        assert anchor in anchors, f"no README heading for {name}"
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
    custom = alerts("--set", "prometheusRule.runbookBaseURL=https://wiki.example/oco")
    assert {r["annotations"]["runbook_url"] for r in custom.values()} == {
        f"https://wiki.example/oco#{name.lower()}" for name in SHIPPED
    }


def kinds(*args: str) -> set[str]:
    return {o["kind"] for o in render(*args)}


def test_the_rule_renders_when_enabled_and_the_cluster_serves_its_kind() -> None:
    assert "PrometheusRule" not in kinds()
    assert "PrometheusRule" not in kinds("--set", "prometheusRule.enabled=true")
    served = ("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
    assert "PrometheusRule" in kinds("--set", "prometheusRule.enabled=true", *served)
    always = ("--set", "prometheusRule.renderMode=always")
    assert "PrometheusRule" in kinds("--set", "prometheusRule.enabled=true", *always)


def test_values_shape_the_rules() -> None:
    rule = prometheus_rule(
        "--set", "prometheusRule.job=operators",
        "--set", "prometheusRule.labels.release=kube-prometheus-stack",
        "--set", "prometheusRule.alertLabels.team=platform",
        "--set", "prometheusRule.severities.OpenConnectorsInstanceSyncFailing=info",
        "--set", "prometheusRule.disabledAlerts={OpenConnectorsAccountBudgetWaits}",
        "--set", "prometheusRule.notReadyFor=1h",
        "--set", "prometheusRule.keepFiringFor=10m",
    )  # fmt: skip
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules: dict[str, dict[str, Any]] = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(rules) == SHIPPED - {"OpenConnectorsAccountBudgetWaits"}
    for name, shipped in rules.items():
        assert 'job="operators"' in shipped["expr"], name
        assert JOB not in shipped["expr"], name
        severity = "critical" if name == "OpenConnectorsOperatorAbsent" else "warning"
        if name == "OpenConnectorsInstanceSyncFailing":
            severity = "info"
        assert shipped["labels"] == {"severity": severity, "team": "platform"}, name
    not_ready = rules["OpenConnectorsInstanceNotReady"]
    assert "for" not in not_ready  # the threshold is in the expression, since lastTransitionTime
    assert re.search(r"\) > 3600\n", not_ready["expr"]), not_ready["expr"]
    assert "more than 1h" in not_ready["annotations"]["description"]
    conditions = {
        "OpenConnectorsInstanceStalled",
        "OpenConnectorsInstanceNotReady",
        "OpenConnectorsInstanceSyncFailing",
    }
    assert {name for name, r in rules.items() if r.get("keep_firing_for") == "10m"} == conditions
    assert all("keep_firing_for" not in r for r in alerts("--set", "prometheusRule.keepFiringFor=").values())


THRESHOLDS = {
    "stalledFor": "OpenConnectorsInstanceStalled",
    "notReadyFor": "OpenConnectorsInstanceNotReady",
    "syncFailingFor": "OpenConnectorsInstanceSyncFailing",
}


def threshold_seconds(values: dict[str, str]) -> dict[str, str]:
    """The number each condition alert's expression compares the time since the transition with."""
    rules = alerts(
        *(arg for key, value in values.items() for arg in ("--set", f"prometheusRule.{key}={value}"))
    )
    found = {key: re.findall(r"\) > (\S+)\n", rules[name]["expr"]) for key, name in THRESHOLDS.items()}
    assert all(len(numbers) == 1 for numbers in found.values()), found
    return {key: numbers[0] for key, numbers in found.items()}


@pytest.mark.parametrize(
    "durations",
    [
        {"stalledFor": "15m", "notReadyFor": "90s", "syncFailingFor": "1h30m"},
        {"stalledFor": "1y2w3d4h5m6s", "notReadyFor": "2d", "syncFailingFor": "0s"},
        {"stalledFor": "1w", "notReadyFor": "36h", "syncFailingFor": "100000s"},
    ],
)
def test_threshold_durations_become_the_seconds_prometheus_reads_them_as(
    durations: dict[str, str], tmp_path: Path
) -> None:
    """The chart converts the values to seconds; Prometheus' own parser is the oracle: promtool reads
    each duration as an evaluation time, where time() is that many seconds."""
    seconds = threshold_seconds(durations)
    assert all(number.isdigit() for number in seconds.values()), seconds  # whole seconds, exactly
    cases = [
        {
            "expr": "vector(time())",
            "eval_time": durations[key],
            "exp_samples": [{"labels": "{}", "value": int(n)}],
        }
        for key, n in seconds.items()
    ]
    tests = {"tests": [{"interval": "1m", "input_series": [], "promql_expr_test": cases}]}
    (tmp_path / "durations_test.yaml").write_text(yaml.safe_dump(tests))
    done = promtool("test", "rules", "durations_test.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("prometheusRule.enabled=maybe", "enabled"),
        ("prometheusRule.renderMode=sometimes", "renderMode"),
        ("prometheusRule.disabledAlerts={OpenConnectorsNoSuchAlert}", "disabledAlerts"),
        ("prometheusRule.severities.OpenConnectorsInstanceStalled=page", "severities"),
        ("prometheusRule.severities.NoSuchAlert=warning", "invalid propertyName 'NoSuchAlert'"),
        ("prometheusRule.alertLabels.severity=critical", "invalid propertyName 'severity'"),
        ("prometheusRule.alertLabels.team-name=x", "invalid propertyName 'team-name'"),
        ("prometheusRule.stalledFor=15 minutes", "stalledFor"),
        # Prometheus reads units largest first, each once; a threshold has no ms (whole seconds).
        ("prometheusRule.notReadyFor=30m1h", "notReadyFor"),
        ("prometheusRule.syncFailingFor=1500ms", "syncFailingFor"),
        ("prometheusRule.stalledFor=", "stalledFor"),
        ("prometheusRule.absentFor=5m1h", "absentFor"),
        ("prometheusRule.keepFiringFor=5 m", "keepFiringFor"),
        ("prometheusRule.driftWindow=-1h", "driftWindow"),
        ("prometheusRule.budgetWaitSecondsPerMinute=0", "budgetWaitSecondsPerMinute"),
        ("prometheusRule.driftCorrections=many", "driftCorrections"),
        ("prometheusRule.runbookBaseURL=https://wiki.example/oco#alerts", "runbookBaseURL"),
        ("prometheusRule.mistyped=1", "mistyped"),
    ],
)
def test_mistyped_rule_values_are_rejected(value: str, complaint: str) -> None:
    result = helm("template", "x", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr
