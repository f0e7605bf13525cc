"""Offline verbs over a log directory: `verify`, `events`, `replay`, `diff`, `timeline`.

They read the directory without taking the log's lock (roster.logdir.LogReader), so
they work on a copy on a laptop and on the directory of a running node alike; only
`verify --repair` opens the log for writing. Output is an aligned table by default and
JSON (codec.dumps) with `--json`.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

from events import codec
from events.log import CorruptLogError, LogLockedError, repair_log, verify_log
from events.record import Record
from events.types import EVENT_TYPES
from projections import replay
from roster import logdir, remote_log
from roster.logdir import LogReader, NotALogError, ReplayReport
from projections.state import ClusterState, fold
from roster.cli_cluster import DEFAULT_DATA_DIR, cmd_watch
from roster.cli_format import cell, emit_json, line, seq_arg, table
from roster.errors import UserError

EXIT_FAILED = 1  # the command ran and found a problem
EXIT_USAGE = 2  # bad argument, bad path
PROGRESS_MIN_RECORDS = 100_000  # smaller replays finish before a bar would help
PROGRESS_BAR_WIDTH = 30  # characters
WIDTH_SAMPLE_ROWS = 1000  # `events` streams: column widths come from the first rows
DEFAULT_QUORUM_LOG = f"{DEFAULT_DATA_DIR}/quorum"  # `events`/`replay` with no source: the log `roster up` keeps


# --- shared helpers ----------------------------------------------------------------------------


def _open(path: str) -> LogReader:
    try:
        return LogReader(path)
    except FileNotFoundError:
        raise UserError(f"no such log directory: {path}") from None
    except NotALogError as exc:
        raise UserError(str(exc)) from None
    except CorruptLogError as exc:
        raise UserError(f"{exc} (see `roster verify {path}`)", EXIT_FAILED) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


@contextmanager
def _log_errors(path: str) -> Iterator[None]:
    """Damage found while reading becomes one line naming the seq, exit 1."""
    try:
        yield
    except CorruptLogError as exc:
        msg = f"log corrupt at seq {exc.seq}: {exc.reason} (see `roster verify {path}`)"
        raise UserError(msg, EXIT_FAILED) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def _seq_or_time(reader: LogReader, text: str) -> int:
    """A seq (digits) or an ISO time (the last seq at or before it), checked against the head."""
    try:
        seq = int(text) if text.lstrip("-").isdigit() else reader.seq_at_time(replay.parse_time(text))
        return logdir.check_seq(reader, seq)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _warn(warnings: Iterable[str]) -> None:
    for w in warnings:
        print(f"roster: warning: {w}", file=sys.stderr)


class _ProgressBar:
    """A one-line bar on stderr, redrawn in place; only for a terminal and a long replay."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        filled = int(frac * PROGRESS_BAR_WIDTH)
        bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {frac:4.0%} {done:,}/{total:,} events")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\033[K")  # erase the bar so it never mixes with the output
            sys.stderr.flush()


@contextmanager
def _progress(records: int, label: str) -> Iterator[_ProgressBar | None]:
    bar = _ProgressBar(label) if records > PROGRESS_MIN_RECORDS and sys.stderr.isatty() else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _counted(records: Iterable[Record], total: int, bar: _ProgressBar | None) -> Iterator[Record]:
    if bar is None:
        yield from records
        return
    for i, r in enumerate(records, start=1):
        if i % logdir.PROGRESS_EVERY_RECORDS == 0:
            bar(i, total)
        yield r


# --- verify ------------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    path = args.logdir
    if not logdir.is_log_dir(path):
        _open(path)  # raises the right one-line error (missing, or not a log)
    with _log_errors(path):
        report = verify_log(path)
    if report.ok:
        print(f"ok: {report.records:,} records, head seq {report.head_seq}, head hash {report.head_hash}")
        return 0
    if not report.torn_tail:
        good = f"seqs 1..{report.head_seq} are good" if report.head_seq else "no record before it is good"
        extra = "; --repair cuts only a torn tail, this needs a person" if args.repair else ""
        raise UserError(f"log corrupt at seq {report.first_bad_seq}: {report.reason} ({good}{extra})", EXIT_FAILED)
    if not args.repair:
        raise UserError(f"{report.reason} after seq {report.head_seq}; `roster verify --repair {path}` "
                        "cuts it and keeps the bytes aside", EXIT_FAILED)
    return _repair(path)


