"""The one module that turns records into bytes and back (orjson), and chains their hashes.

On disk and on the wire a record is one JSON object:
`{"seq","epoch","ts","type","node","by","v","data","hash"}`. On disk each line also ends in
`"crc"`, a CRC32C of the bytes before it, so a torn or corrupt line is detected without
re-serialising (see `frame` / `unframe`).

Two read paths (see `docs/benchmarks.md`, "Replay"):
- `decode` / `from_envelope` validate every record with pydantic: for anything from outside
  (HTTP, a joiner's copy, a record of an older schema version being upcast).
- `decode_line` is the log's own read path: a line whose CRC checks out is bytes the log
  wrote, and the log wrote only records it had validated; it is parsed once (the CRC is
  checked on the raw line, then one `orjson.loads` of the whole line) and its event is taken
  from a small cache keyed by the exact bytes of its `data` when the same event was decoded
  before (half the records of a typical log repeat one exactly). Only a miss is validated.

Sealing and framing (`seal_and_frame`) render an event once (one pydantic serialisation)
and template both byte strings from it: the sorted canonical bytes the hash covers and the
disk line; both are byte-identical to `orjson.dumps` of the envelope dict (checked at import,
and by tests, with `orjson.dumps` as the fallback).
"""

from __future__ import annotations

import hashlib
from types import UnionType
from typing import Any, Iterable, Literal, Union, get_args, get_origin

import orjson
from crc32c import crc32c

from events.record import Draft, Record
from events.types import CURRENT_VERSION, EVENT_TYPES, OPTIONAL_ADDITIONS, Event
from events.upcast import upcast

GENESIS_HASH = "00" * 16
HASH_BYTES = 16
_CRC_FIELD = b',"crc":"'
_CRC_TAIL = len(_CRC_FIELD) + 8 + len(b'"}')  # bytes after the record body on a disk line
_LINE_TAIL = _CRC_TAIL + 1  # the same, with the newline
_HASH_FIELD = b',"hash":"'
_DATA_KEY = b'"data":'
_HASH_FIELD_LEN, _DATA_KEY_LEN = len(_HASH_FIELD), len(_DATA_KEY)
# From the end of `data` to the end of a disk line: `,"hash":"<32 hex>"` + the crc tail + newline.
_AFTER_DATA = len(_HASH_FIELD) + 2 * HASH_BYTES + 1 + _LINE_TAIL
INTERN_MAX_EVENTS_PER_TYPE = 2048  # decoded events kept per type for reuse; the cache is cleared when full


# Validating through pydantic-core directly skips a Python-level wrapper per record.
_VALIDATORS = {name: cls.__pydantic_validator__.validate_python for name, cls in EVENT_TYPES.items()}
_NOT_IN_DATA = frozenset({"type", "v"})
# Serialising through pydantic-core directly, likewise (model_dump costs ≈ 0.4 µs more).
_SERIALIZERS = {name: cls.__pydantic_serializer__.to_python for name, cls in EVENT_TYPES.items()}


class CodecError(ValueError):
    """A record that cannot be decoded: not JSON, unknown type, or fields that do not fit."""


def envelope(record: Record) -> dict[str, Any]:
    ev = record.event
    data = ev.model_dump(mode="json", exclude={"type", "v"})
    return {
        "seq": record.seq,
        "epoch": record.epoch,
        "ts": record.ts,
        "type": ev.type,
        "node": record.node,
        "by": record.by,
        "v": ev.v,
        "data": data,
        "hash": record.hash,
    }


