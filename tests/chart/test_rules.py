"""The chart's alert rules (prometheusRule.*): rendered by helm, checked and unit-tested by promtool.

promtool's unit tests (tests/chart/rules/alerts_test.yaml) show each alert firing with its labels
and annotations, Prometheus' templates expanded, and not firing where it must not; here they run
against the rules as the chart renders them. The rest holds the rules to the operator's metrics,
to the README's runbooks and to the values. No process but helm and promtool (both built from
their Go modules and cached, hack/); the end-to-end case, on the operator's own scraped samples,
is tests/integration/test_alert_e2e.py.
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
    assert rules["OpenConnectorsInstanceNotReady"]["for"] == "1h"
    assert "more than 1h" in rules["OpenConnectorsInstanceNotReady"]["annotations"]["description"]


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