def _repair(path: str) -> int:
    try:
        cut = repair_log(path)
    except LogLockedError as exc:
        raise UserError(f"cannot repair: {exc}; stop the node first", EXIT_FAILED) from None
    except CorruptLogError as exc:
        raise UserError(f"cannot repair: {exc}", EXIT_FAILED) from None
    if cut is not None:
        print(f"repaired: cut {cut.byte_count} bytes ({cut.reason}) at byte {cut.offset} of "
              f"{cut.segment.name}; saved to {cut.saved_to.name}")
    with _log_errors(path):
        after = verify_log(path)
    if not after.ok:
        raise UserError(f"still damaged after repair at seq {after.first_bad_seq}: {after.reason}", EXIT_FAILED)
    print(f"ok: {after.records:,} records, head seq {after.head_seq}, head hash {after.head_hash}")
    return 0


# --- events ------------------------------------------------------------------------------------


def _event_row(r: Record) -> list[str]:
    data = r.event.model_dump(mode="json", exclude={"type", "v"})
    return [str(r.seq), str(r.epoch), r.ts, r.event.type, cell(r.node), r.by, cell(data)]


EVENT_HEADERS = ("SEQ", "EPOCH", "TS", "TYPE", "NODE", "BY", "DATA")


def cmd_events(args: argparse.Namespace) -> int:
    if args.type is not None and args.type not in EVENT_TYPES:
        raise UserError(f"unknown event type {args.type!r} (one of: {', '.join(sorted(EVENT_TYPES))})")
    _one_source(args)
    if args.follow:
        return _follow(args)
    if args.url is not None:
        records: Iterable[Record] = remote_log.iter_remote(args.url, args.from_seq, type_=args.type, node=args.node)
        return _print_events(records, args)
    reader = _open(args.logdir)
    if args.from_seq < 1 or args.from_seq > max(reader.head_seq, 1):
        raise UserError(f"--from {args.from_seq} is outside the log (seqs 1..{reader.head_seq})")
    with _log_errors(args.logdir):
        records = (r for r in reader.iter_records(args.from_seq)
                   if (args.type is None or r.event.type == args.type)
                   and (args.node is None or replay.names_node(r, args.node)))
        return _print_events(records, args)


def _print_events(records: Iterable[Record], args: argparse.Namespace) -> int:
    if args.json:  # one record per line, the envelope as in the log: ready for jq
        for r in records:
            sys.stdout.write(codec.encode(r).decode() + "\n")
    else:
        _stream_table(EVENT_HEADERS, (_event_row(r) for r in iter(records)), sys.stdout)
    return 0


def _one_source(args: argparse.Namespace) -> None:
    if args.logdir is None and args.url is None:  # a newcomer's `roster events` next to `roster up`
        if not Path(DEFAULT_QUORUM_LOG).is_dir():
            raise UserError(f"give LOGDIR (a log on disk) or --url (a running node): there is no "
                            f"{DEFAULT_QUORUM_LOG} here, where `roster up` keeps the cluster's log")
        args.logdir = DEFAULT_QUORUM_LOG
    if args.logdir is not None and args.url is not None:
        raise UserError("give either LOGDIR (a log on disk) or --url (a running node), not both")
    if getattr(args, "follow", False) and args.url is None:
        raise UserError("--follow needs --url: only a running cluster has new events to follow")


def _follow(args: argparse.Namespace) -> int:
    """`events --follow --url`: the live stream, resumed after drops (see `roster watch`)."""
    args.max_events = None
    return cmd_watch(args)


def _stream_table(headers: Sequence[str], rows: Iterator[list[str]], out: TextIO) -> None:
    """An aligned table that does not hold a million rows: widths come from the first rows."""
    head: list[list[str]] = []
    for row in rows:
        head.append(row)
        if len(head) >= WIDTH_SAMPLE_ROWS:
            break
    widths = [max([len(h)] + [len(r[i]) for r in head]) for i, h in enumerate(headers)]
    for row in [list(headers)] + head:
        print(line(row, widths), file=out)
    for row in rows:
        print(line(row, widths), file=out)