def canonical_bytes(env: dict[str, Any]) -> bytes:
    """The bytes the hash covers: the envelope without `hash`, keys sorted."""
    body = {k: v for k, v in env.items() if k != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


# Copying a fresh hasher is ≈ 2× cheaper than constructing one with digest_size= (measured).
_BLAKE2B = hashlib.blake2b(digest_size=HASH_BYTES)


def _digest(prev: bytes, canonical: bytes) -> bytes:
    h = _BLAKE2B.copy()
    h.update(prev)
    h.update(canonical)
    return h.digest()


def chain_hash(prev_hash: str, env: dict[str, Any]) -> str:
    return _digest(bytes.fromhex(prev_hash), canonical_bytes(env)).hex()


def seal(draft: Draft, *, seq: int, epoch: int, ts: str, prev_hash: str) -> Record:
    """Give a draft its place in the log: seq, epoch, time and the chained hash."""
    return seal_and_frame((draft,), first_seq=seq, epoch=epoch, ts=ts, prev_hash=prev_hash)[0][0]


def seal_all(drafts: Iterable[Draft], *, first_seq: int, epoch: int, ts: str, prev_hash: str) -> list[Record]:
    return seal_and_frame(drafts, first_seq=first_seq, epoch=epoch, ts=ts, prev_hash=prev_hash)[0]


# --- sealing and framing from one rendering ---------------------------------------------------
#
# The hash covers the envelope without `hash`, keys sorted; the disk line is the envelope in
# its own order plus the CRC. Both are templated here around one serialisation of the event:
# the scalar envelope fields are formatted directly (ints with %d, strings JSON-encoded by
# orjson), `data` is rendered once by orjson (twice for a type whose field names are not in
# sorted order, since the canonical form sorts them). `_template_ok` proves at import that the
# templates give orjson's bytes; if they ever did not, `_render` falls back to orjson dicts.

_CANON = b'{"by":%b,"data":%b,"epoch":%d,"node":%b,"seq":%d,"ts":%b,"type":%b,"v":%d}'
_LINE = b'{"seq":%d,"epoch":%d,"ts":%b,"type":%b,"node":%b,"by":%b,"v":%d,"data":%b,"hash":"%b"}'
_JSON_STRINGS_MAX = 1024  # node ids, `by` and timestamps kept JSON-encoded; cleared when full
_json_strings: dict[str | None, bytes] = {None: b"null"}
_SORT = orjson.OPT_SORT_KEYS

# (type, v, data as in the line, data as in the canonical form, node, by) with JSON strings.
Rendered = tuple[bytes, int, bytes, bytes, bytes, bytes]


def _jstr(s: str | None) -> bytes:
    b = _json_strings.get(s)
    if b is None:
        if len(_json_strings) >= _JSON_STRINGS_MAX:
            _json_strings.clear()
            _json_strings[None] = b"null"
        b = _json_strings[s] = orjson.dumps(s)
    return b


def _sorted_layout(cls: type[Event]) -> bool:
    """Whether a type's `data` renders the same with sorted keys: field names in order, and no
    value that holds keys of its own (a dict, or a nested model such as a ResourceSpec)."""
    names = [n for n in cls.model_fields if n not in _NOT_IN_DATA]
    flat = all(_json_native(f.annotation) and get_origin(f.annotation) is not dict and f.annotation is not dict
               for n, f in cls.model_fields.items() if n not in _NOT_IN_DATA)
    return flat and names == sorted(names)


_TYPE_JSON = {name: orjson.dumps(name) for name in EVENT_TYPES}


def _json_native(annotation: Any) -> bool:
    """Whether orjson writes a field's Python value exactly as pydantic's JSON mode would."""
    if annotation in (str, int, bool, type(None)):
        return True
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not Ellipsis]
    if origin is Literal:
        return all(type(a) in (str, int) for a in args)
    if origin in (tuple, Union, UnionType, dict):
        return all(_json_native(a) for a in args) and (origin is not dict or args[0] is str)
    return False


_DATA_SORTED = {name: _sorted_layout(cls) for name, cls in EVENT_TYPES.items()}


def _data_fields(cls: type[Event]) -> tuple[str, ...] | None:
    """The `data` field names of a type whose values orjson can write as they are, else None."""
    fields = {n: f for n, f in cls.model_fields.items() if n not in _NOT_IN_DATA}
    return tuple(fields) if all(_json_native(f.annotation) for f in fields.values()) else None


# Per type: the field names to take straight from the event (≈ 0.3 µs), or None to go through
# pydantic's serialiser (≈ 1 µs), e.g. for a nested model a future type may hold.
_DATA_FIELDS = {name: _data_fields(cls) for name, cls in EVENT_TYPES.items()}


# Per type: its fields that are left out of the bytes while None (OPTIONAL_ADDITIONS).
_OMIT_IF_NONE = {name: tuple(n for n in cls.model_fields if n in OPTIONAL_ADDITIONS) for name, cls in EVENT_TYPES.items()}


def _event_data(event: Event) -> Any:
    names = _DATA_FIELDS.get(event.type)
    if names is None or type(event) is not EVENT_TYPES[event.type]:
        return _SERIALIZERS[event.type](event, mode="json", exclude=_NOT_IN_DATA)
    values = event.__dict__
    data = {n: values[n] for n in names}
    for n in _OMIT_IF_NONE[event.type]:  # as the type's own serialiser does: old bytes, old hashes
        if data[n] is None:
            del data[n]
    return data


