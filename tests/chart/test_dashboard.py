"""The Grafana dashboard the chart ships (dashboards/open-connectors-operator.json), linted.

It is valid JSON of a current Grafana's dashboard model; every panel is of a core type, sits on the
grid, has a unique id and queries the `datasource` variable (a Prometheus picked on the dashboard,
as a sidecar-provisioned dashboard cannot name one); and every query names only metrics the
operator exports. Those come from the operator's own registry (`connector_operator.metrics`: what
it collects, and what its collectors describe without samples), never from a list here, so a
renamed metric fails this test until the dashboard follows. Each check is shown to fail on a planted
fault. The chart renders the JSON, unchanged, into a ConfigMap with the sidecar's label.

No process and no API server: helm renders, promtool parses (both built from their Go modules and
cached).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.promtool import ensure_promtool
from tests.chart.support import CHART, helm, render

DASHBOARD = CHART / "dashboards" / "open-connectors-operator.json"
CONFIGMAP = "oco-open-connectors-operator-dashboard"
PANEL_TYPES = frozenset(
    {"timeseries", "stat", "table", "bargauge", "gauge", "text", "row", "state-timeline", "heatmap"}
)
QUERYLESS = frozenset({"row", "text"})
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
# Grafana 12's dashboard model; Grafana 13 (42) migrates it forward when it loads the dashboard.
MIN_SCHEMA_VERSION = 41

# PromQL's functions and aggregation operators (Prometheus 3): a name called like a function must
# be one of these, so that a metric name written as a call is not silently skipped.
# fmt: off
FUNCTIONS = frozenset((
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta",
    "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg", "histogram_count",
    "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "hour", "idelta", "increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln",
    "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round",
    "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
    "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector",
    "year", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio", "start", "end",
))
# Words that are neither metrics nor calls: binary and set operators, modifiers, number literals.
KEYWORDS = frozenset((
    "and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
    "group_right", "inf", "nan",
))
# fmt: on
# Grafana's variables, as Prometheus would see them after interpolation (for promtool's parse).
INTERPOLATED = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s"}

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"(?P<number>\.?\d[\w.]*)|(?P<name>[A-Za-z_:][\w:]*)(?P<call>\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$")

# Samples a family of each type exports, by suffix (the text format: a counter `x` is `x_total`).
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def exported_metric_names() -> set[str]:
    """The series names the operator exports: every family its registry collects now, and every one
    its collectors describe (the per-object collector names its families even with no object)."""
    from connector_operator import metrics

    families = list(metrics.REGISTRY.collect())
    for value in vars(metrics).values():
        if isinstance(value, type):  # the collector classes; their instances are what exports
            continue
        if callable(getattr(value, "describe", None)) and callable(getattr(value, "collect", None)):
            families += value.describe()
    names: set[str] = set()
    for family in families:
        names |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def metric_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, unknown function names) in a PromQL expression. Strings, label matchers,
    ranges, Grafana variables and the label lists of by/without/on/ignoring/group_* go first, so
    that no label name or value is taken for a metric; a name then is a call, a keyword or a metric."""
    text = _STRING.sub(" ", expr)
    for pattern in (_MATCHERS, _RANGE, _VARIABLE, _LABEL_LIST):
        text = pattern.sub(" ", text)
    metrics: set[str] = set()
    unknown_calls: set[str] = set()
    for token in _TOKEN.finditer(text):
        name = token.group("name")
        if name is None or name.lower() in KEYWORDS:
            continue
        if token.group("call"):
            unknown_calls |= {name} - FUNCTIONS
        else:
            metrics.add(name)
    return metrics, unknown_calls


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('id')} {target.get('refId')}", target.get("expr", "")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query", "")
            query = query.get("query", "") if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(query)
            yield f"variable {variable.get('name')}", match.group("selector") if match else query


def lint_query(where: str, expr: str, exported: set[str]) -> list[str]:
    if not expr.strip():
        return [f"{where}: no expression"]
    if "__name__" in expr:
        return [f"{where}: selects metrics by __name__, which this lint cannot check"]
    names, unknown_calls = metric_names(expr)
    problems = [f"{where}: unknown function {name}" for name in sorted(unknown_calls)]
    problems += [f"{where}: {name} is not a metric the operator exports" for name in sorted(names - exported)]
    if not names:
        problems.append(f"{where}: names no metric")
    return problems


