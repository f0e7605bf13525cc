"""The OpenAPI document against the app: it names every route, real answers validate against
it, and no input makes any route answer 500 (a hypothesis fuzz of every parameter, and
schemathesis driven from /openapi.json of a live app; both bounded)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from roster.http.openapi import document
from roster.http.routes import ROUTES
from tests.http_support import AUTH, LiveServer, SimCluster

DOC = document()
FUZZ_EXAMPLES = 60  # per test; every route is hit each example
ST_EXAMPLES = 8  # schemathesis examples per operation and generation mode
ST_TIME_CAP_S = 120  # schemathesis stops starting new operations past this
FUZZ_WAIT_MS = 20  # ?timeout_ms is clamped to this in fuzzing, so min_seq cases stay fast
HTTP_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def live():
    holder: dict[str, SimCluster] = {}

    def make():
        holder["cluster"] = SimCluster()
        return holder["cluster"].app()

    with LiveServer(make) as server:
        yield server


def request(live: LiveServer, method: str, path: str, *, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(live.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                return resp.status, dict(resp.headers), b""  # endless: the status and headers are the answer
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def response_schema(template: str, method: str, status: int) -> dict[str, Any] | None:
    responses = DOC["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, which the document does not list"
    content = responses[str(status)].get("content", {})
    return content.get("application/json", {}).get("schema")


def check_answer(template: str, method: str, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status != 500 and status < 600, (template, status, body[:300])
    assert "X-Roster-Seq" in headers or status == 304 and "ETag" in headers, (template, status)
    schema = response_schema(template, method, status)
    if schema is None or status == 304:
        return
    doc = json.loads(body)
    jsonschema.Draft202012Validator({**schema, "components": DOC["components"]}).validate(doc)
    if status >= 400:
        assert set(doc) >= {"error", "detail"} and doc["detail"]


# --- the document and the route table ----------------------------------------------------------------


def test_the_document_names_exactly_the_served_routes():
    served = {(r.method.lower(), r.path) for r in ROUTES}
    documented = {(method, path) for path, ops in DOC["paths"].items() for method in ops}
    assert served == documented
    assert DOC["openapi"].startswith("3.1")


def test_the_document_is_served(live):
    status, headers, body = request(live, "GET", "/openapi.json")
    assert status == 200 and json.loads(body) == json.loads(json.dumps(DOC))


def test_real_answers_validate_against_the_document(live):
    calls = [("GET", "/v1/membership", "/v1/membership"), ("GET", "/v1/membership", "/v1/membership?at=5"),
             ("GET", "/v1/config", "/v1/config"), ("GET", "/v1/nodes/{id}", "/v1/nodes/n1"),
             ("GET", "/v1/nodes/{id}/timeline", "/v1/nodes/n2/timeline"), ("GET", "/v1/events", "/v1/events?limit=5"),
             ("GET", "/healthz", "/healthz"), ("GET", "/v1/nodes/{id}", "/v1/nodes/ghost"),
             ("GET", "/v1/events", "/v1/events?type=x"), ("POST", "/v1/groups", "/v1/groups"),
             ("POST", "/v1/nodes/{id}/pause", "/v1/nodes/n2/pause"),
             ("POST", "/v1/nodes/{id}/resume", "/v1/nodes/n2/resume")]
    for method, template, path in calls:
        body = b'{"name": "g-doc"}' if template == "/v1/groups" else None
        status, headers, raw = request(live, method, path, body=body, headers=AUTH)
        check_answer(template, method, status, headers, raw)


# --- hypothesis: any text in any parameter -----------------------------------------------------------

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
PLAUSIBLE = st.one_of(ANY_TEXT, st.integers(-5, 10**20).map(str), st.sampled_from(
    ["n1", "n2", "g0", "true", "false", "2026-01-01T00:00:01Z", "0", "", "NodeJoined", "1e3", " 7", "٣"]))
QUERY = st.dictionaries(st.sampled_from(["at", "min_seq", "timeout_ms", "from", "limit", "type", "node", "drain",
                                          "x"]), PLAUSIBLE, max_size=4)
BODY = st.one_of(st.none(), st.binary(max_size=40), st.builds(
    lambda d: json.dumps(d).encode(),
    st.dictionaries(st.sampled_from(["id", "name", "node", "address", "preferred_owners", "failback", "zz"]),
                    st.one_of(PLAUSIBLE, st.booleans(), st.lists(PLAUSIBLE, max_size=3), st.none()), max_size=4)))


def _fill(template: str, segment: str) -> str:
    quoted = urllib.parse.quote(segment, safe="") or "_"
    return template.replace("{id}", quoted).replace("{name}", quoted)


def _clamp(query: dict[str, str]) -> dict[str, str]:
    if "timeout_ms" in query or "min_seq" in query:
        query = {**query, "timeout_ms": str(FUZZ_WAIT_MS)}
    return query


@given(segment=PLAUSIBLE, query=QUERY, body=BODY, auth=st.booleans())
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzzed_parameters_never_give_a_500_and_answers_fit_the_document(live, segment, query, body, auth):
    for route in ROUTES:
        path = _fill(route.path, segment)
        qs = urllib.parse.urlencode(_clamp(query))
        headers = {**(AUTH if auth else {}), "Content-Type": "application/json"}
        status, resp_headers, raw = request(live, route.method, path + (f"?{qs}" if qs else ""),
                                            body=body if route.method != "GET" else None, headers=headers)
        check_answer(route.path, route.method, status, resp_headers, raw)
        if route.method != "GET" and not auth and not route.path.startswith("/svc/"):  # /svc/: the service's traffic
            assert status == 401


# --- schemathesis, from the served document ----------------------------------------------------------


def _no_500(ctx: Any, response: Any, case: Any) -> bool | None:
    """5xx answers that the document lists are answers (504 replica behind, 503 no leader); a 500 is a bug."""
    assert response.status_code != 500, f"500 from {case.method} {case.path}"
    return None


def test_schemathesis_finds_no_failure(live):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error, positive_data_acceptance

    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    started, failures, ran = time.monotonic(), [], 0
    # schemathesis leaves out the operation that serves the schema itself (/openapi.json)
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if op.path != "/v1/events/stream"]  # endless by design: test_http_sse, the fuzz above
    assert len(ops) >= len(ROUTES) - 2
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() - started > ST_TIME_CAP_S:
                break

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=ST_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case):
                if isinstance(case.query, dict) and ("min_seq" in case.query or "timeout_ms" in case.query):
                    case.query["timeout_ms"] = FUZZ_WAIT_MS
                # An admin command that is well-formed but names what the cluster lacks (preferred
                # owners that are not members) is the leader's 422: valid schema, refused data.
                excluded = [not_a_server_error] + ([positive_data_acceptance] if op.method != "get" else [])
                case.call_and_validate(headers=AUTH, excluded_checks=excluded, additional_checks=[_no_500])

            try:
                run()
                ran += 1
            except Unsatisfiable:  # no parameters to make invalid (GET /healthz in negative mode)
                ran += 1
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{op.label} [{mode.value}]: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
    assert ran == 2 * len(ops) or time.monotonic() - started > ST_TIME_CAP_S
