"""The Grafana dashboard matches the code: every panel query names only metrics that the
front's, a worker's or a relay's /metrics really exports (collected from the real collectors),
and every query is valid PromQL (Prometheus's own promtool, when installed)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from deploykit import REPO_ROOT

from gameserver.broadcast import publication_frames
from gameserver.commands import default_commands
from gameserver.events import Outcome
from gameserver.front import Front
from gameserver.metrics import ActionMeter, front_registry, worker_registry
from gameserver.protocol import ActionRequest, Event, Reply
from relay.forwarder import Relay
from relay.metrics import relay_registry

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "crossroads.json"
METRIC_NAME = re.compile(r"\b(?:crossroads|process)_[a-z0-9_]+\b")
LOCAL = "tcp://127.0.0.1:0"


def queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def exported_names() -> set[str]:
    """Sample names of the three roles' registries, after one observed action."""

    async def collect() -> set[str]:
        front = Front(actions_bind=LOCAL, updates_bind=LOCAL, workers_bind=LOCAL)
        # Upstreams nobody serves: the relay's metrics exist whether its links are up or not.
        upstream = "tcp://127.0.0.1:9"
        relay = Relay(upstream, LOCAL, actions_upstream=upstream, actions_bind=LOCAL)
        # As if one event had come: the lag gauges exist once there is one.
        event = Event(topic="world", seq=1, kind="announce", text="hi", ts=time.time() - 0.25)
        relay.stats.last_event, relay.stats.last_event_at = (
            publication_frames([event]),  # one message: the publication's one frame
            time.time(),
        )
        meter = ActionMeter(default_commands())
        request = ActionRequest(token="t" * 43, action_id="a1", text="look")
        meter.observe(request, Outcome(Reply(ok=True, text="", action_id="a1", room="r")), 0.01)
        meter.players_online = 0
        registries = [
            front_registry(front, "f"),
            worker_registry(meter, "w"),
            relay_registry(relay, "r"),
        ]
        try:
            lag = {
                sample.value
                for family in registries[2].collect()
                for sample in family.samples
                if sample.name == "crossroads_relay_event_lag_seconds"
            }
            assert len(lag) == 1 and 0.2 <= lag.pop() < 5, "the relay's lag is the event's age"
            return {
                sample.name
                for registry in registries
                for family in registry.collect()
                for sample in family.samples
            }
        finally:
            front.close(linger=0)
            relay.close(linger=0)

    return asyncio.run(collect())


def test_every_query_names_exported_metrics() -> None:
    exported = exported_names()
    assert queries(), "the dashboard has no queries"
    for title, expr in queries():
        names = set(METRIC_NAME.findall(expr))
        assert names, f"{title}: {expr} names no Crossroads metric"
        assert names <= exported, f"{title}: {sorted(names - exported)} are not exported"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": expr}
                    for i, (_, expr) in enumerate(queries())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_provisioning_points_at_the_dashboard_and_the_datasource_it_names() -> None:
    board = json.loads(DASHBOARD.read_text())
    uids = {p["datasource"]["uid"] for p in board["panels"]}
    provisioning = REPO_ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert uids == {s["uid"] for s in sources["datasources"]}
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    boards = yaml.safe_load((provisioning / "dashboards" / "crossroads.yml").read_text())
    assert boards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
