"""The OpenAPI document as a real API client finds it (issue 12 §5).

The event stream is described as it is (each server-sent event, its `data` an Envelope), and
schemathesis runs against a live `roster up` cluster — its command line, all checks, the GET
routes, bounded examples — with zero findings apart from the documented exceptions in
tests/schemathesis_live.toml.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from events import codec
from roster.history_gen import make_history
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from roster.http.openapi import SSE_EVENT, document
from tests.http_support import TOKEN, client_for, refuse_admin, static_health

REPO_ROOT = Path(__file__).resolve().parents[1]
ST_CONFIG = REPO_ROOT / "tests" / "schemathesis_live.toml"
HISTORY = make_history(60, seed=5, n_nodes=3)
READ_TIMEOUT_S = 5.0
UP_TIMEOUT_S = 180
LIVE_GROUP = "web"  # tests/schemathesis_live.toml names it for the group routes' path parameters
UP_HTTP_PORT = 18900  # away from test_roster_up's (18700) and test_dashboard's (18760) ports
ST_EXAMPLES = 5  # per operation and phase
ST_MAX_TIME_S = 120  # schemathesis's own budget for the whole run (it stops starting cases past it)
ST_REQUEST_TIMEOUT_S = 5
ST_RUN_TIMEOUT_S = ST_MAX_TIME_S + 90  # the budget plus start-up and reporting


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema, "components": document()["components"]})


def _parse_events(text: str) -> list[dict]:
    """Events as an SSE client reads them (WHATWG rules, as schemathesis parses them)."""
    events, current, data = [], {}, []
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append({"event": current.get("event", "message"), "data": "\n".join(data),
                               **({"id": current["id"]} if "id" in current else {})})
            current, data = {}, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field in ("event", "id"):
                current[field] = value
    return events


async def _read_stream(client, params: dict, want: int, headers: dict | None = None) -> list[dict]:
    resp = await client.get("/v1/events/stream", params=params, headers=headers or {})
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    text = ""
    while len(_parse_events(text)) < want:
        text += (await asyncio.wait_for(resp.content.readany(), READ_TIMEOUT_S)).decode()
    resp.close()
    return _parse_events(text)


async def test_issue12_s5_stream_events_fit_the_documented_event_schema():
    """ST108 was: the stream's schema said `string`. Each event now validates, and its data
    (the contentSchema) is the record's Envelope."""
    feed = ReplicaFeed.from_records("n1", HISTORY)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    media = document()["paths"]["/v1/events/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    assert media["schema"] == SSE_EVENT
    async with client_for(app) as client:
        events = await _read_stream(client, {"from": "1"}, len(HISTORY))
    assert [int(e["id"]) for e in events] == [r.seq for r in HISTORY]
    event_schema = _validator(SSE_EVENT)
    envelope = _validator({"$ref": "#/components/schemas/Envelope"})
    for e in events:
        event_schema.validate(e)
        envelope.validate(codec.loads(e["data"]))
    with pytest.raises(jsonschema.ValidationError):
        event_schema.validate({"event": "message", "data": "{}", "id": "not-a-seq"})


async def test_issue12_s5_stream_from_is_checked_even_after_last_event_id():
    """schemathesis ST201: `?from=` past the largest seq was accepted when Last-Event-ID was sent."""
    feed = ReplicaFeed.from_records("n1", HISTORY)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    async with client_for(app) as client:
        for params in ({"from": "1000000000000000000"}, {"from": "0"}):
            resp = await client.get("/v1/events/stream", params=params, headers={"Last-Event-ID": "0"})
            assert resp.status == 422, params
        assert (await _read_stream(client, {"from": "5"}, 1))[0]["id"] == "5"
        first = await _read_stream(client, {"from": "5"}, 1, {"Last-Event-ID": " 9 "})  # a reconnect wins
        assert (await _read_stream(client, {"from": "5"}, 1, {"Last-Event-ID": ""}))[0]["id"] == "5"  # no id yet
        assert first[0]["id"] == "10"


# --- schemathesis against a live `roster up` ------------------------------------------------------


def _start_up(data_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "roster.cli", "up", "--nodes", "3", "--data-dir", str(data_dir),
           "--http-port", str(UP_HTTP_PORT), "--heartbeat-ms", "300"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_online(proc: subprocess.Popen, lines: list[str]) -> None:
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "all 3 nodes Online" in line:
            return
    raise AssertionError("roster up did not bring 3 nodes Online:\n" + "".join(lines))


def _stop_up(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.ray
def test_issue12_s5_schemathesis_all_checks_against_a_live_roster_up(tmp_path: Path) -> None:
    lines: list[str] = []
    proc = _start_up(tmp_path / "data")
    try:
        _wait_online(proc, lines)
        _create_group(tmp_path / "data", LIVE_GROUP)  # so /v1/groups/{name} and /svc/{group} have data
        st = Path(sys.executable).with_name("schemathesis")
        argv = [str(st), "--config-file", str(ST_CONFIG), "run", f"http://127.0.0.1:{UP_HTTP_PORT}/openapi.json",
                "--checks", "all", "--include-method", "GET", "--max-examples", str(ST_EXAMPLES),
                "--request-timeout", str(ST_REQUEST_TIMEOUT_S), "--max-time", str(ST_MAX_TIME_S),
                "--generation-database", "none", "--seed", "12", "--no-color",
                "--report", "ndjson", "--report-dir", str(tmp_path / "report")]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=ST_RUN_TIMEOUT_S, cwd=tmp_path)
    finally:
        _stop_up(proc)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]  # non-zero on any failure or error
    summary = out[out.rfind("SUMMARY"):]
    tested = re.search(r"Tested: (\d+)", summary)
    assert tested and int(tested.group(1)) == _get_operations(), summary  # every GET route was exercised
    assert "No issues found" in summary and not re.search(r"unique failure|Network Error", summary), summary


def _create_group(data_dir: Path, name: str) -> None:
    token = (data_dir / "admin.token").read_text().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{UP_HTTP_PORT}/v1/groups", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def _get_operations() -> int:
    """Every GET operation of the document (/openapi.json included)."""
    return sum(1 for ops in document()["paths"].values() if "get" in ops)
