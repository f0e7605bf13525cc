"""Issue 10 §5: `roster apply FILE`, `roster group status|online|offline`, `roster resource
restart` against a live simulated cluster on a real TCP port (real cores, the simulator's
resource host). Exit 0 on success; a bad file or a refused command is one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.http_support import LiveServer, SimCluster
from tests.test_cli_cluster import admin, data_dir, run  # noqa: F401 - fixtures shared with the cluster verbs

SETTLE_RUN_MS = 2_000
APPLY_FILE = """
[groups.web]
preferred_owners = ["n2"]

[[groups.web.resources]]
name = "app"
type = "process"
params = { argv = ["python3", "-m", "http.server", "8080"], port = 8080 }

[[groups.web.resources]]
name = "worker"
type = "process"
depends_on = ["app"]
params = { argv = ["python3", "-c", "import time; time.sleep(600)"] }
"""


@pytest.fixture
def server():
    holder: dict[str, SimCluster] = {}

    def make():
        holder["cluster"] = SimCluster()
        return holder["cluster"].app()

    with LiveServer(make) as live:
        live.cluster = holder["cluster"]  # type: ignore[attr-defined]
        yield live


def settle(server) -> None:
    server.in_loop(lambda: server.cluster.run(SETTLE_RUN_MS))


def group_json(capsys, server, name: str) -> dict:
    code, out, err = run(capsys, "group", "status", name, "--url", server.url, "--json")
    assert code == 0, err
    return json.loads(out)


def test_issue10_apply_then_group_status_shows_the_running_resources(capsys, server, data_dir, tmp_path):
    f = tmp_path / "groups.toml"
    f.write_text(APPLY_FILE)
    out = admin(capsys, server, data_dir, "apply", f)
    assert out.startswith(f"applied {f} (web) at seq ")
    settle(server)
    g = group_json(capsys, server, "web")
    assert g["owner"] == "n2" and [(r["name"], r["state"]) for r in g["resources"]] == [("app", "Online"),
                                                                                        ("worker", "Online")]
    code, text, _ = run(capsys, "group", "status", "web", "--url", server.url)
    assert code == 0 and "group web  Online  owner n2" in text and "/svc/web/" in text
    assert [line.split()[:3] for line in text.splitlines() if line.startswith(("app", "worker"))] == [
        ["app", "process", "Online"], ["worker", "process", "Online"]]
    head = len(server.cluster.world.qdisk.records)
    admin(capsys, server, data_dir, "apply", f)  # idempotent: nothing appended
    settle(server)
    assert [r.event.type for r in server.cluster.world.qdisk.records[head:]
            if r.event.type.startswith(("Group", "Resource"))] == []


def test_issue10_group_offline_online_and_resource_restart(capsys, server, data_dir, tmp_path):
    f = tmp_path / "groups.toml"
    f.write_text(APPLY_FILE)
    admin(capsys, server, data_dir, "apply", f)
    settle(server)
    assert "group web taken offline" in admin(capsys, server, data_dir, "group", "offline", "web")
    settle(server)
    assert group_json(capsys, server, "web")["state"] == "Offline"
    assert "group web brought online" in admin(capsys, server, data_dir, "group", "online", "web")
    settle(server)
    assert group_json(capsys, server, "web")["state"] == "Online"
    before = group_json(capsys, server, "web")["resources"][1]["attempt"]
    assert "resource web/worker restarting" in admin(capsys, server, data_dir, "resource", "restart", "web", "worker")
    settle(server)
    worker = group_json(capsys, server, "web")["resources"][1]
    assert worker["state"] == "Online" and worker["attempt"] == before + 1


@pytest.mark.parametrize("text, words", [
    ("[groups.web\n", "TOML syntax"),
    ('[[groups.web.resources]]\nname = "a"\ntype = "teleporter"\n', "teleporter"),
    ('[[groups.web.resources]]\nname = "a"\ntype = "process"\nparams = { argv = ["no-such-command-xyz"] }\n',
     "no-such-command-xyz"),
    ('[[groups.web.resources]]\nname = "a"\ntype = "process"\ndepends_on = ["b"]\nparams = { argv = ["true"] }\n',
     "'b'"),
])
def test_issue10_a_bad_apply_file_is_one_line_exit_1_and_sends_nothing(capsys, server, data_dir, tmp_path, text, words):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    head = len(server.cluster.world.qdisk.records)
    code, out, err = run(capsys, "apply", f, "--url", server.url, "--data-dir", data_dir)
    assert code == 1 and out == "" and err.count("\n") == 1 and words in err and str(f) in err, err
    assert "Traceback" not in err and server.cluster.requests == 0


def test_issue10_group_commands_on_an_unknown_group_exit_1_with_the_reason(capsys, server, data_dir):
    for argv in (("group", "online", "nope"), ("group", "offline", "nope"), ("resource", "restart", "nope", "x")):
        code, out, err = run(capsys, *argv, "--url", server.url, "--data-dir", data_dir)
        assert code == 1 and "no group named nope" in err and "(unknown_group, HTTP 404)" in err, err
    code, _, err = run(capsys, "group", "status", "nope", "--url", server.url)
    assert code == 1 and "unknown_group" in err