def _render_event(event: Event, node: str | None, by: str) -> Rendered:
    """The seq-independent part of sealing: one serialisation of the event."""
    t = event.type
    data = _event_data(event)
    in_line = orjson.dumps(data)
    canon = in_line if _DATA_SORTED[t] else orjson.dumps(data, option=_SORT)
    return _TYPE_JSON[t], event.v, in_line, canon, _jstr(node), _jstr(by)


def _canonical(r: Rendered, seq: int, epoch: int, ts_json: bytes) -> bytes:
    t, v, _, canon, node, by = r
    return _CANON % (by, canon, epoch, node, seq, ts_json, t, v)


def _line(r: Rendered, seq: int, epoch: int, ts_json: bytes, hash_hex: bytes) -> bytes:
    t, v, in_line, _, node, by = r
    body = _LINE % (seq, epoch, ts_json, t, node, by, v, in_line, hash_hex)
    return body[:-1] + b',"crc":"%08x"}\n' % crc32c(body)


def seal_and_frame(
    drafts: Iterable[Draft], *, first_seq: int, epoch: int, ts: str, prev_hash: str
) -> tuple[list[Record], list[bytes]]:
    """Seal drafts after `prev_hash` and frame each as its disk line, from one rendering each."""
    return seal_rendered(render_drafts(drafts), first_seq=first_seq, epoch=epoch, ts=ts, prev_hash=prev_hash)


def render_drafts(drafts: Iterable[Draft]) -> list[tuple[Draft, Rendered]]:
    """The half of sealing that needs no seq or hash: an appender does it before taking a lock."""
    return [(d, _render_event(d.event, d.node, d.by)) for d in drafts]


def seal_rendered(
    rendered: list[tuple[Draft, Rendered]], *, first_seq: int, epoch: int, ts: str, prev_hash: str
) -> tuple[list[Record], list[bytes]]:
    """The sequential half: seqs, the hash chain and the lines (the log holds its lock here)."""
    if type(epoch) is not int or type(ts) is not str:
        raise TypeError(f"epoch must be an int and ts a str, got {type(epoch).__name__}, {type(ts).__name__}")
    if not _TEMPLATES_OK:
        return _seal_by_dicts(rendered, first_seq, epoch, ts, prev_hash)
    ts_json = orjson.dumps(ts)
    prev = bytes.fromhex(prev_hash)
    records, lines = [], []
    for seq, (d, r) in enumerate(rendered, first_seq):
        prev = _digest(prev, _canonical(r, seq, epoch, ts_json))
        hex_hash = prev.hex()
        lines.append(_line(r, seq, epoch, ts_json, hex_hash.encode()))
        records.append(Record(seq, epoch, ts, d.node, d.by, d.event, hex_hash))
    return records, lines


def _seal_by_dicts(
    rendered: list[tuple[Draft, Rendered]], first_seq: int, epoch: int, ts: str, prev_hash: str
) -> tuple[list[Record], list[bytes]]:
    """The reference way (envelope dicts through orjson): used only if the templates disagree."""
    records, lines = [], []
    for seq, (d, _) in enumerate(rendered, first_seq):
        env = envelope(Record(seq, epoch, ts, d.node, d.by, d.event, ""))
        prev_hash = env["hash"] = chain_hash(prev_hash, env)
        body = orjson.dumps(env)
        lines.append(body[:-1] + b',"crc":"%08x"}\n' % crc32c(body))
        records.append(Record(seq, epoch, ts, d.node, d.by, d.event, prev_hash))
    return records, lines


def render_record(record: Record) -> tuple[bytes, bytes]:
    """(canonical bytes the hash covers, disk line) of a sealed record, from one rendering."""
    if not _TEMPLATES_OK:
        return canonical_bytes(envelope(record)), _frame_by_dict(record)
    r = _render_event(record.event, record.node, record.by)
    ts_json = orjson.dumps(record.ts)
    canon = _canonical(r, record.seq, record.epoch, ts_json)
    return canon, _line(r, record.seq, record.epoch, ts_json, record.hash.encode())


def hash_of(prev_hash: str, canonical: bytes) -> str:
    return _digest(bytes.fromhex(prev_hash), canonical).hex()


