"""docs/monitoring/ is checked by Prometheus's own promtool (issue 12 §6): the example scrape
config and alert rules load, a node's /metrics (every histogram populated) passes
`promtool check metrics`, and every Grafana panel's query parses and names metrics a node
really exports.

promtool comes from Debian's `prometheus` package (.ci/run installs it). Its absence is a
failure, not a skip: a check that silently does not run is no check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from actors import messages as m
from actors.node_state import LeaderState
from events import types as t
from roster.history_gen import make_history
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from roster.latency import LatencyHistogram
from roster.ray_runtime.observer import NodeObserver
from tests.http_support import TOKEN, client_for, refuse_admin, static_health
from tests.test_metrics import T0_MS, record

MONITORING = Path(__file__).resolve().parents[1] / "docs" / "monitoring"
PROMTOOL_TIMEOUT_S = 60
# Grafana's variables, as Grafana would expand them for a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "roster"}


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (.ci/run does this)")
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S)


def test_issue12_s6_example_scrape_config_and_alert_rules_pass_promtool():
    config = promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout + config.stderr  # it loaded the alert rules with it
    rules = promtool("check", "rules", str(MONITORING / "roster-alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def populated_observer() -> NodeObserver:
    """An observer as a leader's would be after a heartbeat run, a crash and a failover."""
    o = NodeObserver("n01")
    core = SimpleNamespace(role="leader", leader="n01", role_state=LeaderState(since=0, lease_until=0))
    o.core = core
    for at in (T0_MS, T0_MS + 1000):
        core.role_state.last_hb["n02"] = at
        o.after_step(m.Heartbeat(node="n02", epoch=1, applied_seq=1, sent_at=at), at, core)
        core.role_state.last_hb["n03"] = at
        o.after_step(m.Heartbeat(node="n03", epoch=1, applied_seq=1, sent_at=at), at, core)
    o.on_committed([record(90, T0_MS + 6000, t.NodeDown(reason="regroup"), "n03"),
                    record(91, T0_MS + 6010, t.GroupMoved(group="web", from_node="n03", to_node="n02",
                                                          reason="failover"), None)], T0_MS + 6020, leading=True)
    o.rtt.observe(0.002)
    h = LatencyHistogram()
    h.observe(0.003)

    async def snapshot() -> LatencyHistogram:
        return h.copy()

    o.append_sources = {"replica": snapshot, "quorum": snapshot}
    return o


async def scrape_populated_node() -> str:
    feed = ReplicaFeed.from_records("n01", make_history(60, seed=9, n_nodes=3))
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN,
                     metrics_source=populated_observer())
    async with client_for(app) as client:
        assert (await client.get("/v1/membership")).status == 200
        assert (await client.get("/v1/nodes/ghost")).status == 404
        return await (await client.get("/metrics")).text()


async def test_issue12_s6_a_nodes_metrics_pass_promtool_check_metrics():
    text = await scrape_populated_node()
    for name in ("roster_http_request_duration_seconds", "roster_log_append_duration_seconds",
                 "roster_heartbeat_round_trip_seconds", "roster_heartbeat_gap_seconds",
                 "roster_node_down_detection_seconds", "roster_group_failover_duration_seconds"):
        assert f"# TYPE {name} histogram" in text and f"{name}_count" in text, name
    lint = promtool("check", "metrics", stdin=text)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def dashboard_queries() -> list[str]:
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dash["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 10
    return exprs


def expand(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def test_issue12_s6_every_dashboard_query_is_valid_promql(tmp_path: Path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"roster:dashboard_query_{i}", "expr": expand(e)} for i, e in enumerate(dashboard_queries())]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    check = promtool("check", "rules", str(path))
    assert check.returncode == 0, check.stdout + check.stderr


async def test_issue12_s6_dashboard_queries_name_only_exported_metrics():
    exported = set()
    for family in text_string_to_metric_families(await scrape_populated_node()):
        exported |= {s.name for s in family.samples}
    for expr in dashboard_queries():
        names = {w for w in re.findall(r"\b(roster_[a-z_]+)\b", expand(expr))}
        assert names, expr
        assert names <= exported, (expr, names - exported)
