"""Schema stability: a log written by an earlier build replays to exactly the same state.

`tests/fixtures/golden/` is a checked-in log (made once by tests/fixtures/make_golden.py; the
tests never regenerate it) and EXPECTED.json its head and projection digest. If one of these
fails, an old log no longer reads or replays the same: add an upcaster (events/upcast.py)
rather than changing the fixture. A deliberate change of the digest is recorded with
`make_golden.py --update-expected`, said so in the commit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from events import codec, upcast
from events import types as ev
from events.log import EventLog, verify_log
from roster.logdir import LogReader, rebuild
from projections.state import ClusterState, fold

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
EXPECTED = codec.loads((GOLDEN / "EXPECTED.json").read_bytes())


def test_golden_log_replays_to_the_expected_digest():
    reader = LogReader(GOLDEN)
    assert (reader.head_seq, reader.head_hash) == (EXPECTED["head_seq"], EXPECTED["head_hash"])
    state = rebuild(GOLDEN, use_snapshots=False)
    assert (state.seq, state.hash) == (EXPECTED["head_seq"], EXPECTED["head_hash"])
    assert state.digest() == EXPECTED["digest"]


def test_golden_log_verifies_and_reads_through_the_durable_log(tmp_path):
    report = verify_log(GOLDEN)
    assert report.ok and report.head_seq == EXPECTED["head_seq"]
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN, copy)  # EventLog takes a lock file: never inside the fixture
    with EventLog.open(copy, create=False) as log:
        assert log.truncated is None
        assert fold(ClusterState(), log.iter_from(1)).digest() == EXPECTED["digest"]


def test_golden_records_reencode_byte_for_byte():
    """Decoding then framing gives the stored line back: the envelope and data shapes are unchanged."""
    lines = [line for seg in sorted(GOLDEN.glob("*.jsonl")) for line in seg.read_bytes().splitlines(keepends=True)]
    assert len(lines) == EXPECTED["head_seq"]
    prev = codec.GENESIS_HASH
    for line in lines:
        rec = codec.decode(codec.unframe(line[:-1]))
        assert codec.frame(rec) == line
        assert codec.check_chain(prev, rec)
        prev = rec.hash
    assert {codec.loads(line)["type"] for line in lines} == set(ev.EVENT_TYPES), "the fixture covers every type"
    assert any(b'"moving_to":' in line for line in lines) and any(b'"request_id":' in line for line in lines)


# --- the upcaster hook ----------------------------------------------------------------------


def _old_node_joined(v: int, data: dict) -> bytes:
    env = {"seq": 9, "epoch": 1, "ts": "2023-06-01T00:00:00.000Z", "type": "NodeJoined", "node": "n2",
           "by": "n1", "v": v, "data": data, "hash": "ab" * 16}
    return codec.dumps(env)


@pytest.fixture
def node_joined_v2(monkeypatch):
    """Pretend this build is NodeJoined v2, whose v1 spelled the incarnation `inc`."""
    monkeypatch.setitem(ev.CURRENT_VERSION, "NodeJoined", 2)
    monkeypatch.setitem(upcast.UPCASTERS, ("NodeJoined", 1), lambda d: {"incarnation": d["inc"]})


def test_an_old_record_is_upcast_to_the_current_model(node_joined_v2):
    rec = codec.decode(_old_node_joined(1, {"inc": 7}))
    assert isinstance(rec.event, ev.NodeJoined) and rec.event.incarnation == 7
    assert (rec.seq, rec.node, rec.hash) == (9, "n2", "ab" * 16)
    assert codec.decode(_old_node_joined(2, {"incarnation": 8})).event.incarnation == 8  # current: as is


def test_upcasting_steps_through_every_version(monkeypatch, node_joined_v2):
    monkeypatch.setitem(ev.CURRENT_VERSION, "NodeJoined", 3)
    monkeypatch.setitem(upcast.UPCASTERS, ("NodeJoined", 2), lambda d: {"incarnation": d["incarnation"] + 100})
    assert codec.decode(_old_node_joined(1, {"inc": 7})).event.incarnation == 107


def test_a_missing_upcaster_or_a_newer_version_is_a_codec_error(monkeypatch):
    monkeypatch.setitem(ev.CURRENT_VERSION, "NodeJoined", 2)
    with pytest.raises(codec.CodecError, match="no upcaster for NodeJoined v1"):
        codec.decode(_old_node_joined(1, {"inc": 7}))
    with pytest.raises(codec.CodecError, match="newer than this build"):
        codec.decode(_old_node_joined(5, {"incarnation": 1}))
