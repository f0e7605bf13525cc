"""`roster status|pause|resume|evict|leave|add-node|group|watch` against a live app on a real
TCP port (a simulated cluster behind it), the token from a data dir or $ROSTER_TOKEN."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from roster.cli import main
from tests.http_support import TOKEN, LiveServer, SimCluster


@pytest.fixture
def server():
    holder: dict[str, SimCluster] = {}

    def make():
        holder["cluster"] = SimCluster()
        return holder["cluster"].app()

    with LiveServer(make) as live:
        live.cluster = holder["cluster"]  # type: ignore[attr-defined]
        yield live


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("ROSTER_TOKEN", raising=False)
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    return tmp_path


def run(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def admin(capsys, server, data_dir, *argv: object) -> str:
    code, out, err = run(capsys, *argv, "--url", server.url, "--data-dir", data_dir)
    assert code == 0, err
    assert err == ""
    return out


def states(capsys, server) -> dict[str, str]:
    code, out, _ = run(capsys, "status", "--url", server.url, "--json")
    assert code == 0
    return {n["id"]: n["state"] for n in json.loads(out)["nodes"]}


def test_status_table_and_json(capsys, server):
    code, out, err = run(capsys, "status", "--url", server.url)
    assert code == 0, err
    head, table = out.split("\n\n", 1)
    assert "cluster http-test (id sim-cluster)" in head and "leader n1" in head
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["NODE", "STATE", "SINCE"]
    assert [line.split()[0] for line in lines[1:6]] == ["n1", "n2", "n3", "n4", "n5"]
    assert lines[1].split()[1] == "*" and all("Online" in line for line in lines[1:6])
    code, out, _ = run(capsys, "status", "--url", server.url, "--json")
    assert json.loads(out)["seq"] == server.cluster.feed.seq


def test_pause_resume_with_the_token_from_the_data_dir(capsys, server, data_dir):
    out = admin(capsys, server, data_dir, "pause", "n2", "--drain")
    assert out.startswith("node n2 paused (seq ")
    seq = int(out.rsplit("seq ", 1)[1].rstrip(")\n"))
    code, out, _ = run(capsys, "status", "--url", server.url, "--min-seq", seq, "--json")
    assert {n["id"]: n["state"] for n in json.loads(out)["nodes"]}["n2"] == "Paused"
    assert admin(capsys, server, data_dir, "resume", "n2").startswith("node n2 resumed (seq ")
    assert states(capsys, server)["n2"] == "Online"


def test_groups_evict_add_leave(capsys, server, data_dir):
    assert "group web created" in admin(capsys, server, data_dir, "group", "create", "web", "--owners", "n3,n4")
    created = json.loads(admin(capsys, server, data_dir, "group", "create", "db", "--failback", "--json"))
    assert created["failback"] is True and created["preferred_owners"] == []
    server.in_loop(lambda: server.cluster.run(500))
    out = admin(capsys, server, data_dir, "group", "move", "web", "n5", "--json")
    assert json.loads(out)["op"] == "group-move"
    server.in_loop(lambda: server.cluster.run(1000))
    code, out, _ = run(capsys, "status", "--url", server.url)
    assert any(line.split()[:2] == ["web", "n5"] for line in out.splitlines())
    assert "group web deleted" in admin(capsys, server, data_dir, "group", "delete", "web")
    assert "node n3 evicted" in admin(capsys, server, data_dir, "evict", "n3")
    assert "node n3 added" in admin(capsys, server, data_dir, "add-node", "n3", "--address", "10.0.0.3:7400")
    assert "node n4 asked to leave" in admin(capsys, server, data_dir, "leave", "n4")


def test_token_from_the_environment(capsys, server, tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_TOKEN", TOKEN)
    code, out, err = run(capsys, "pause", "n3", "--url", server.url, "--data-dir", tmp_path / "empty")
    assert code == 0 and "paused" in out, err


def test_errors_are_one_line_and_exit_non_zero(capsys, server, data_dir, tmp_path, monkeypatch):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "admin.token").write_text("not-the-token")
    cases = [
        (("pause", "n2", "--url", server.url, "--data-dir", tmp_path / "bad"), 1, "unauthorized, HTTP 401"),
        (("pause", "n2", "--url", server.url, "--data-dir", tmp_path / "none"), 2, "no admin token"),
        (("resume", "n2", "--url", server.url, "--data-dir", data_dir), 1, "wrong_state, HTTP 409"),
        (("pause", "ghost", "--url", server.url, "--data-dir", data_dir), 1, "unknown_node, HTTP 404"),
        (("group", "move", "nope", "n2", "--url", server.url, "--data-dir", data_dir), 1, "HTTP 404"),
        (("status", "--url", server.url, "--at", "soon"), 1, "invalid_argument, HTTP 422"),
        (("status", "--url", "ftp://x"), 2, "--url must be"),
        (("status", "--min-seq", "x"), 2, "not a seq"),
    ]
    for argv, want_code, want in cases:
        code, out, err = run(capsys, *argv)
        assert code == want_code, (argv, err)
        assert err.count("\n") == 1 and err.startswith("roster: ") and want in err, (argv, err)
        assert "Traceback" not in err and TOKEN not in err


def test_unreachable_node_is_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    for verb in (("status",), ("watch",), ("group", "delete", "g")):
        code, _, err = run(capsys, *verb, "--url", f"http://127.0.0.1:{port}")
        if verb[0] == "group":
            assert code == 2  # no token: refused before any connection
            continue
        assert code == 1 and err == f"roster: cannot reach http://127.0.0.1:{port}: connection refused\n"


REPO_ROOT = Path(__file__).resolve().parents[1]
ISOLATION_RUN_TIMEOUT_S = 120


def test_issue12_s4_suite_ignores_cwd_roster_data_and_user_env(tmp_path):
    """Issue 12 §4: the README's flow (`roster up` leaves ./roster-data/ with an admin token; a
    user may export ROSTER_TOKEN and RAY_ADDRESS) must not change a test's result. Runs the
    test that used to fail in a child pytest whose cwd and environment are a user's after
    `roster up`."""
    user_cwd = tmp_path / "checkout"
    (user_cwd / "roster-data").mkdir(parents=True)
    (user_cwd / "roster-data" / "admin.token").write_text("left-by-roster-up\n")
    env = dict(os.environ, ROSTER_TOKEN="from-the-users-shell", RAY_ADDRESS="127.0.0.1:1")
    target = f"{REPO_ROOT / 'tests' / 'test_cli_cluster.py'}::test_unreachable_node_is_one_line"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target]
    proc = subprocess.run(argv, cwd=user_cwd, env=env, capture_output=True, text=True,
                          timeout=ISOLATION_RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    assert (user_cwd / "roster-data" / "admin.token").read_text() == "left-by-roster-up\n"  # left alone


def test_issue12_s4_each_test_runs_in_an_empty_cwd_without_user_settings():
    assert list(Path.cwd().iterdir()) == []
    assert Path.cwd() != REPO_ROOT and not Path("roster-data").exists()
    assert "ROSTER_TOKEN" not in os.environ and "RAY_ADDRESS" not in os.environ


def test_watch_replays_and_follows(capsys, server, data_dir):
    code, out, err = run(capsys, "watch", "--url", server.url, "--from", "1", "--max-events", "5", "--json")
    assert code == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2, 3, 4, 5]
    head = server.cluster.feed.seq
    timer = threading.Timer(0.3, lambda: server.call(server.cluster.admin("pause", {"node": "n4"})))
    timer.start()
    code, out, err = run(capsys, "watch", "--url", server.url, "--from", head + 1, "--max-events", "1")
    timer.join()
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split()[:4] == ["SEQ", "EPOCH", "TS", "TYPE"]
    assert row.split()[0] == str(head + 1) and "NodePaused" in row and "n4" in row


def test_watch_reconnects_with_last_event_id(capsys, monkeypatch):
    """A stream that ends after two events each time: `watch` resumes after the last one it printed."""
    from aiohttp import web

    from events import codec
    from roster import cli_cluster
    from roster.history_gen import make_history

    records = make_history(10, seed=1, n_nodes=3)
    seen_ids: list[str | None] = []

    async def flaky(request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        seen_ids.append(last)
        start = int(last) if last else int(request.query.get("from", "1")) - 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Roster-Seq": "10"})
        await resp.prepare(request)
        for r in records[start : start + 2]:
            await resp.write(b"id: %d\ndata: %s\n\n" % (r.seq, codec.encode(r)))
        return resp

    def make():
        app = web.Application()
        app.router.add_get("/v1/events/stream", flaky)
        return app

    monkeypatch.setattr(cli_cluster, "WATCH_RECONNECT_DELAY_S", 0.01)
    with LiveServer(make) as live:
        code, out, err = run(capsys, "watch", "--url", live.url, "--from", "1", "--max-events", "7", "--json")
    assert code == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2, 3, 4, 5, 6, 7]
    assert seen_ids == [None, "2", "4", "6"]


def test_events_and_replay_against_a_running_node_match_the_log_on_disk(capsys, server, data_dir, tmp_path):
    """`roster events --url` and `roster replay --url --to SEQ` read the live node's records and
    give what the offline verbs give on the same log written to disk."""
    from events.log import EventLog

    admin(capsys, server, data_dir, "pause", "n2")
    records = list(server.cluster.world.qdisk.records[: server.cluster.feed.seq])
    logdir = tmp_path / "log"
    with EventLog.open(logdir, fsync=False) as log:
        log.append_records(records)
    seq = len(records) - 1
    code, live, err = run(capsys, "replay", "--url", server.url, "--to", seq, "--json")
    assert code == 0, err
    code, offline, err = run(capsys, "replay", logdir, "--to", seq, "--json")
    assert code == 0, err
    assert json.loads(live) == json.loads(offline)
    code, out, err = run(capsys, "events", "--url", server.url, "--type", "NodePaused", "--json")
    assert code == 0, err
    assert [json.loads(line)["node"] for line in out.splitlines()] == ["n2"]


def test_events_needs_exactly_one_source(capsys, server, tmp_path):
    code, _, err = run(capsys, "events", tmp_path, "--url", server.url)
    assert code == 2 and "either LOGDIR" in err and "Traceback" not in err
    code, _, err = run(capsys, "events", tmp_path, "--follow")
    assert code == 2 and "--follow needs --url" in err


def test_events_and_replay_with_no_source_read_roster_ups_log_here(capsys, server, data_dir, tmp_path, monkeypatch):
    """A newcomer's `roster events` beside `roster up` reads ./roster-data/quorum; elsewhere it
    says where it looked, in one line."""
    from events.log import EventLog

    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "events")
    assert code == 2 and "no ./roster-data/quorum here" in err and "Traceback" not in err
    admin(capsys, server, data_dir, "pause", "n2")
    records = list(server.cluster.world.qdisk.records[: server.cluster.feed.seq])
    with EventLog.open(tmp_path / "roster-data" / "quorum", fsync=False) as log:
        log.append_records(records)
    code, out, err = run(capsys, "events", "--type", "NodePaused", "--json")
    assert code == 0, err
    assert [json.loads(line)["node"] for line in out.splitlines()] == ["n2"]
    code, out, err = run(capsys, "replay", "--to", len(records), "--json")
    assert code == 0, err
    assert json.loads(out)["seq"] == len(records)