# --- replay ------------------------------------------------------------------------------------


def _rebuild(reader: LogReader, seq: int, args: argparse.Namespace) -> tuple[ClusterState, ReplayReport]:
    with _log_errors(args.logdir), _progress(seq, "replaying") as bar:
        state, report = logdir.rebuild_from(reader, to_seq=seq, use_snapshots=not args.no_snapshots, progress=bar)
    _warn(report.warnings)
    return state, report


def cmd_replay(args: argparse.Namespace) -> int:
    _one_source(args)
    if args.url is not None:
        return _replay_remote(args)
    reader = _open(args.logdir)
    seq = _seq_or_time(reader, str(args.to) if args.to is not None else args.at)
    state, report = _rebuild(reader, seq, args)
    source = (f"snapshot at seq {report.snapshot_seq} + {report.applied:,} events" if report.snapshot_seq is not None
              else f"{report.applied:,} events")
    return _print_replay(state, reader.head_seq, source, args)


def _replay_remote(args: argparse.Namespace) -> int:
    """Fold the running node's records up to the seq (or time) asked for, as a local replay would."""
    head = remote_log.remote_head(args.url)
    if args.to is not None and not 0 <= args.to <= head:
        raise UserError(f"--to {args.to} is outside the log (seqs 0..{head})")
    limit = replay.parse_time(args.at) if args.at is not None else None
    state = ClusterState()
    chosen = []
    for r in remote_log.iter_remote(args.url, 1, to_seq=args.to if args.to is not None else head):
        if limit is not None and replay.parse_time(r.ts) > limit:
            break
        chosen.append(r)
    state = fold(state, chosen)
    return _print_replay(state, head, f"{len(chosen):,} events from {args.url}", args)


def _print_replay(state: ClusterState, head: int, source: str, args: argparse.Namespace) -> int:
    if args.json:
        emit_json(state.to_dict())
        return 0
    print(f"seq {state.seq} of {head}  ts {state.membership.ts or '-'}  hash {state.hash}  ({source})")
    _print_config(state)
    _print_membership(state)
    return 0


def _print_config(state: ClusterState) -> None:
    c = state.config
    out = sys.stdout
    lease = "-" if c.quorum_lease_ms is None else c.quorum_lease_ms
    print(f"\nConfiguration database: cluster {c.name or '-'} (id {c.cluster_id or '-'}), "
          f"quorum {c.quorum_resource or '-'} (lease {lease} ms)", file=out)
    print(f"settings: {cell(dict(sorted(c.settings.items())))}", file=out)
    evicted = ", ".join(f"{n} (seq {s})" for n, s in sorted(c.evicted.items())) or "-"
    print(f"evicted: {evicted}\n", file=out)
    table(("MEMBER", "ADDRESS", "ADDED AT SEQ"),
           [(m.id, m.address, m.added_seq) for m in sorted(c.members.values(), key=lambda m: m.id)], out)
    if c.groups:
        print(file=out)
        table(("GROUP", "PREFERRED OWNERS", "FAILBACK", "CREATED AT SEQ"),
               [(g.name, g.preferred_owners, g.failback, g.created_seq)
                for g in sorted(c.groups.values(), key=lambda g: g.name)], out)


def _print_membership(state: ClusterState) -> None:
    m = state.membership.to_dict()
    out = sys.stdout
    print(f"\nMembership: epoch {m['epoch']}, leader {m['leader'] or '-'}\n", file=out)
    table(("NODE", "STATE", "SINCE SEQ", "INCARNATION", "MISSES", "GROUPS", "REASON"),
           [(n["id"], n["state"] + (" (evicted)" if n["evicted"] else ""), n["since_seq"], n["incarnation"],
             n["misses"], n["groups"], n["reason"]) for n in m["nodes"]], out)
    if m["groups"]:
        print(file=out)
        table(("GROUP", "OWNER", "STATE", "SINCE SEQ"),
               [(g["name"], g["owner"], g["state"], g["since_seq"]) for g in m["groups"]], out)


