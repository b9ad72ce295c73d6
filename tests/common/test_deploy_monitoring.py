"""deploy/: the Prometheus alert rules, their promtool unit tests, the example scrape
configuration and the Grafana dashboard use exactly the metric names README.md
"Operating" lists (the names docs/METRICS.md documents)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"

# PromQL words that are not metric names (functions, aggregations, keywords).
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase", "delta", "deriv",
    "histogram_quantile", "time", "absent", "and", "or", "unless", "by", "without", "offset", "on", "ignoring",
    "group_left", "group_right", "bool", "max_over_time", "min_over_time", "avg_over_time",
}  # fmt: skip
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: it checks and tests deploy/prometheus/. Install Debian's `prometheus` "
            "package (`apt-get install -y prometheus`; `.ci/run` does it when it is absent)."
        )
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    result = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def listed_metrics() -> dict[str, str]:
    """name -> type, from the metrics table of README.md "Operating"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Operating\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (counter|histogram|gauge)", section, re.MULTILINE)
    assert len(rows) >= 20, "README.md Operating: the metrics table was not found"
    return dict(rows)


def listed_labels() -> dict[str, set[str]]:
    """name -> its label names, from the same table (`outcome` (succeeded, …), `status_class`)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Operating\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (?:counter|histogram|gauge)[^|]*\| ([^|]*)\|", section, re.MULTILINE)
    return {name: set(re.findall(r"`([a-z_]+)`", labels)) for name, labels in rows}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (label matchers, groupings, ranges, strings and
    legend templates removed; a histogram's _bucket/_count/_sum series name the histogram)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set()
    for word in re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if word in PROMQL_WORDS:
            continue
        for suffix in HISTOGRAM_SERIES:
            if word.endswith(suffix):
                word = word.removesuffix(suffix)
                break
        names.add(word)
    return names


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_metric_names_parser_finds_names_and_skips_promql():
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{a="b"}[5m])))'
    assert metric_names(expr) == {"http_request_duration_seconds"}
    assert metric_names("max(webhook_disabled) > max(webhook_disabled offset 15m)") == {"webhook_disabled"}
    assert metric_names("time() - max by (schedule) (schedule_next_run_timestamp_seconds) > 0") == {
        "schedule_next_run_timestamp_seconds"
    }


def test_promtool_checks_the_alert_rules():
    result = run_promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_alert_rules_pass():
    result = run_promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_example_scrape_config(tmp_path):
    # The example reads the token from `metrics_token` next to it, as the README says.
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    (tmp_path / "metrics_token").write_text("a-metrics-token\n")
    result = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "is valid prometheus config file syntax" in result.stdout
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "metrics_token"}
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_has_severity_summary_description_and_runbook():
    rules = alert_rules()
    assert len(rules) == 8
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["annotations"]["runbook"].startswith(f"README.md Operating > Alerts > {rule['alert']}:")


def test_every_alert_is_tested_firing_and_quiet():
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fires, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert fires == names
    assert quiet == names


def test_alerts_use_only_listed_metric_names():
    listed = listed_metrics()
    used = set()
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= set(listed), (rule["alert"], sorted(names - set(listed)))
        used |= names
    for name in ("webhook_lag_seconds", "webhook_due_backlog", "webhook_deliveries_total", "webhook_disabled"):
        assert name in used
    assert {"schedule_next_run_timestamp_seconds", "health_status_changes_total"} <= used
    assert "integration_token_refreshes_total" in used


def test_alerts_and_panels_match_only_listed_labels():
    labels = listed_labels()
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    checked = 0
    for expr in exprs:
        for metric, matchers in re.findall(r"([a-z_]+)\{([^}]*)\}", expr):
            metric = metric.removesuffix("_bucket")
            for label in re.findall(r"([a-z_]+)\s*[!=]~?", matchers):
                assert label in labels[metric], (expr, metric, label)
                checked += 1
    assert checked >= 8


def test_schedule_alerts_name_registered_schedules():
    from common.schedules import registered_schedules

    registered = {spec.name for spec in registered_schedules()}
    named = set()
    for rule in alert_rules():
        for values in re.findall(r'schedule=~?"([^"]+)"', rule["expr"]):
            named |= set(values.split("|"))
    assert {"webhooks.sweep", "health.run_checks", "health.heartbeat"} <= named
    assert named <= registered, sorted(named - registered)


def test_dashboard_shows_every_listed_metric_and_only_those():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    listed = listed_metrics()
    shown = set()
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names <= set(listed), (expr, sorted(names - set(listed)))
        shown |= names
    assert shown == set(listed), sorted(set(listed) - shown)


def test_dashboard_histograms_show_p50_and_p95():
    exprs = dashboard_exprs()
    for name, kind in listed_metrics().items():
        if kind != "histogram":
            continue
        quantiles = {q for expr in exprs for q in re.findall(rf"histogram_quantile\((0\.\d+), .*{name}_bucket", expr)}
        assert "0.95" in quantiles, name
    for name in ("webhook_attempt_duration_seconds", "webhook_end_to_end_latency_seconds"):
        assert any(f"histogram_quantile(0.5, sum by (le) (rate({name}_bucket" in expr for expr in exprs), name
