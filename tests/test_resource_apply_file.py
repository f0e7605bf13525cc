"""`roster apply FILE` parsing (issue 10 §5): the desired groups, or one line naming the file,
the TOML path and line — unknown type, missing field, dependency cycle, a command that does
not exist — and nothing else (no traceback, exit non-zero)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from roster.apply_file import ApplyFileError, load_apply_file

REPO = Path(__file__).resolve().parents[1]

GOOD = """
[groups.web]
preferred_owners = ["n1", "n2"]
failover = { threshold = 2, period_ms = 60000 }

[[groups.web.resources]]
name = "db"
type = "process"
[groups.web.resources.params]
argv = ["sleep", "600"]

[[groups.web.resources]]
name = "app"
type = "process"
depends_on = ["db"]
[groups.web.resources.params]
argv = ["sleep", "600"]
port = 8080
probe = "tcp"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "groups.toml"
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ApplyFileError) as exc:
        load_apply_file(write(tmp_path, text))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "groups.toml"))
    return msg


def test_the_example_file_is_valid():
    groups = load_apply_file(REPO / "examples" / "web.toml")
    web = groups["web"]
    assert [r.name for r in web.resources] == ["app", "counter"]
    assert web.resources[0].params["port"] == 8080 and web.resources[1].type == "ray_actor"


def test_desired_groups_in_declaration_order_with_policy(tmp_path):
    groups = load_apply_file(write(tmp_path, GOOD))
    web = groups["web"]
    assert web.preferred_owners == ("n1", "n2") and web.failover.threshold == 2
    assert [r.name for r in web.resources] == ["db", "app"]
    assert web.as_args()["resources"][1]["depends_on"] == ["db"]


def test_unknown_type_names_the_line(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('name = "app"\ntype = "process"', 'name = "app"\ntype = "cron"'))
    assert "unknown type 'cron'" in msg and ":14: groups.web.resources[1].type" in msg, msg


def test_missing_field_names_the_path_and_line(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('name = "db"\n', ""))
    assert ":6: groups.web.resources[0].name: Field required" in msg, msg


def test_unknown_field_names_its_line(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('probe = "tcp"', 'probe = "tcp"\ncolour = "red"'))
    assert ":20: " in msg and "colour" in msg, msg


def test_dependency_cycle(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('name = "db"\ntype = "process"', 'name = "db"\ntype = "process"\ndepends_on = ["app"]'))
    assert "dependency cycle" in msg and "db" in msg and "app" in msg


def test_a_command_that_does_not_exist(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('argv = ["sleep", "600"]\nport', 'argv = ["roster-no-such-cmd"]\nport'))
    assert "command 'roster-no-such-cmd' is not on PATH" in msg and "resources[1].params.argv" in msg
    msg = error_of(tmp_path, GOOD.replace('["sleep", "600"]\nport', '["./nothing-here.sh"]\nport'))
    assert "is not an executable file" in msg


def test_toml_syntax_error_has_the_line(tmp_path):
    msg = error_of(tmp_path, GOOD + "broken = = 1\n")
    assert "TOML syntax" in msg and f"line {len(GOOD.splitlines()) + 1}," in msg, msg


def test_cli_check_is_one_line_and_non_zero(tmp_path):
    bad = write(tmp_path, GOOD.replace('type = "process"', 'type = "nope"', 1))
    out = subprocess.run([sys.executable, "-m", "roster.apply_file", str(bad)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "unknown type 'nope'" in out.stderr and "Traceback" not in out.stderr
    ok = subprocess.run([sys.executable, "-m", "roster.apply_file", "examples/web.toml"], cwd=REPO,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and '"web"' in ok.stdout