# --- diff and timeline -------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    reader = _open(args.logdir)
    a, b = _seq_or_time(reader, args.a), _seq_or_time(reader, args.b)
    lo, hi = sorted((a, b))
    low, _ = _rebuild(reader, lo, args)
    with _log_errors(args.logdir), _progress(hi - lo, "replaying") as bar:
        high = logdir.advance(reader, low, hi, progress=bar)
    before, after = (low, high) if a <= b else (high, low)
    changes = replay.diff(before, after)
    if args.json:
        emit_json({"from": {"seq": before.seq, "hash": before.hash}, "to": {"seq": after.seq, "hash": after.hash},
                    "changes": [c.to_dict() for c in changes]})
        return 0
    print(f"seq {before.seq} -> seq {after.seq}: {len(changes)} change{'s' if len(changes) != 1 else ''}")
    if changes:
        print()
        table(("AREA", "KIND", "SUBJECT", "CHANGE", "BEFORE", "AFTER"),
               [(c.area, c.kind, c.subject or "-", c.field, c.before, c.after) for c in changes], sys.stdout)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    reader = _open(args.logdir)
    with _log_errors(args.logdir), _progress(reader.head_seq, "reading") as bar:
        entries = replay.timeline(_counted(reader.iter_records(1), reader.head_seq, bar), args.node)
    if not entries:
        raise UserError(f"unknown node {args.node!r}: no record of the log (seqs 1..{reader.head_seq}) names it")
    if args.json:
        emit_json({"node": args.node, "entries": [e.to_dict() for e in entries]})
        return 0
    table(("SEQ", "TS", "EVENT", "BY", "FROM", "TO", "REASON"),
           [(e.seq, e.ts, e.type, e.by, e.from_state, e.to_state, e.reason) for e in entries], sys.stdout)
    return 0


# --- registration ------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="check a log's CRCs, seqs and hash chain")
    p.add_argument("logdir", metavar="LOGDIR")
    p.add_argument("--repair", action="store_true", help="cut a torn tail (its bytes are kept in a side file)")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("events", help="list the events of a log (LOGDIR) or of a running node (--url)")
    p.add_argument("logdir", metavar="LOGDIR", nargs="?", help=f"default {DEFAULT_QUORUM_LOG} (`roster up`'s log)")
    p.add_argument("--url", help="a running node's HTTP address instead of LOGDIR")
    p.add_argument("--follow", action="store_true", help="with --url: keep printing events as they commit")
    p.add_argument("--from", dest="from_seq", type=seq_arg, default=1, metavar="SEQ")
    p.add_argument("--type", metavar="TYPE", help="only events of this type (e.g. NodeJoined)")
    p.add_argument("--node", metavar="NODE", help="only events about this node")
    p.add_argument("--json", action="store_true", help="one JSON record per line")
    p.set_defaults(func=cmd_events)

    p = subparsers.add_parser("replay", help="the configuration database and membership at a seq or time")
    p.add_argument("logdir", metavar="LOGDIR", nargs="?", help=f"default {DEFAULT_QUORUM_LOG} (`roster up`'s log)")
    p.add_argument("--url", help="a running node's HTTP address instead of LOGDIR")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--to", type=seq_arg, metavar="SEQ")
    when.add_argument("--at", metavar="TIME", help="ISO-8601; the state after the last record at or before it")
    _common(p, snapshots=True)
    p.set_defaults(func=cmd_replay)

    p = subparsers.add_parser("diff", help="what changed between two points of a log (seqs or times)")
    p.add_argument("logdir", metavar="LOGDIR")
    p.add_argument("a", metavar="A", help="a seq or an ISO-8601 time")
    p.add_argument("b", metavar="B", help="a seq or an ISO-8601 time")
    _common(p, snapshots=True)
    p.set_defaults(func=cmd_diff)

    p = subparsers.add_parser("timeline", help="every state change of one node")
    p.add_argument("logdir", metavar="LOGDIR")
    p.add_argument("node", metavar="NODE")
    _common(p, snapshots=False)
    p.set_defaults(func=cmd_timeline)


def _common(p: argparse.ArgumentParser, *, snapshots: bool) -> None:
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    if snapshots:
        p.add_argument("--no-snapshots", action="store_true", help="replay from seq 1, ignoring snapshots")