def from_envelope(env: dict[str, Any]) -> Record:
    try:
        type_name = env["type"]
        validate = _VALIDATORS[type_name]
        data = env["data"]
        if env["v"] != CURRENT_VERSION[type_name]:
            data = upcast(type_name, env["v"], data)
        event = validate(data)
        seq, epoch, ts, node, by, h = env["seq"], env["epoch"], env["ts"], env["node"], env["by"], env["hash"]
        if not (type(seq) is int and type(epoch) is int and type(ts) is str and type(by) is str and type(h) is str):
            raise ValueError("envelope field of the wrong type")
        if node is not None and type(node) is not str:
            raise ValueError("envelope field 'node' is not a string")
        return Record(seq, epoch, ts, node, by, event, h)
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"undecodable record: {exc!s}".splitlines()[0]) from None


def encode(record: Record) -> bytes:
    return orjson.dumps(envelope(record))


def decode(raw: bytes | str) -> Record:
    try:
        env = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(env, dict):
        raise CodecError("record is not a JSON object")
    return from_envelope(env)


def check_chain(prev_hash: str, record: Record) -> bool:
    """True when `record.hash` is the hash of its own content chained to `prev_hash`.

    A record is never changed once made, so the answer for one object and one `prev_hash`
    is kept on it (`Record.chained_to`) and not computed again."""
    if record.chained_to == prev_hash:
        return True
    ok = hash_of(prev_hash, render_record(record)[0]) == record.hash
    if ok:
        record.chained_to = prev_hash
    return ok


def frame(record: Record) -> bytes:
    """One disk line: the JSON record with a trailing CRC32C field, then a newline."""
    return render_record(record)[1]


def _frame_by_dict(record: Record) -> bytes:
    body = encode(record)
    return body[:-1] + b',"crc":"%08x"}\n' % crc32c(body)


def unframe(line: bytes) -> bytes:
    """The record body of one disk line (without its newline); CodecError when torn or corrupt."""
    if len(line) <= _CRC_TAIL or not line.endswith(b'"}'):
        raise CodecError("torn or unframed line")
    body = line[:-_CRC_TAIL] + b"}"
    tail = line[-_CRC_TAIL:]
    if not tail.startswith(b',"crc":"'):
        raise CodecError("missing crc field")
    try:
        want = int(tail[8:16], 16)
    except ValueError:
        raise CodecError("bad crc field") from None
    if crc32c(body) != want:
        raise CodecError("crc mismatch")
    return body


def parse_line(line: bytes) -> dict[str, Any]:
    """The envelope of one whole disk line (newline included); CodecError when torn or corrupt.

    The same checks as `unframe` + `loads`, but the line is parsed once: the CRC is checked
    on the line as read, then orjson reads the whole line, whose `crc` field is dropped.
    """
    env = _parse_framed(line)
    if type(env) is not dict or type(env.get("seq")) is not int or type(env.get("hash")) is not str:
        raise CodecError("line is not a record envelope")
    del env["crc"]
    return env


def _parse_framed(line: bytes) -> Any:
    """orjson's reading of a disk line whose CRC checks out; CodecError when torn or corrupt.

    The common case is one comparison: the line's last 19 bytes against the tail `frame`
    would write for its body. Copying the ~200-byte body slice for the CRC costs less than
    a memoryview of it or a second crc32c call (measured: 0.22 against 0.47 and 0.27 µs).
    """
    n = len(line)
    if line[n - _LINE_TAIL :] != b',"crc":"%08x"}\n' % crc32c(line[: n - _LINE_TAIL] + b"}"):
        _check_frame(line)  # says what is wrong, or accepts a valid line framed another way
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None


def _check_frame(line: bytes) -> None:
    """The slow path of `_parse_framed`: unframe's checks, in its order, with its messages."""
    if not line.endswith(b"\n"):
        raise CodecError("partial line (no newline)")
    unframe(line[:-1])


def _immutable(annotation: Any) -> bool:
    """Whether values of a field type cannot be changed once built (safe to share between records)."""
    if annotation in (str, int, bool, float, type(None)):
        return True
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not Ellipsis]
    if origin is Literal:
        return all(isinstance(a, (str, int, bool)) for a in args)
    if origin in (tuple, frozenset, Union, UnionType):
        return all(_immutable(a) for a in args)
    return False