def lint_panel(panel: dict[str, Any]) -> list[str]:
    where = f"panel {panel.get('id')} ({panel.get('title')!r})"
    kind = panel.get("type")
    problems = [] if kind in PANEL_TYPES else [f"{where}: type {kind!r} is not a core panel type"]
    grid = panel.get("gridPos", {})
    if not all(isinstance(grid.get(k), int) for k in "xywh"):
        return [*problems, f"{where}: gridPos needs integer x, y, w, h"]
    if grid["x"] < 0 or grid["w"] < 1 or grid["h"] < 1 or grid["x"] + grid["w"] > GRID_WIDTH:
        problems.append(f"{where}: gridPos {grid} is off the {GRID_WIDTH}-column grid")
    if kind in QUERYLESS:
        return problems
    if panel.get("datasource") != DATASOURCE:
        problems.append(f"{where}: datasource is not the `datasource` variable")
    targets = panel.get("targets", [])
    if not targets:
        problems.append(f"{where}: no query")
    if any(target.get("datasource") != DATASOURCE for target in targets):
        problems.append(f"{where}: a query's datasource is not the `datasource` variable")
    if len({target.get("refId") for target in targets}) != len(targets):
        problems.append(f"{where}: refIds are not unique")
    return problems


def lint_layout(dashboard: dict[str, Any]) -> list[str]:
    """Unique ids, and no two panels on the same grid cell."""
    problems = []
    ids = [panel.get("id") for panel in panels(dashboard)]
    problems += [f"panel id {i} is not unique" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if not all(isinstance(i, int) for i in ids):
        problems.append("every panel needs an integer id")
    owner: dict[tuple[int, int], Any] = {}
    for panel in dashboard.get("panels", []):  # the visible grid: collapsed rows' panels are not on it
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh"):
            continue
        for cell in (
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        ):
            if cell in owner:
                problems.append(f"panels {owner[cell]} and {panel.get('id')} overlap at {cell}")
                break
            owner[cell] = panel.get("id")
    return problems


def lint_variables(dashboard: dict[str, Any]) -> list[str]:
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    problems = []
    if (source.get("type"), source.get("query")) != ("datasource", "prometheus"):
        problems.append("no `datasource` variable of Prometheus data sources")
    for name in ("namespace", "name"):
        variable = variables.get(name, {})
        query = str(variable.get("query", ""))
        if variable.get("type") != "query" or "label_values(oco_connectorinstance_info" not in query:
            problems.append(f"variable {name} is not label_values of oco_connectorinstance_info")
    return problems


def lint(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    problems = []
    version = dashboard.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion {version!r} is older than {MIN_SCHEMA_VERSION}")
    for key in ("title", "uid"):
        if not dashboard.get(key):
            problems.append(f"no {key}")
    problems += lint_variables(dashboard)
    problems += lint_layout(dashboard)
    for panel in panels(dashboard):
        problems += lint_panel(panel)
    for where, expr in queries(dashboard):
        problems += lint_query(where, expr, exported)
    return problems


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_metric_names()


def test_the_dashboard_passes_the_lint(dashboard: dict[str, Any], exported: set[str]) -> None:
    assert lint(dashboard, exported) == []
    # It shows what issue 21 asks of it: a panel for each of these.
    used = set().union(*(metric_names(expr)[0] for _, expr in queries(dashboard)))
    wanted = {
        name
        for name in exported
        if name.startswith("oco_") and not name.endswith(("_sum", "_count", "_created"))
    }
    assert wanted - used == set(), "metrics the operator exports that no panel shows"


def test_the_exported_names_come_from_the_registry_with_their_series_suffixes(exported: set[str]) -> None:
    # A counter family `oco_reconciles` is stored as `oco_reconciles_total`, a histogram as its
    # `_bucket`, `_sum` and `_count`: the bare family names are no series anyone can query.
    assert {
        "oco_reconciles_total",
        "oco_time_to_ready_seconds_bucket",
        "oco_connectorinstance_condition",
    } <= exported
    assert not {"oco_reconciles", "oco_time_to_ready_seconds"} & exported


def test_the_per_object_families_are_found_while_their_collector_exports_nothing() -> None:
    """With per-object metrics off the collector yields nothing: its describe() still names them."""
    from connector_operator import metrics

    enabled, cap = metrics.SERIES.enabled, metrics.SERIES.max_series
    metrics.SERIES.configure(False, cap)
    try:
        assert not {family.name for family in metrics.SERIES.collect()}
        assert "oco_account_budget_wait_seconds_total" in exported_metric_names()
    finally:
        metrics.SERIES.configure(enabled, cap)


@pytest.mark.parametrize(
    ("expr", "metrics"),
    [
        ('sum by (le, cause) (rate(x_bucket{le!="+Inf", job=~"a|b"}[5m] offset 1h))', {"x_bucket"}),
        ("a * on (namespace, name) group_left (connector) b_info or on (name) c", {"a", "b_info", "c"}),
        ('label_replace(max(v) without (pod) == 0, "problem", "invalid", "", "")', {"v"}),
        ("sum(rate(x_total[$__rate_interval])) by (reason) > bool 1e-9 and ignoring (a) y", {"x_total", "y"}),
        ('count(m{name=~"$name", reason="rate(z)"}) or vector(0)', {"m"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m]))) / scalar(w) atan2 inf",
            {"h_bucket", "w"},
        ),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, metrics: set[str]) -> None:
    assert metric_names(expr) == (metrics, set())


