"""Test-wide settings. Ray 2.60 turns token auth on for a new local cluster; the tests start
their own clusters and do not test Ray's auth, so it is off unless a test says otherwise."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
