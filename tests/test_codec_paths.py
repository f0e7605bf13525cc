"""The codec's fast paths give exactly what the reference (validating, dict-based) paths give.

Issue 11 (speed): the log's own read path (`codec.decode_line`) skips per-record validation
for CRC-valid lines and reuses identical events; sealing templates the hash bytes and the
line from one rendering. Each is checked here against the slow, obviously right path:
orjson dicts for bytes, pydantic validation for decoding. Golden-log bytes are in
tests/test_golden.py; the layering rule (events/ imports no higher layer) is at the end.
"""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec, snapshot_store, upcast
from events import types as ev
from events.record import Record, draft
from events.segments import CorruptLogError
from projections.state import ClusterState, fold
from tests.strategies import event_sequences, histories

TS = "2024-05-01T12:00:00.000Z"
REPO_ROOT = Path(__file__).resolve().parents[1]
text = st.text(max_size=12)  # any unicode, control characters and quotes included
node_ids = st.one_of(st.none(), text)


def reference_line(rec: Record) -> bytes:
    """A disk line the slow way: the envelope dict through orjson, then the CRC."""
    body = orjson.dumps(codec.envelope(rec))
    return body[:-1] + b',"crc":"%08x"}\n' % crc32c(body)


def reference_seal(drafts, *, first_seq: int, epoch: int, ts: str, prev: str) -> list[Record]:
    out = []
    for seq, d in enumerate(drafts, first_seq):
        env = codec.envelope(Record(seq, epoch, ts, d.node, d.by, d.event, ""))
        prev = codec.chain_hash(prev, env)
        out.append(Record(seq, epoch, ts, d.node, d.by, d.event, prev))
    return out


def validated(line: bytes) -> Record:
    return codec.from_envelope(codec.loads(codec.unframe(line[:-1])))


def test_the_templates_are_in_use():
    """The import-time probe found the templates byte-identical to orjson (else: the dict fallback)."""
    assert codec._TEMPLATES_OK


@settings(max_examples=60, deadline=None)
@given(drafts=event_sequences(max_events=30), epoch=st.integers(0, 2**40), ts=text, by=text, node=node_ids)
def test_seal_and_frame_equal_the_orjson_dicts(drafts, epoch, ts, by, node):
    """Issue 11 (seal + frame from one rendering): same hashes and same line bytes as the dict path,
    for any strings in ts, by and node (escapes, unicode)."""
    drafts = [draft(d.event, by=by, node=node if i % 2 else d.node) for i, d in enumerate(drafts)]
    records, lines = codec.seal_and_frame(drafts, first_seq=7, epoch=epoch, ts=ts, prev_hash=codec.GENESIS_HASH)
    assert records == reference_seal(drafts, first_seq=7, epoch=epoch, ts=ts, prev=codec.GENESIS_HASH)
    assert lines == [reference_line(r) for r in records]
    assert all(codec.frame(r) == line for r, line in zip(records, lines))
    assert all(codec.check_chain(prev.hash, r) for prev, r in zip(records, records[1:]))


@settings(max_examples=40, deadline=None)
@given(group=text, reason=text, owners=st.lists(text, max_size=3), changes=st.dictionaries(text, st.integers(-2**63, 2**63 - 1)))
def test_every_shape_of_data_renders_like_orjson(group, reason, owners, changes):
    """Tuples, None, dicts and odd strings in `data`: the field-dict shortcut writes what pydantic would."""
    events = [
        ev.GroupMoved(group=group, from_node=None, to_node=group or None, reason=reason),
        ev.GroupCreated(group=group, preferred_owners=tuple(owners), failback=bool(owners)),
        ev.Regrouped(online=tuple(owners), down=(), reason=reason),
        ev.SettingsChanged(changes=changes),
        ev.ClusterCreated(cluster_id=group, name=reason, secret_fingerprint="f", settings=changes),
    ]
    for e in events:
        assert orjson.dumps(codec._event_data(e)) == orjson.dumps(e.model_dump(mode="json", exclude={"type", "v"}))
        rec = codec.seal(draft(e, by="n1", node=None), seq=1, epoch=1, ts=TS, prev_hash=codec.GENESIS_HASH)
        assert codec.frame(rec) == reference_line(rec)


@settings(max_examples=30, deadline=None)
@given(records=histories(max_events=60))
def test_decode_line_equals_the_validating_decoder(records):
    """Issue 11 (trusted read path): the same Record, field for field and type for type, twice over
    (the second time the events come from the reuse cache)."""
    lines = [codec.frame(r) for r in records]
    for _ in range(2):
        decoded = [codec.decode_line(line) for line in lines]
        assert decoded == [validated(line) for line in lines] == records
        for fast, slow in zip(decoded, records):
            assert type(fast.event) is type(slow.event)
            assert fast.event.model_dump() == slow.event.model_dump()
            assert fast.event.__pydantic_fields_set__ == slow.event.__pydantic_fields_set__


def test_repeated_events_are_shared_only_when_immutable():
    """Identical HeartbeatMissed records share one event; a dict-holding event is never shared."""
    recs = [Record(i, 1, TS, "n2", "n1", ev.HeartbeatMissed(count=2), f"{i:032x}") for i in (1, 2)]
    a, b = (codec.decode_line(codec.frame(r)) for r in recs)
    assert a.event is b.event and (a.seq, b.seq) == (1, 2)
    recs = [Record(i, 1, TS, None, "n1", ev.SettingsChanged(changes={"x": 1}), f"{i:032x}") for i in (1, 2)]
    a, b = (codec.decode_line(codec.frame(r)) for r in recs)
    assert a.event == b.event and a.event is not b.event and a.event.changes is not b.event.changes


