"""Snapshots of a replica's ClusterState, so a rebuild costs O(events since the snapshot).

A snapshot is `<dir>/snapshots/<seq, 12 digits>.json` holding
`{"seq", "hash", "digest", "state": state.to_dict()}`. It is written atomically
(temp file, fsync, rename, fsync of the directory) and trusted only when its `hash` equals
the log's hash at that seq (same history) and the state it holds still has the digest it
was written with (not corrupted). A snapshot is an optimisation: anything wrong with one
means "skip it, with a warning", never an exception — the log is the truth.

The store knows nothing of what a state is (`events` is the bottom layer; the projections
sit above it): it writes any object with `seq`, `hash`, `digest()` and `to_dict()`, and the
caller passes `decode` (e.g. `ClusterState.from_dict`) to turn a stored dict back into one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from events import codec

SNAPSHOT_EVERY_EVENTS = 1000  # a replica snapshots after this many events since its last snapshot
SNAPSHOTS_KEPT = 3  # older ones are pruned; more than one survives a snapshot that turns out bad
SNAPSHOT_DIR = "snapshots"
_SEQ_DIGITS = 12  # zero-padded so names sort like seqs (10^12 events is beyond any real log)
_SUFFIX = ".json"

HashAt = Callable[[int], "str | None"]


class Snapshottable(Protocol):
    """What the store needs of a state (ClusterState is one)."""

    @property
    def seq(self) -> int: ...

    @property
    def hash(self) -> str: ...

    def digest(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=Snapshottable)
Decode = Callable[[dict[str, Any]], S]


def snapshot_dir(dir: str | os.PathLike[str]) -> Path:
    return Path(dir) / SNAPSHOT_DIR


def snapshot_path(dir: str | os.PathLike[str], seq: int) -> Path:
    return snapshot_dir(dir) / f"{seq:0{_SEQ_DIGITS}d}{_SUFFIX}"


def due(last_snapshot_seq: int, seq: int) -> bool:
    """Whether a replica at `seq` should snapshot, its last snapshot being at `last_snapshot_seq`."""
    return seq - last_snapshot_seq >= SNAPSHOT_EVERY_EVENTS


def write_snapshot(dir: str | os.PathLike[str], state: Snapshottable) -> Path:
    """Write `state` as the snapshot at its seq; atomic, durable when this returns."""
    folder = snapshot_dir(dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = snapshot_path(dir, state.seq)
    body = codec.dumps({"seq": state.seq, "hash": state.hash, "digest": state.digest(), "state": state.to_dict()})
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"  # a crash leaves only a dot-file, never a half snapshot
    with open(tmp, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)  # the rename itself must survive a crash
    return final


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_snapshots(dir: str | os.PathLike[str]) -> list[int]:
    """Seqs of the snapshot files present, ascending (temp files and strangers ignored)."""
    folder = snapshot_dir(dir)
    if not folder.is_dir():
        return []
    seqs = []
    for p in folder.iterdir():
        stem = p.name[: -len(_SUFFIX)]
        if p.name.endswith(_SUFFIX) and stem.isdigit() and len(stem) == _SEQ_DIGITS:
            seqs.append(int(stem))
    return sorted(seqs)


def _check(path: Path, seq: int, log_hash_at: HashAt, decode: Decode[S]) -> S | str:
    """The snapshot's state, or the reason it cannot be used."""
    try:
        doc = codec.loads(path.read_bytes())
        snap_seq, snap_hash, snap_digest = doc["seq"], doc["hash"], doc["digest"]
        if snap_seq != seq:
            return f"names seq {snap_seq} inside but seq {seq} in its file name"
        log_hash = log_hash_at(seq)
        if log_hash is None:
            return "is beyond the head of the log (stale)"
        if log_hash != snap_hash:
            return "does not match the log's hash at that seq (another history)"
        state = decode(doc["state"])
        if state.seq != seq or state.hash != snap_hash:
            return "holds a state of a different seq"
        if state.digest() != snap_digest:
            return "is corrupt (digest mismatch)"
        return state
    except Exception as exc:  # anything wrong with a snapshot only means it is not used
        return f"is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def load_newest_valid(
    dir: str | os.PathLike[str],
    log_hash_at: HashAt,
    *,
    decode: Decode[S] | None = None,
    max_seq: int | None = None,
) -> tuple[S | None, list[str]]:
    """The newest usable snapshot at or below `max_seq`, and a warning for each one skipped.

    `decode` turns the stored state dict back into a state. Without it no snapshot can be
    used: each present is skipped with a warning that says so (a caller not yet passing
    `decode` folds the whole log, which is slower but right).
    """
    warnings: list[str] = []
    for seq in reversed(list_snapshots(dir)):
        if max_seq is not None and seq > max_seq:
            continue
        if decode is None:
            warnings.append(f"snapshot {seq} skipped: the caller passed no decode function")
            continue
        result = _check(snapshot_path(dir, seq), seq, log_hash_at, decode)
        if not isinstance(result, str):
            return result, warnings
        warnings.append(f"snapshot {seq} skipped: it {result}")
    return None, warnings


def prune(dir: str | os.PathLike[str], keep: int = SNAPSHOTS_KEPT) -> list[int]:
    """Delete all but the newest `keep` snapshots; returns the seqs deleted."""
    seqs = list_snapshots(dir)
    doomed = seqs[:-keep] if keep > 0 else seqs
    for seq in doomed:
        snapshot_path(dir, seq).unlink(missing_ok=True)
    return doomed
