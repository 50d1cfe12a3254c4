"""The chart's alert rules as Prometheus loads them, and promtool to check and unit-test them.

The rules come from `helm template` of the chart with prometheusRule.enabled, never from a copy:
the promtool unit tests beside this module (alerts_test.yaml) and the end-to-end alert test
(tests/integration/test_alert_e2e.py) both evaluate what the chart ships.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from hack.promtool import ensure_promtool
from tests.chart.support import render

HERE = Path(__file__).resolve().parent
UNIT_TESTS = HERE / "alerts_test.yaml"
RELEASE = "oco"
# The job the chart's ServiceMonitor gives the operator's target: the metrics Service's name.
JOB = f"{RELEASE}-open-connectors-operator-metrics"


@functools.cache
def promtool_binary() -> Path:
    return ensure_promtool(quiet=True)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_binary()), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def prometheus_rule(*args: str) -> dict[str, Any]:
    """The PrometheusRule the chart renders with prometheusRule.enabled (renderMode always: no
    cluster to ask whether it serves the kind) and `args`."""
    enabled = ("--set", "prometheusRule.enabled=true", "--set", "prometheusRule.renderMode=always")
    [rule] = [o for o in render(*enabled, *args, release=RELEASE) if o["kind"] == "PrometheusRule"]
    return rule


def alerts(*args: str) -> dict[str, dict[str, Any]]:
    """The rendered alerting rules by name."""
    groups = prometheus_rule(*args)["spec"]["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def write_rule_file(directory: Path, *args: str) -> Path:
    """The PrometheusRule's spec as a Prometheus rule file (the same `groups`), in `directory`."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rule(*args)["spec"]["groups"]}, sort_keys=False))
    return path


def copy_unit_tests(directory: Path) -> Path:
    """alerts_test.yaml beside a rule file written by write_rule_file (its rule_files: [rules.yaml])."""
    return Path(shutil.copy(UNIT_TESTS, directory / UNIT_TESTS.name))
