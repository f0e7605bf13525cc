"""The offline CLI verbs end to end (verify, events, replay, diff, timeline) on real logs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from events import codec, log_reader, snapshot_store
from events.log import EventLog
from projections import replay
from roster import logdir as logfiles
from projections.state import ClusterState, fold
from roster import cli_offline
from roster.cli import main
from roster.history_gen import make_history

N_RECORDS = 400
SEGMENT_BYTES = 20_000  # several segments, so reads cross segment boundaries
NODE_STATES = {"Online", "Offline", "Paused", "Joining"}


@pytest.fixture(scope="module")
def history():
    return make_history(N_RECORDS, seed=3, n_nodes=5)


@pytest.fixture
def logdir(tmp_path: Path, history) -> Path:
    path = tmp_path / "log"
    with EventLog.open(path, segment_max_bytes=SEGMENT_BYTES, fsync=False) as log:
        for i in range(0, len(history), 37):
            log.append_records(history[i : i + 37])
    assert len(list(path.glob("*.jsonl"))) > 2
    return path


def run(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def state_at(history, seq: int) -> ClusterState:
    return fold(ClusterState(), history[:seq])


# --- replay --------------------------------------------------------------------------------


def test_replay_to_seq_json_is_exactly_the_cluster_state(capsys, logdir, history):
    code, out, err = run(capsys, "replay", logdir, "--to", 250, "--json")
    assert code == 0, err
    doc = codec.loads(out)
    assert set(doc) == {"seq", "hash", "config", "membership"}
    assert doc == state_at(history, 250).to_dict()
    assert doc["seq"] == 250 and doc["hash"] == history[249].hash
    assert doc["membership"]["nodes"] and all(n["state"] in NODE_STATES for n in doc["membership"]["nodes"])
    assert all({"id", "state"} <= set(n) for n in doc["membership"]["nodes"])


def test_replay_at_time_is_the_state_after_the_last_record_at_or_before_it(capsys, logdir, history):
    ts = history[99].ts
    assert codec.loads(run(capsys, "replay", logdir, "--at", ts, "--json")[1])["seq"] == 100
    between = ts[:-1] + "1Z" if history[100].ts > ts[:-1] + "1Z" else ts
    assert codec.loads(run(capsys, "replay", logdir, "--at", between, "--json")[1])["seq"] == 100
    assert codec.loads(run(capsys, "replay", logdir, "--at", "2000-01-01", "--json")[1])["seq"] == 0
    late = run(capsys, "replay", logdir, "--at", "2100-01-01T00:00:00+02:00", "--json")[1]
    assert codec.loads(late)["seq"] == N_RECORDS


def test_replay_table_shows_config_and_membership(capsys, logdir):
    code, out, _ = run(capsys, "replay", logdir, "--to", N_RECORDS)
    assert code == 0
    assert f"seq {N_RECORDS} of {N_RECORDS}" in out
    assert "MEMBER  ADDRESS" in out and "NODE" in out and "STATE" in out and "Membership: epoch" in out


def test_replay_works_while_a_node_holds_the_log(capsys, logdir, history):
    with EventLog.open(logdir, fsync=False):  # holds the lock, as a running node does
        code, out, err = run(capsys, "replay", logdir, "--to", 10, "--json")
    assert code == 0, err
    assert codec.loads(out) == state_at(history, 10).to_dict()


# --- events --------------------------------------------------------------------------------


def test_the_offline_verbs_take_a_data_dirs_quorum_folder_for_its_log(capsys, logdir, history):
    """`roster events roster-data/quorum` (the folder a user sees) reads roster-data/quorum/log/."""
    code, out, err = run(capsys, "events", logdir.parent, "--type", "NodeJoined", "--json")
    assert code == 0 and [codec.decode(x).seq for x in out.splitlines()] == [r.seq for r in history
                                                                            if r.type == "NodeJoined"], err
    empty = logdir.parent / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "events", empty)
    assert code != 0 and "not a Roster log directory" in err and "Traceback" not in err


def test_events_filters_by_type_node_and_from(capsys, logdir, history):
    code, out, _ = run(capsys, "events", logdir, "--type", "NodeJoined", "--json")
    got = [codec.decode(line) for line in out.splitlines()]
    assert code == 0 and got == [r for r in history if r.type == "NodeJoined"] and got

    out = run(capsys, "events", logdir, "--node", "n02", "--json")[1]
    assert [codec.decode(x).seq for x in out.splitlines()] == [r.seq for r in history if replay.names_node(r, "n02")]

    out = run(capsys, "events", logdir, "--from", N_RECORDS - 5, "--json")[1]
    assert [codec.decode(x).seq for x in out.splitlines()] == list(range(N_RECORDS - 5, N_RECORDS + 1))


def test_events_table_is_aligned(capsys, logdir):
    code, out, _ = run(capsys, "events", logdir, "--from", 1)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["SEQ", "EPOCH", "TS", "TYPE", "NODE", "BY", "DATA"]
    ts_col = lines[0].index("TS")
    assert all(line[ts_col : ts_col + 4] == "2024" for line in lines[1:])
    assert len(lines) == N_RECORDS + 1


# --- diff and timeline ---------------------------------------------------------------------


def test_diff_lists_the_changes_between_two_seqs(capsys, logdir, history):
    code, out, _ = run(capsys, "diff", logdir, 120, 300, "--json")
    doc = codec.loads(out)
    want = [c.to_dict() for c in replay.diff(state_at(history, 120), state_at(history, 300))]
    assert code == 0 and doc["changes"] == codec.loads(codec.dumps(want)) and want
    assert (doc["from"]["seq"], doc["to"]["seq"]) == (120, 300)
    back = codec.loads(run(capsys, "diff", logdir, 300, 120, "--json")[1])
    assert (back["from"]["seq"], back["to"]["seq"]) == (300, 120) and len(back["changes"]) == len(want)
    code, out, _ = run(capsys, "diff", logdir, 120, 300)
    assert out.startswith(f"seq 120 -> seq 300: {len(want)} changes") and "AREA" in out


def test_diff_of_a_state_with_itself_is_empty(capsys, logdir):
    code, out, _ = run(capsys, "diff", logdir, 77, 77)
    assert code == 0 and out.strip() == "seq 77 -> seq 77: 0 changes"


def test_timeline_lists_each_state_change_of_a_node(capsys, logdir, history):
    evicted = next(r.node for r in history if r.type == "NodeEvicted")
    code, out, _ = run(capsys, "timeline", logdir, evicted, "--json")
    entries = codec.loads(out)["entries"]
    assert code == 0 and entries == [e.to_dict() for e in replay.timeline(history, evicted)]
    assert entries[0]["from"] is None and entries[0]["to"] == "Offline"  # NodeAdded first
    assert any(e["type"] == "NodeEvicted" for e in entries)
    for before, after in zip(entries, entries[1:]):
        assert before["seq"] < after["seq"]
    code, out, _ = run(capsys, "timeline", logdir, evicted)
    assert out.splitlines()[0].split() == ["SEQ", "TS", "EVENT", "BY", "FROM", "TO", "REASON"]


# --- verify --------------------------------------------------------------------------------


def test_verify_clean_log(capsys, logdir, history):
    code, out, _ = run(capsys, "verify", logdir)
    assert code == 0 and out.startswith(f"ok: {N_RECORDS} records, head seq {N_RECORDS}") and history[-1].hash in out


def _flip_byte_in_record(logdir: Path, seq: int) -> None:
    """Change one byte in the middle of record `seq` (which must be in the first segment)."""
    first = sorted(logdir.glob("*.jsonl"))[0]
    lines = first.read_bytes().split(b"\n")
    line = bytearray(lines[seq - 1])
    i = line.index(b'"data"') + 3
    line[i] ^= 0x01
    lines[seq - 1] = bytes(line)
    first.write_bytes(b"\n".join(lines))


def test_verify_names_the_first_bad_seq_of_a_flipped_byte(capsys, logdir):
    _flip_byte_in_record(logdir, 7)
    code, out, err = run(capsys, "verify", logdir)
    assert code == 1 and "seq 7" in err and "crc" in err.lower() and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "replay", logdir, "--to", 50)
    assert code == 1 and "seq 7" in err and "Traceback" not in err
    code, _, err = run(capsys, "verify", logdir, "--repair")
    assert code == 1 and "seq 7" in err  # only a torn tail is a tool's job


def test_torn_tail_is_reported_and_repair_cuts_it(capsys, logdir, history):
    last = sorted(logdir.glob("*.jsonl"))[-1]
    torn = b'{"seq":401,"epoch":9,"ts":"2024-'  # a write torn by a crash
    with open(last, "ab") as f:
        f.write(torn)
    code, _, err = run(capsys, "verify", logdir)
    assert code == 1 and "torn" in err and f"seq {N_RECORDS}" in err and "--repair" in err
    code, out, _ = run(capsys, "replay", logdir, "--to", N_RECORDS, "--json")  # replay ignores the torn line
    assert code == 0 and codec.loads(out)["hash"] == history[-1].hash
    code, out, err = run(capsys, "verify", logdir, "--repair")
    assert code == 0, err
    assert f"repaired: cut {len(torn)} bytes" in out and f"ok: {N_RECORDS} records" in out
    assert list(logdir.glob("*.torn-*")), "the cut bytes are kept aside"
    assert run(capsys, "verify", logdir)[0] == 0


# --- snapshots -----------------------------------------------------------------------------


def test_replay_starts_from_a_valid_snapshot(capsys, logdir, history):
    snapshot_store.write_snapshot(logdir, state_at(history, 300))
    code, out, err = run(capsys, "replay", logdir, "--to", 350)
    assert code == 0 and "snapshot at seq 300 + 50 events" in out and not err
    code, out, _ = run(capsys, "replay", logdir, "--to", 350, "--json")
    assert codec.loads(out) == state_at(history, 350).to_dict()
    code, out, _ = run(capsys, "replay", logdir, "--to", 299)  # a snapshot after the target is not used
    assert "(299 events)" in out


def test_a_corrupt_snapshot_is_ignored_with_a_warning(capsys, logdir, history):
    snapshot_store.write_snapshot(logdir, state_at(history, 200))
    path = snapshot_store.write_snapshot(logdir, state_at(history, 300))
    doc = codec.loads(path.read_bytes())
    doc["state"]["membership"]["epoch"] += 1  # a flipped value: the digest no longer matches
    path.write_bytes(codec.dumps(doc))
    code, out, err = run(capsys, "replay", logdir, "--to", 350, "--json")
    assert code == 0 and codec.loads(out) == state_at(history, 350).to_dict()
    assert "warning: snapshot 300 skipped" in err and "digest" in err
    state, report = logfiles.rebuild_from(logfiles.LogReader(logdir), to_seq=350)
    assert report.snapshot_seq == 200 and report.applied == 150


def test_snapshots_of_another_history_or_garbage_are_skipped(tmp_path, logdir, history):
    other = make_history(300, seed=99, n_nodes=5)
    snapshot_store.write_snapshot(logdir, fold(ClusterState(), other))
    snapshot_store.snapshot_path(logdir, 250).write_bytes(b"{not json")
    state, warnings = snapshot_store.load_newest_valid(logdir, logfiles.LogReader(logdir).hash_at, decode=ClusterState.from_dict)
    assert state is None and len(warnings) == 2
    assert "another history" in warnings[0] and "unreadable" in warnings[1]
    snapshot_store.write_snapshot(tmp_path / "x", state_at(history, N_RECORDS))
    state, warnings = snapshot_store.load_newest_valid(tmp_path / "x", lambda seq: None, decode=ClusterState.from_dict)
    assert state is None and "beyond the head" in warnings[0]


def test_snapshot_store_prunes_the_oldest(tmp_path, history):
    for seq in (100, 200, 300, 400):
        snapshot_store.write_snapshot(tmp_path, state_at(history, seq))
    assert snapshot_store.prune(tmp_path, keep=2) == [100, 200]
    assert snapshot_store.list_snapshots(tmp_path) == [300, 400]
    assert not list((tmp_path / "snapshots").glob(".*"))  # no temp files left behind


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "{log}", "--to", "999999"],
        ["replay", "{log}", "--to", "-3"],
        ["replay", "{log}", "--to", "seven"],
        ["replay", "{log}", "--at", "not-a-time"],
        ["replay", "{log}"],
        ["replay", "{log}", "--to", "3", "--at", "2024-01-01"],
        ["replay", "{missing}", "--to", "1"],
        ["replay", "{empty}", "--to", "1"],
        ["events", "{log}", "--from", "0"],
        ["events", "{log}", "--from", "100000"],
        ["events", "{log}", "--type", "NodeSneezed"],
        ["diff", "{log}", "1", "yesterday"],
        ["diff", "{log}", "1", "5000"],
        ["timeline", "{log}", "nobody"],
        ["verify", "{missing}"],
        ["verify", "{empty}"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, tmp_path, logdir, argv):
    (tmp_path / "empty").mkdir()
    names = {"log": logdir, "missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    code, out, err = run(capsys, *[a.format(**names) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("roster: ")
    assert "Traceback" not in err and not out


def test_progress_bar_only_on_a_terminal_for_long_replays(capsys, monkeypatch, logdir):
    run(capsys, "replay", logdir, "--to", N_RECORDS, "--no-snapshots")
    monkeypatch.setattr(cli_offline, "PROGRESS_MIN_RECORDS", 100)
    monkeypatch.setattr(logfiles, "PROGRESS_EVERY_RECORDS", 100)
    code, _, err = run(capsys, "replay", logdir, "--to", N_RECORDS)
    assert code == 0 and err == ""  # stderr is not a terminal under capsys
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, "replay", logdir, "--to", N_RECORDS, "--json")
    assert code == 0 and "replaying [" in err and f"{N_RECORDS}/{N_RECORDS} events" in err
    assert codec.loads(out)["seq"] == N_RECORDS  # the bar never mixes into stdout


# --- the lock-free reader and the pure helpers ---------------------------------------------


def test_reader_finds_every_seq_by_bisection(monkeypatch, logdir, history):
    monkeypatch.setattr(log_reader, "BISECT_LINEAR_BYTES", 256)  # force the bisection on small segments
    reader = logfiles.LogReader(logdir)
    assert (reader.head_seq, reader.head_hash) == (N_RECORDS, history[-1].hash)
    assert [reader.hash_at(r.seq) for r in history] == [r.hash for r in history]
    assert reader.hash_at(0) == codec.GENESIS_HASH and reader.hash_at(N_RECORDS + 1) is None
    for start in (1, 2, 57, 58, 199, 200, 333, N_RECORDS):
        assert list(reader.iter_records(start, start + 60)) == history[start - 1 : start + 60]
    for r in history[::17]:
        assert reader.seq_at_time(replay.parse_time(r.ts)) == r.seq


def test_reader_of_an_empty_log(tmp_path):
    EventLog.open(tmp_path / "empty", fsync=False).close()
    reader = logfiles.LogReader(tmp_path / "empty")
    assert reader.head_seq == 0 and list(reader.iter_records()) == []
    assert logfiles.rebuild(tmp_path / "empty").to_dict() == ClusterState().to_dict()


def test_diff_names_node_group_and_config_changes(history):
    from events import types as ev
    from events.record import Draft
    from tests.strategies import seal_after

    a = state_at(history, N_RECORDS)
    node = next(n for n, v in sorted(a.membership.nodes.items()) if v.state == "Online" and n != a.membership.leader)
    group = next(g for g, v in sorted(a.membership.groups.items()) if v.owner is not None)
    b = fold(a, seal_after(a, Draft(node, a.membership.leader, ev.NodeExited()),
                           Draft(None, "n01", ev.GroupMoved(group=group, from_node=a.membership.groups[group].owner,
                                                            to_node=None, reason="test")),
                           Draft(None, "n01", ev.SettingsChanged(changes={"new_knob": 7}))))
    changes = {(c.kind, c.subject, c.field): (c.before, c.after) for c in replay.diff(a, b)}
    assert changes[("node", node, "state")] == ("Online", "Offline")
    assert changes[("group", group, "owner")] == (a.membership.groups[group].owner, None)
    assert changes[("setting", "new_knob", "value")] == (None, 7)
    assert [c.area for c in replay.diff(a, b)] == sorted(c.area for c in replay.diff(a, b))  # config first
    assert replay.diff(b, b) == []


def test_timeline_shows_rejected_joins_and_leadership(history):
    stranger = next((r.node for r in history if r.type == "JoinRejected"), None)
    if stranger is not None:
        entries = replay.timeline(history, stranger)
        assert any("join rejected" in e.reason for e in entries)
    leaders = {r.node for r in history if r.type == "QuorumAcquired"}
    for leader in leaders:
        assert any("leader of epoch" in e.reason for e in replay.timeline(history, leader))
