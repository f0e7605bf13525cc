"""Issue 13.2 over HTTP: a command whose batch was in flight when the leader changed is
answered 504 `outcome_unknown` with the request id to look up — neither ok nor failed."""

from __future__ import annotations

from actors import messages as m
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from tests.http_support import AUTH, TOKEN, client_for, sim_records, static_health


async def test_invariant2_outcome_unknown_is_a_504_with_the_request_id_in_the_body():
    feed = ReplicaFeed.from_records("n1", sim_records())

    async def leader_changed_mid_commit(op, args):
        return m.AdminReply(request_id="req-42", ok=False, status=504, error="outcome_unknown",
                            detail="quorum lease lost; look up request req-42 in the log")

    app = create_app(feed, admin=leader_changed_mid_commit, health=static_health(feed), token=TOKEN)
    async with client_for(app) as client:
        resp = await client.post("/v1/nodes/n2/pause", headers=AUTH)
        doc = await resp.json()
    assert resp.status == 504
    assert doc["error"] == "outcome_unknown" and doc["request_id"] == "req-42" and "req-42" in doc["detail"]
