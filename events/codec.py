"""The one module that turns records into bytes and back (orjson), and chains their hashes.

On disk and on the wire a record is one JSON object:
`{"seq","epoch","ts","type","node","by","v","data","hash"}`. On disk each line also ends in
`"crc"`, a CRC32C of the bytes before it, so a torn or corrupt line is detected without
re-serialising (see `frame` / `unframe`).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Iterable

import orjson
from crc32c import crc32c

from events.record import Draft, Record
from events.types import CURRENT_VERSION, EVENT_TYPES
from events.upcast import upcast

GENESIS_HASH = "00" * 16
HASH_BYTES = 16
_CRC_TAIL = len(b',"crc":"') + 8 + len(b'"}')  # bytes after the record body on a disk line


# Validating through pydantic-core directly skips a Python-level wrapper per record.
_VALIDATORS = {name: cls.__pydantic_validator__.validate_python for name, cls in EVENT_TYPES.items()}


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


def chain_hash(prev_hash: str, env: dict[str, Any]) -> str:
    h = hashlib.blake2b(bytes.fromhex(prev_hash) + canonical_bytes(env), digest_size=HASH_BYTES)
    return h.hexdigest()


def seal(draft: Draft, *, seq: int, epoch: int, ts: str, prev_hash: str) -> Record:
    """Give a draft its place in the log: seq, epoch, time and the chained hash."""
    unsealed = Record(seq=seq, epoch=epoch, ts=ts, node=draft.node, by=draft.by, event=draft.event, hash="")
    return replace(unsealed, hash=chain_hash(prev_hash, envelope(unsealed)))


def seal_all(drafts: Iterable[Draft], *, first_seq: int, epoch: int, ts: str, prev_hash: str) -> list[Record]:
    out: list[Record] = []
    for i, d in enumerate(drafts):
        rec = seal(d, seq=first_seq + i, epoch=epoch, ts=ts, prev_hash=prev_hash)
        prev_hash = rec.hash
        out.append(rec)
    return out


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
    """True when `record.hash` is the hash of its own content chained to `prev_hash`."""
    return chain_hash(prev_hash, envelope(record)) == record.hash


def frame(record: Record) -> bytes:
    """One disk line: the JSON record with a trailing CRC32C field, then a newline."""
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
