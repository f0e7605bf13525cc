"""Issue 13.5: protocol time in the Ray shell is monotonic; only the envelope's `ts` is wall time."""

from __future__ import annotations

from actors.effects import Persist
from actors.quorum import QuorumCore
from roster.ray_runtime import shell
from tests.test_cores_pure import LEASE, QUORUM_SECRET, acquire, append, creation

HOUR_MS = 3_600_000


def test_S8_a_wall_clock_step_does_not_move_protocol_time(monkeypatch) -> None:
    """An NTP step of an hour must not move a lease or a timer: `now_ms` ignores it."""
    before = shell.now_ms()
    real = shell.time.time
    monkeypatch.setattr(shell.time, "time", lambda: real() + HOUR_MS / 1000)
    after = shell.now_ms()
    assert 0 <= after - before < 1000
    assert shell.wall_ms() - after > HOUR_MS - 1000  # the wall clock did jump: only `ts` sees it


def test_S3_the_quorum_stamps_ts_from_the_wall_clock_and_leases_from_now() -> None:
    q = QuorumCore(lease_ms=LEASE, secret=QUORUM_SECRET, now=0, wall_ms=lambda: 1_767_225_600_000)
    acquire(q, "n1", 5)
    assert q.lease_expiry == 5 + LEASE  # the lease runs on protocol time
    out = append(q, "n1", q.epoch, 0, creation(), "b1", now=7)
    records = next(e for e in out if isinstance(e, Persist)).records
    assert records[0].ts == "2026-01-01T00:00:00.000Z"  # 2026-01-01T00:00:00Z: the wall clock
