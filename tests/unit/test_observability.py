"""Alert rules, scrape config and Grafana dashboards against the metrics the code exposes.

Every PromQL expression in deploy/prometheus/alerts.yml and deploy/grafana/dashboards/
may name only metrics in CATALOGUE below, and only their labels; every name the
catalogue says is exposed must be registered by the services' code. So renaming a
metric or a label in the code, in a rule or in a dashboard fails here.

promtool (installed by scripts/install) checks the config and rule syntax, runs the
rule unit tests in alerts.test.yml, and parses every dashboard query. Outside CI a
machine without promtool skips those checks; in CI (CI=true) a missing promtool fails.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from services.intake.config import IntakeSettings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))

# name: (type, labels). Prometheus adds `job` and `instance` to every series.
EXPOSED: dict[str, tuple[str, set[str]]] = {
    "vanda_intake_reports_total": ("counter", {"outcome"}),
    "vanda_intake_corrections_total": ("counter", {"kind", "outcome"}),
    "vanda_intake_incidents_total": ("counter", {"channel", "source", "outcome", "reason"}),
    "vanda_events_consumed_total": ("counter", {"topic", "outcome"}),
    "vanda_dead_letters_total": ("counter", {"topic", "reason"}),
    "vanda_dead_letters_waiting": ("gauge", {"topic"}),
    "vanda_dead_letters_oldest_waiting_seconds": ("gauge", {"topic"}),
    "vanda_dead_letters_deleted_in_seconds": ("gauge", {"topic"}),
    "vanda_dead_letters_uncounted_topics": ("gauge", set()),
    "vanda_consumer_batch_seconds": ("histogram", {"topic"}),
    "vanda_transient_retries_total": ("counter", {"operation"}),
    "vanda_sanction_decisions_total": ("counter", {"type"}),
    "vanda_outbox_published_total": ("counter", {"schema"}),
    "vanda_outbox_pending": ("gauge", {"schema"}),
    "vanda_ready": ("gauge", set()),
    "vanda_consumer_lag": ("gauge", {"group", "topic", "partition"}),
    "vanda_outbox_oldest_age_seconds": ("gauge", {"schema"}),
    "vanda_pending_approvals": ("gauge", set()),
    "vanda_oldest_pending_approval_age_seconds": ("gauge", set()),
    "vanda_active_bans": ("gauge", set()),
    "vanda_scheduler_runs_total": ("counter", {"outcome"}),
    "vanda_reporting_current_month": ("gauge", {"figure"}),
    "vanda_reporting_current_month_updated_timestamp_seconds": ("gauge", set()),
    "vanda_footage_delete_due": ("gauge", set()),
    "vanda_footage_oldest_delete_due_age_seconds": ("gauge", set()),
    "vanda_reporting_publishing_backlog": ("gauge", set()),
    "vanda_incident_to_decision_seconds": ("histogram", set()),
    # FastStream's Kafka middleware on every service's broker (vanda/runtime/metrics.py):
    # `handler` is the topic a subscriber reads. The services publish through their outbox
    # relay's own producer, not the broker, so the published_* series stay empty; they are
    # listed because every service registers them.
    **{f"faststream_{name}": (kind, {"app_name", "broker", *labels}) for name, kind, labels in (
        ("received_messages_total", "counter", {"handler"}),
        ("received_messages_size_bytes", "histogram", {"handler"}),
        ("received_messages_in_process", "gauge", {"handler"}),
        ("received_processed_messages_total", "counter", {"handler", "status"}),
        ("received_processed_messages_duration_seconds", "histogram", {"handler"}),
        ("received_processed_messages_exceptions_total", "counter", {"handler", "exception_type"}),
        ("published_messages_total", "counter", {"destination", "status"}),
        ("published_messages_duration_seconds", "histogram", {"destination"}),
        ("published_messages_exceptions_total", "counter", {"destination", "exception_type"}),
    )},
}
# Named by the alert rules and dashboards but not yet exposed by the services. When
# one is added, move it to EXPOSED: until then its type and labels are checked only
# if the code already registers it.
PLANNED: dict[str, tuple[str, set[str]]] = {}
CATALOGUE = EXPOSED | PLANNED
BUILTIN = {"up": ("gauge", set())}  # written by Prometheus itself for every target
TARGET_LABELS = {"job", "instance"}
SERVICES = ("intake", "sanctions", "reporting")
# Grafana's variables, replaced by something PromQL parses.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}


# --------------------------------------------------------------------------
# PromQL, read just enough to list the metrics and labels an expression uses
# --------------------------------------------------------------------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "atan2"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"\{([^}]*)\}")
MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def _references(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = {m for body in SELECTOR.findall(text) for m in MATCHER.findall(body)}
    text = SELECTOR.sub(" ", text)
    for _, names in GROUPING.findall(text):
        labels |= {n.strip() for n in names.split(",") if n.strip()}
    text = GROUPING.sub(" ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = {n for n in IDENTIFIER.findall(text) if n.lower() not in KEYWORDS}
    return names, labels


def _base(name: str) -> str | None:
    """The catalogued metric a series name belongs to (histograms have three series)."""
    known = CATALOGUE | BUILTIN
    if name in known:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        stem = name.removesuffix(suffix)
        if stem != name and known.get(stem, ("",))[0] == "histogram":
            return stem
    return None


def _check_expression(expr: str, where: str) -> None:
    names, labels = _references(expr)
    assert names, f"{where}: no metric in {expr!r}"
    allowed = set(TARGET_LABELS)
    for name in names:
        base = _base(name)
        assert base is not None, f"{where}: {name} is not in the metric catalogue (tests/unit/test_observability.py)"
        kind, own = (CATALOGUE | BUILTIN)[base]
        allowed |= own | ({"le"} if name.endswith("_bucket") else set())
    unknown = labels - allowed
    assert not unknown, f"{where}: label(s) {sorted(unknown)} not on {sorted(names)}"


def test_reference_reader_finds_metrics_and_labels_but_not_functions():
    expr = ('histogram_quantile(0.95, sum by (job, le) (rate(vanda_consumer_batch_seconds_bucket'
            '{topic=~"a|b"}[5m]))) > 5 unless on (job) up offset 5m or absent(vanda_ready{job="x"})')
    names, labels = _references(expr)
    assert names == {"vanda_consumer_batch_seconds_bucket", "up", "vanda_ready"}
    assert labels == {"job", "le", "topic"}


def test_a_renamed_metric_or_label_is_reported():
    with pytest.raises(AssertionError, match="vanda_outbox_backlog"):
        _check_expression("max(vanda_outbox_backlog)", "x")
    with pytest.raises(AssertionError, match="service"):
        _check_expression("max by (service) (vanda_outbox_pending)", "x")


# --------------------------------------------------------------------------
# the catalogue against the code
# --------------------------------------------------------------------------


def _registered() -> dict[str, tuple[str, set[str]]]:
    throwaway = {"pseudonym_key": secrets.token_urlsafe(48), "identity_key": secrets.token_urlsafe(48)}
    for service in SERVICES:
        # Building the app (which connects nothing) also builds the broker and its metrics middleware.
        bootstrap = importlib.import_module(f"services.{service}.bootstrap")
        if service == "intake":
            bootstrap.create_app(settings=IntakeSettings(**throwaway))
        else:
            bootstrap.create_app()
    found = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - labels are only kept on the collector
        name = getattr(collector, "_name", None)
        kind = getattr(collector, "_type", None)
        if not name or kind not in {"counter", "gauge", "histogram", "summary"}:
            continue
        full = f"{name}_total" if kind == "counter" else name
        found[full] = (kind, set(getattr(collector, "_labelnames", ())))
    return found


def test_every_catalogued_metric_is_exposed_with_its_type_and_labels():
    registered = _registered()
    for name, spec in EXPOSED.items():
        assert name in registered, f"{name} is catalogued as exposed but no service registers it"
        assert registered[name] == spec, f"{name}: the code has {registered[name]}, the catalogue {spec}"


def test_planned_metrics_once_added_match_what_rules_and_dashboards_expect():
    registered = _registered()
    for name, spec in PLANNED.items():
        if name in registered:
            assert registered[name] == spec, f"{name}: the code has {registered[name]}, the catalogue {spec}"


# --------------------------------------------------------------------------
# Prometheus: scrape config and alert rules
# --------------------------------------------------------------------------


def _alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_catalogued_metrics_and_labels():
    for rule in _alert_rules():
        _check_expression(rule["expr"], rule.get("alert") or rule.get("record"))


def test_every_alert_has_a_severity_a_summary_and_a_description():
    names = [rule["alert"] for rule in _alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_issue_s_alerts_all_exist():
    # Issue 7: lag growing, DLQ, outbox oldest row over a minute, not ready,
    # approvals pending over 7 days, scheduler not run.
    assert {"VandaConsumerLagGrowing", "VandaDeadLetters", "VandaOutboxOldestRowStale", "VandaNotReady",
            "VandaTargetDown", "VandaApprovalsPendingTooLong", "VandaSchedulerNotRunning"} <= {
        rule["alert"] for rule in _alert_rules()}


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text(encoding="utf-8"))
    fired = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert {rule["alert"] for rule in _alert_rules()} <= fired


def _promtool() -> str | None:
    beside = Path(sys.executable).with_name("promtool")
    found = str(beside) if beside.exists() else shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool is missing: scripts/install installs it; CI must not skip these checks")
        pytest.skip("promtool is not installed (scripts/install installs it)")
    return found


def _run(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_scrape_config_and_the_rules_it_loads():
    result = _run("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_kubernetes_scrape_config():
    result = _run("check", "config", "kubernetes.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_on_kubernetes_each_service_is_its_own_job_as_the_alerts_expect():
    config = yaml.safe_load((PROMETHEUS_DIR / "kubernetes.yml").read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    keep, port, ended, name, instance = job["relabel_configs"]
    assert (ended["source_labels"], ended["action"]) == (["__meta_kubernetes_pod_phase"], "drop")
    assert set(ended["regex"].split("|")) == {"Failed", "Succeeded"}
    services = {"intake", "sanctions", "reporting"}
    assert set(keep["regex"].split("|")) == services and keep["action"] == "keep"
    assert (name["source_labels"], name["target_label"]) == (keep["source_labels"], "job")
    for service in services:  # the label it keeps is the one each Deployment's pods carry
        deployment = yaml.safe_load_all((ROOT / "deploy" / "k8s" / f"{service}.yaml").read_text(encoding="utf-8"))
        [pods] = [d["spec"]["template"] for d in deployment if d and d["kind"] == "Deployment"]
        assert pods["metadata"]["labels"]["app.kubernetes.io/name"] == service
        assert {p["name"] for c in pods["spec"]["containers"] for p in c["ports"]} == {port["regex"]}
    assert 'up{job=~"intake|sanctions|reporting"}' in (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")


def test_promtool_accepts_the_alert_rules():
    result = _run("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_when_and_only_when_their_unit_tests_say():
    result = _run("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path):
    # Guards the checks above against passing vacuously.
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n")
    assert _run("check", "rules", str(bad)).returncode != 0


# --------------------------------------------------------------------------
# Grafana: provisioning and dashboards
# --------------------------------------------------------------------------


def _datasource_uid() -> str:
    provisioned = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    return source["uid"]


def _dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return panels


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable, Grafana variables replaced."""
    found = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            found.append((f"{dashboard['uid']}/{panel['title']}/{target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            if match := re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip()):
                found.append((f"{dashboard['uid']}/${variable['name']}", f"group by ({match[2]}) ({match[1]})"))
    names = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    return [(where, _substitute(expr, names)) for where, expr in found]


def _substitute(expr: str, variables: set[str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in GRAFANA_VARIABLES or name in variables, f"unknown Grafana variable ${name} in {expr!r}"
        return GRAFANA_VARIABLES.get(name, ".*")
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def test_there_is_a_pipeline_and_a_board_dashboard():
    uids = [_dashboard(path)["uid"] for path in DASHBOARDS]
    assert sorted(uids) == ["vanda-board", "vanda-pipeline"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_query_the_provisioned_prometheus(path: Path):
    dashboard = _dashboard(path)
    uid = _datasource_uid()
    assert dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in [panel["datasource"], *(t.get("datasource", panel["datasource"]) for t in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": uid}, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_only_catalogued_metrics_and_labels(path: Path):
    dashboard = _dashboard(path)
    for where, expr in _queries(dashboard):
        _check_expression(expr, where)
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            names, _ = _references(_substitute(target["expr"], set()))
            allowed = TARGET_LABELS | {"le"} | {label for n in names for label in (CATALOGUE | BUILTIN)[_base(n)][1]}
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            assert legend <= allowed, f"{panel['title']}: legend names {sorted(legend - allowed)}"


def test_pipeline_dashboard_shows_throughput_lag_latency_dead_letters_and_outbox():
    queries = " ".join(expr for _, expr in _queries(_dashboard(GRAFANA_DIR / "dashboards" / "vanda-pipeline.json")))
    for metric in ("vanda_events_consumed_total", "vanda_intake_incidents_total", "vanda_consumer_lag",
                   "vanda_consumer_batch_seconds_bucket", "vanda_dead_letters_total", "vanda_outbox_pending",
                   "vanda_ready", "vanda_transient_retries_total"):
        assert metric in queries, metric


def test_board_dashboard_asks_only_for_figures_reporting_exposes():
    from services.reporting.domain.objectives import HEADLINE
    from services.reporting.gauges import NOT_LIVE

    queries = [expr for _, expr in _queries(_dashboard(GRAFANA_DIR / "dashboards" / "vanda-board.json"))]
    figures = {f for expr in queries for f in re.findall(r'figure\s*=\s*"(\w+)"', expr)}
    assert {"incidents", "incidents_per_1000_staff", "body_worn_camera_share", "active_bans_at_period_end"} <= figures
    assert figures <= set(HEADLINE), f"not headline figures: {sorted(figures - set(HEADLINE))}"
    assert not figures & NOT_LIVE, f"left off the live gauge: {sorted(figures & NOT_LIVE)}"


def test_dashboard_queries_parse_as_promql(tmp_path: Path):
    # promtool parses every query by loading them as recording rules.
    rules = [{"record": f"dashboard:query:{i}", "expr": expr}
             for i, (_, expr) in enumerate(q for path in DASHBOARDS for q in _queries(_dashboard(path)))]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sanction_metrics_never_tell_what_a_report_prompted_a_card_a_referral_or_nothing():
    from datetime import timedelta

    from services.sanctions.domain import Approve
    from services.sanctions.handlers import _count, _time_to_decision, counted_type
    from tests.factories import T0, incident
    from tests.unit.sanctions_cases import feed, record

    def total() -> float:
        return sum(s.value for m in REGISTRY.collect() if m.name == "vanda_sanction_decisions"
                   for s in m.samples if s.name.endswith("_total"))

    def observed() -> float:
        return REGISTRY.get_sample_value("vanda_incident_to_decision_seconds_count") or 0

    # A child with a clinical cause, an adult carded, an adult reported late: alike on /metrics.
    for prompted in (feed([record(age_band="under_18", medical_factors=True)])[1], feed([record()])[1],
                     feed([record(-400, reported_at=T0)], now=T0)[1]):
        before, seen = total(), observed()
        _count(prompted)
        _time_to_decision(incident(), T0 + timedelta(seconds=1))
        assert (total(), observed()) == (before, seen + 1)
    # What people and the scheduler decide is counted, by name.
    state, proposed = feed([record(category="weapon")])
    assert [counted_type(d) for d in feed([Approve(proposed[0].decision_id, "r")], state)[1]] == ["ban_imposed"]