def test_an_old_version_on_disk_is_upcast_not_trusted(monkeypatch):
    """A record of an older schema version goes through the upcaster and validation (DESIGN: upcast on read)."""
    line = codec.frame(Record(3, 1, TS, "n2", "n1", ev.NodeJoined(incarnation=4), "ab" * 16))
    codec.decode_line(line)  # cached as the current version
    monkeypatch.setitem(ev.CURRENT_VERSION, "NodeJoined", 2)
    monkeypatch.setitem(upcast.UPCASTERS, ("NodeJoined", 1), lambda d: {"incarnation": d["incarnation"] + 10})
    assert codec.decode_line(line).event.incarnation == 14


@pytest.mark.parametrize("damage, reason", [
    (lambda line: line[:-1], "partial line"),
    (lambda line: line[:-10] + b"\n", "torn or unframed"),
    (lambda line: line.replace(b'"n2"', b'"n3"'), "crc mismatch"),
    (lambda line: line.replace(b',"crc":"', b',"crx":"'), "missing crc field"),
    (lambda line: line[:-11] + b'zzzzzzzz"}\n', "bad crc field"),
])
def test_a_bad_line_is_named_as_unframe_names_it(damage, reason):
    """Crash consistency: the one-parse reader classifies damage exactly like unframe did."""
    line = damage(codec.frame(Record(3, 1, TS, "n2", "n1", ev.NodeJoined(incarnation=4), "ab" * 16)))
    for read in (codec.decode_line, codec.parse_line):
        with pytest.raises(codec.CodecError, match=reason):
            read(line)


def test_a_crc_valid_line_that_is_not_a_record_is_a_codec_error():
    body = b'{"seq":1,"type":"NoSuchEvent","v":1,"data":{},"hash":"' + b"0" * 32 + b'"}'
    line = body[:-1] + b',"crc":"%08x"}\n' % crc32c(body)
    with pytest.raises(codec.CodecError):
        codec.decode_line(line)


def test_uppercase_crc_digits_still_read():
    """The fast check compares lowercase hex; a line framed with uppercase digits takes the slow path."""
    line = codec.frame(Record(3, 1, TS, "n2", "n1", ev.NodeJoined(incarnation=4), "ab" * 16))
    upper = line[:-11] + line[-11:-3].upper() + line[-3:]
    assert codec.decode_line(upper) == codec.decode_line(line)


def test_snapshot_store_takes_the_decoder_from_its_caller(tmp_path):
    """Layering: the store holds opaque dicts; without a decode function no snapshot is used."""
    from roster.history_gen import make_history

    records = make_history(50, seed=3, n_nodes=3)
    state = fold(ClusterState(), records)
    snapshot_store.write_snapshot(tmp_path, state)
    hashes = {r.seq: r.hash for r in records}
    got, warnings = snapshot_store.load_newest_valid(tmp_path, hashes.get, decode=ClusterState.from_dict)
    assert got is not None and got.digest() == state.digest() and warnings == []
    got, warnings = snapshot_store.load_newest_valid(tmp_path, hashes.get)
    assert got is None and "no decode function" in warnings[0]


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "events").glob("*.py")), ids=lambda p: p.name)
def test_events_is_the_bottom_layer(path):
    """events/ depends on nothing above it: not projections, actors or roster (issue 11, layering)."""
    higher = {m for m in _imported_modules(path) if m.split(".")[0] in {"projections", "actors", "roster"}}
    assert not higher, f"{path.name} imports {sorted(higher)}"


def test_one_reader_for_the_log_and_the_offline_tools():
    """Issue 11 (layering): roster.logdir reads through the log's own reader, not a copy of it."""
    from events import log, log_reader, segments
    from roster import logdir

    assert issubclass(logdir.LogReader, log_reader.SegmentReader)
    assert log.CorruptLogError is segments.CorruptLogError
    logdir_source = (REPO_ROOT / "roster" / "logdir.py").read_text()
    assert "unframe" not in logdir_source and "codec." not in logdir_source
    assert "decode_records" in (REPO_ROOT / "events" / "log.py").read_text()
    assert "decode_records" in (REPO_ROOT / "events" / "log_reader.py").read_text()


def test_a_damaged_line_is_reported_alike_by_both_readers(tmp_path):
    """The same damage gives the same CorruptLogError (seq and reason) from EventLog and LogReader."""
    from events.log import EventLog
    from roster.logdir import LogReader

    records = [Record(i, 1, TS, "n2", "n1", ev.HeartbeatMissed(count=i), "") for i in range(1, 6)]
    records = codec.seal_all([draft(r.event, by="n1", node="n2") for r in records], first_seq=1, epoch=1, ts=TS,
                             prev_hash=codec.GENESIS_HASH)
    with EventLog.open(tmp_path, fsync=False) as log:
        log.append_records(records)
        seg = log.segment_paths()[0]
        data = seg.read_bytes()
        lines = data.splitlines(keepends=True)
        seg.write_bytes(b"".join(lines[:2] + [lines[2].replace(b'"count":3', b'"count":4')] + lines[3:]))
        with pytest.raises(CorruptLogError) as from_log:
            log.read(1)
    with pytest.raises(CorruptLogError) as from_reader:
        list(LogReader(tmp_path).iter_records(1))
    assert (from_log.value.seq, from_log.value.reason) == (from_reader.value.seq, from_reader.value.reason) \
        == (3, "crc mismatch")