# Events of these types hold only immutable values, so one instance can serve every record
# whose `data` bytes are identical (a dict field, e.g. SettingsChanged.changes, could be
# changed through one record and show in another: those types are always built anew).
_INTERNABLE = frozenset(name for name, cls in EVENT_TYPES.items()
                        if all(_immutable(f.annotation) for f in cls.model_fields.values()))


class _Interned:
    """The reusable events of one type, and whether reuse is paying off for it.

    A type whose records rarely repeat (e.g. ConfigDbSynced, which names seqs) would only
    fill the cache and churn memory, so when the cache fills with fewer hits than entries,
    the type is not cached again in this process (`decode_line` validates each of its records).
    """

    __slots__ = ("events", "hits")

    def __init__(self) -> None:
        self.events: dict[bytes, Event] = {}
        self.hits = 0


_interned: dict[str, _Interned] = {name: _Interned() for name in _INTERNABLE}


def _remember(t: str, entry: _Interned, key: bytes, event: Event) -> None:
    if len(entry.events) >= INTERN_MAX_EVENTS_PER_TYPE:
        if entry.hits < len(entry.events):
            _interned.pop(t, None)  # more misses than hits: reuse does not pay for this type
            return
        entry.events = {}  # a new dict: the old one is freed at once, with no per-key work
        entry.hits = 0
    entry.events[key] = event


def decode_line(line: bytes) -> Record:
    """The log's own read path: a record from one disk line it wrote (see the module doc).

    CodecError when the line is torn or corrupt. A record of an older schema version, or
    whose line does not have the layout `frame` writes, is validated as `from_envelope` does.
    """
    n = len(line)  # _parse_framed, inlined: this is the hot loop of every replay
    if line[n - _LINE_TAIL :] != b',"crc":"%08x"}\n' % crc32c(line[: n - _LINE_TAIL] + b"}"):
        _check_frame(line)
    try:
        env = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    try:
        t = env["type"]
        if env["v"] != CURRENT_VERSION[t]:
            return from_envelope(env)  # an older schema: upcast, then validated
        entry = _interned.get(t)
        end = n - _AFTER_DATA
        if entry is None or line[end : end + _HASH_FIELD_LEN] != _HASH_FIELD:
            event = _VALIDATORS[t](env["data"])
        else:
            key = line[line.index(_DATA_KEY) + _DATA_KEY_LEN : end]  # the first "data": is the envelope's key
            event = entry.events.get(key)
            if event is None:
                event = _VALIDATORS[t](env["data"])
                _remember(t, entry, key, event)
            else:
                entry.hits += 1
        return Record(env["seq"], env["epoch"], env["ts"], env["node"], env["by"], event, env["hash"])
    except (KeyError, TypeError, ValueError) as exc:  # CRC-valid but not an envelope: written by hand
        raise CodecError(f"undecodable record: {exc!s}".splitlines()[0]) from None


def dumps(obj: Any, *, sort_keys: bool = False, indent: bool = False) -> bytes:
    """JSON for everything else that leaves a process (snapshots, HTTP, CLI --json)."""
    opt = orjson.OPT_NON_STR_KEYS
    if sort_keys:
        opt |= orjson.OPT_SORT_KEYS
    if indent:
        opt |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, option=opt)


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None


def _template_ok() -> bool:
    """Whether the templates give orjson's bytes for the envelope dicts (a probe of every shape)."""
    from events.types import GroupMoved, NodeJoined, Regrouped

    probes = [
        Record(1, 1, "2024-01-01T00:00:00.000Z", "n2", "n1", NodeJoined(incarnation=1), ""),
        Record(7, 3, "t\u00e9\n\"", None, "b\\y", GroupMoved(group="g\u2028", from_node=None, to_node="n", reason="r"), ""),
        Record(9, 2, "t", "n", "n", Regrouped(online=("a", "b"), down=(), reason="x"), ""),
    ]
    for rec in probes:
        env = envelope(rec)
        env["hash"] = chain_hash(GENESIS_HASH, env)
        r = _render_event(rec.event, rec.node, rec.by)
        ts_json = orjson.dumps(rec.ts)
        body = orjson.dumps(env)
        if _canonical(r, rec.seq, rec.epoch, ts_json) != canonical_bytes(env):
            return False
        if _line(r, rec.seq, rec.epoch, ts_json, env["hash"].encode()) != body[:-1] + b',"crc":"%08x"}\n' % crc32c(body):
            return False
    return True


_TEMPLATES_OK = _template_ok()