def plant(dashboard: dict[str, Any], fault: str) -> dict[str, Any]:
    """The dashboard with one fault planted in its first timeseries panel (or the dashboard)."""
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] == "timeseries")
    if fault == "unknown metric":
        panel["targets"][0]["expr"] = "sum(rate(oco_reconcile_totals[$__rate_interval]))"
    elif fault == "metric called as a function":
        panel["targets"][0]["expr"] = "sum(oco_reconciles_total(5m))"
    elif fault == "unknown metric in a variable":
        broken["templating"]["list"][1]["query"] = "label_values(oco_connector_info, namespace)"
    elif fault == "panel type":
        panel["type"] = "graph"  # the old Angular graph panel, gone from current Grafana
    elif fault == "datasource":
        panel["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    elif fault == "query datasource":
        del panel["targets"][0]["datasource"]
    elif fault == "duplicate id":
        panel["id"] = broken["panels"][1]["id"]
    elif fault == "gridPos":
        del panel["gridPos"]
    elif fault == "overlap":
        panel["gridPos"] = dict(broken["panels"][1]["gridPos"])
    elif fault == "schemaVersion":
        broken["schemaVersion"] = 27
    return broken


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ("unknown metric", "oco_reconcile_totals is not a metric the operator exports"),
        ("metric called as a function", "unknown function oco_reconciles_total"),
        ("unknown metric in a variable", "variable namespace: oco_connector_info is not a metric"),
        ("panel type", "type 'graph' is not a core panel type"),
        ("datasource", "datasource is not the `datasource` variable"),
        ("query datasource", "a query's datasource is not the `datasource` variable"),
        ("duplicate id", "is not unique"),
        ("gridPos", "gridPos needs integer x, y, w, h"),
        ("overlap", "overlap at"),
        ("schemaVersion", "schemaVersion 27 is older"),
    ],
)
def test_the_lint_reports_a_planted_fault(
    dashboard: dict[str, Any], exported: set[str], fault: str, complaint: str
) -> None:
    problems = lint(plant(dashboard, fault), exported)
    assert any(complaint in problem for problem in problems), problems


def promtool_check(named: list[tuple[str, str]], directory: Path) -> subprocess.CompletedProcess[str]:
    """promtool (Prometheus' own parser) checks each query as a recording rule, with Grafana's
    variables as Prometheus would receive them."""
    rules = []
    for number, (where, expr) in enumerate(named):
        for variable, value in INTERPOLATED.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expr, "labels": {"where": where}})
    path = directory / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run(
        [str(ensure_promtool(quiet=True)), "check", "rules", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_every_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    named = list(queries(dashboard))
    done = promtool_check(named, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(named)} rules found" in done.stdout


def test_a_query_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    done = promtool_check(
        [("planted", "sum by (le (rate(oco_reconciles_total[$__rate_interval]))")], tmp_path
    )
    assert done.returncode != 0
    assert "could not parse expression" in done.stderr


def configmaps(*args: str) -> list[dict[str, Any]]:
    return [o for o in render(*args) if o["kind"] == "ConfigMap"]


def test_the_chart_ships_the_dashboard_in_a_configmap_for_the_sidecar() -> None:
    assert not configmaps(), "off by default"
    [configmap] = configmaps("--set", "grafana.dashboard.enabled=true")
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["namespace"] == "oco"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    text = configmap["data"]["open-connectors-operator.json"]
    assert text == DASHBOARD.read_text().rstrip("\n")
    assert json.loads(text) == json.loads(DASHBOARD.read_text())


def test_the_configmap_goes_where_the_sidecar_looks() -> None:
    [configmap] = configmaps(
        "--set", "grafana.dashboard.enabled=true",
        "--set", "grafana.dashboard.namespace=monitoring",
        "--set", "grafana.dashboard.labels.grafana_dashboard=null",
        "--set-string", "grafana.dashboard.labels.dashboards=oco",
        "--set-string", "grafana.dashboard.annotations.grafana_folder=Operators",
    )  # fmt: skip
    assert configmap["metadata"]["name"] == CONFIGMAP
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["dashboards"] == "oco"
    assert "grafana_dashboard" not in configmap["metadata"]["labels"]
    assert configmap["metadata"]["labels"]["app.kubernetes.io/instance"] == "oco"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Operators"}


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("grafana.dashboard.enabled=maybe", "enabled"),
        ("grafana.dashboard.namespace=Not_A_Namespace", "namespace"),
        ("grafana.dashboard.labels.grafana_dashboard=1", "grafana_dashboard"),
        ("grafana.dashboard.folder=x", "folder"),
    ],
)
def test_mistyped_dashboard_values_are_rejected(value: str, complaint: str) -> None:
    result = helm("template", "x", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr
