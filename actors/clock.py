"""Time as the cores see it: integers of milliseconds handed in by the shell."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_ms(now_ms: int) -> str:
    """UTC ISO-8601 with milliseconds, the envelope's `ts` format."""
    dt = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now_ms % 1000:03d}Z"
