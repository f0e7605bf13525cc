"""Read a running cluster's log over HTTP, for `roster events --url` and `roster replay --url`.

The records come from `GET /v1/events` (paged) as the same envelopes the log holds, so a
replay against a live node folds exactly what `roster replay LOGDIR` folds.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterator

from events import codec
from events.record import Record
from roster.cli_cluster import Api
from roster.errors import UserError

PAGE_EVENTS = 1000  # the API's largest page


def iter_remote(url: str, from_seq: int = 1, *, type_: str | None = None, node: str | None = None,
                to_seq: int | None = None) -> Iterator[Record]:
    """Records from `from_seq` on (up to `to_seq`), page by page, as the node's replica holds them."""
    api = Api(url)
    nxt = from_seq
    while True:
        query = {"from": nxt, "limit": PAGE_EVENTS}
        query.update({k: v for k, v in (("type", type_), ("node", node)) if v is not None})
        doc = api.call("GET", "/v1/events?" + urllib.parse.urlencode(query))
        for env in doc["events"]:
            try:
                record = codec.from_envelope(env)
            except codec.CodecError as exc:
                raise UserError(f"{url} sent an unreadable record: {exc}") from None
            if to_seq is not None and record.seq > to_seq:
                return
            yield record
        if not doc.get("more") or not doc["events"]:
            return
        nxt = doc["next"]


def remote_head(url: str) -> int:
    return int(Api(url).call("GET", "/v1/events?limit=1")["seq"])
