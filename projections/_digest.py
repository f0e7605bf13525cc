"""Deterministic digests of projection state (the same log prefix gives the same bytes)."""

from __future__ import annotations

import hashlib
from typing import Any

from events.codec import dumps

DIGEST_BYTES = 16


def digest_of(state: dict[str, Any]) -> str:
    return hashlib.blake2b(dumps(state, sort_keys=True), digest_size=DIGEST_BYTES).hexdigest()
