"""Test-wide settings and isolation.

Ray 2.60 turns token auth on for a new local cluster; the tests start their own clusters and
do not test Ray's auth, so it is off unless a test says otherwise.

Every test runs in its own empty working directory with the user's Roster and Ray settings
scrubbed from the environment (issue 12 §4): the README's flow is `roster up` (which leaves
`./roster-data/` with an admin token behind) and then `python -m pytest` in the same checkout,
and a user may have `ROSTER_TOKEN` or `RAY_ADDRESS` exported. Neither may change a result:
the CLI still reads `./roster-data/admin.token` for users, but in a test `.` is a fresh tmp dir.
Tests that need the checkout name it by `Path(__file__)`, never by the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# Settings that point a process at some other cluster, token or data dir. Each is removed for
# the duration of every test (a test that wants one sets it with monkeypatch itself).
SCRUBBED_ENV_PREFIXES = ("ROSTER_",)
SCRUBBED_ENV_NAMES = frozenset({
    "RAY_ADDRESS",  # `ray.init()` / the CLI would attach to the user's cluster
    "RAY_NAMESPACE",
    "RAY_API_SERVER_ADDRESS",  # the Jobs API address `ray job` would use
    "RAY_AUTH_TOKEN",  # a token for someone else's cluster
    "RAY_AUTH_TOKEN_PATH",
})
# Test-harness settings, not user state: where the system Chromium is (tests/test_dashboard.py).
KEPT_ENV_NAMES = frozenset({"ROSTER_CHROMIUM"})


def scrubbed_env_names(environ: dict[str, str] | os._Environ) -> list[str]:
    """The names in `environ` that a test must not see."""
    return sorted(name for name in environ
                  if name not in KEPT_ENV_NAMES
                  and (name in SCRUBBED_ENV_NAMES or name.startswith(SCRUBBED_ENV_PREFIXES)))


@pytest.fixture(scope="session", autouse=True)
def isolated_session_env(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The same for session- and module-scoped fixtures (they run before any per-test fixture)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in scrubbed_env_names(os.environ):
            mp.delenv(name)
        mp.chdir(tmp_path_factory.mktemp("session-cwd"))
        yield


@pytest.fixture(autouse=True)
def isolated_test_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in a fresh, empty cwd with the user's Roster/Ray settings unset."""
    for name in scrubbed_env_names(os.environ):
        monkeypatch.delenv(name)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd
