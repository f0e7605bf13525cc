"""Deterministic digests of projection state (the same log prefix gives the same bytes)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from events.codec import dumps

DIGEST_BYTES = 16
_SORTED_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS  # as `dumps(..., sort_keys=True)`


def canonical_of(state: dict[str, Any]) -> bytes:
    """The bytes a digest covers: sorted JSON (equal bytes, equal digest, and back)."""
    return dumps(state, sort_keys=True)


def hash_canonical(canonical: bytes) -> str:
    return hashlib.blake2b(canonical, digest_size=DIGEST_BYTES).hexdigest()


def digest_of(state: dict[str, Any]) -> str:
    return hash_canonical(canonical_of(state))


def fragment(obj: Any) -> orjson.Fragment:
    """`obj.to_dict()` as the sorted JSON a digest embeds, rendered once per object.

    For the projections' immutable parts (a change builds a new one), which keep it in a
    `_fragment` slot: a state's digest then renders only what changed since the last one
    (the simulator's checker digests every replica at every seq). The bytes are the ones
    `digest_of` would write for the same dict, so digests do not change.
    """
    cached = obj._fragment  # bytes, not the Fragment: a state crosses Ray by pickle, a Fragment cannot
    if cached is None:
        cached = orjson.dumps(obj.to_dict(), option=_SORTED_JSON)
        object.__setattr__(obj, "_fragment", cached)
    return orjson.Fragment(cached)
