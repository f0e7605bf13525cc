"""The web dashboard (`GET /` on every node).

Fast tests read the page and its files through aiohttp's test client. Browser tests drive a
real headless Chromium (Debian's `chromium`, through Playwright's Python package with
`executable_path`: no browser download) against a simulated cluster (admin buttons, token,
reconnect) and against one live `roster up` cluster (every node Online, a pause shown within
2 s, the scrubber agreeing with `/v1/membership?at=SEQ`). Each state is saved as a screenshot
under artifacts/dashboard/ (a CI artefact). Without Chromium or Playwright the browser tests
fail, saying what to install: CI installs both (.ci/run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from roster.history_gen import make_history
from roster.http import dashboard
from roster.http.app import create_app, serve
from roster.http.feed import ReplicaFeed
from roster.http.openapi import document
from tests.http_support import TOKEN, LiveServer, SimCluster, client_for, refuse_admin, static_health

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "dashboard"
STATIC = REPO / "roster" / "static"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
PAGE_READY_MS = 15_000  # first load: membership, the log, the stream
LIVE_CHANGE_MS = 2_000  # the issue's bound: a change reaches the open page within 2 s
UP_TIMEOUT_S = 180
UP_HTTP_PORT = 18760  # away from test_roster_up's ports
HTTP_TIMEOUT_S = 10


def _app():
    feed = ReplicaFeed.from_records("n01", make_history(60, seed=3, n_nodes=3))
    return create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)


# --- fast: the page and its files over HTTP (no browser) -----------------------------------------------


async def test_the_page_is_served_without_a_token_with_a_strict_csp():
    async with client_for(_app()) as client:
        resp = await client.get("/")
        body = await resp.text()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert '<script src="/static/app.js"' in body and 'href="/static/style.css"' in body
        # the page's own state is in its query (a shareable link): the server ignores it
        again = await client.get("/", params={"seq": "5", "node": "n1", "type": "NodeJoined"})
        assert again.status == 200 and await again.text() == body


@pytest.mark.parametrize("name, ctype", [("app.js", "text/javascript; charset=utf-8"),
                                         ("style.css", "text/css; charset=utf-8"),
                                         ("favicon.svg", "image/svg+xml")])
async def test_static_files_have_their_content_types_and_revalidate(name, ctype):
    async with client_for(_app()) as client:
        resp = await client.get(f"/static/{name}")
        assert resp.status == 200 and resp.headers["Content-Type"] == ctype
        assert await resp.read() == (STATIC / name).read_bytes()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        etag = resp.headers["ETag"]
        cached = await client.get(f"/static/{name}", headers={"If-None-Match": etag})
        assert cached.status == 304
        head = await client.head(f"/static/{name}")
        assert head.status == 200


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/index.html", "/static/..%2Fhttp%2Fapp.py",
                                  "/static/", "/static/APP.JS"])
async def test_only_the_named_files_are_served(path):
    async with client_for(_app()) as client:
        resp = await client.get(path)
        assert resp.status == 404
        doc = await resp.json()
        assert set(doc) == {"error", "detail", "seq"}  # the API's error shape


def test_the_files_need_nothing_from_outside_and_work_under_the_csp():
    html = (STATIC / "index.html").read_text()
    js = (STATIC / "app.js").read_text()
    css = (STATIC / "style.css").read_text()
    for text in (html, js, css):
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), "an external resource"
        assert "@import" not in text and "url(http" not in text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script (the CSP blocks it)"
    assert not re.search(r"\sstyle\s*=", html) and not re.search(r"\son[a-z]+\s*=", html), "inline style/handler"
    assert "innerHTML" not in js and "eval(" not in js  # names are set as text, never parsed
    # the token: typed in, kept in sessionStorage only, never in a URL or localStorage
    assert "sessionStorage.setItem" in js and "localStorage." not in js
    assert not re.search(r"token=|[?&]token", js)


def test_the_api_document_is_unchanged_by_the_page():
    paths = document()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_the_static_files_are_package_data():
    for name in dashboard.STATIC_TYPES:
        assert dashboard.asset(name).body == (STATIC / name).read_bytes()


# --- the browser --------------------------------------------------------------------------------------


def _chromium() -> str:
    path = os.environ.get("ROSTER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("the dashboard's browser tests need Chromium at /usr/bin/chromium "
                    "(Debian: apt-get install -y chromium; .ci/run installs it) or ROSTER_CHROMIUM=<path>")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium, one per module, with a fresh profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the dashboard's browser tests need Playwright's Python package: "
                    ".venv/bin/pip install -e '.[test]' (never `playwright install`: the system Chromium is used)")
    exe = _chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="roster-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=exe, headless=True,
                                                    args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            yield ctx
        finally:
            ctx.close()


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page()
    page.errors = []  # uncaught script errors: a test fails on any
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=PAGE_READY_MS)
    page.wait_for_selector("#conn[data-status=live]", timeout=PAGE_READY_MS)
    return page


def _shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _card_states(page: Any, container: str) -> dict[str, str]:
    return page.eval_on_selector_all(f"#{container} .card[data-node]",
                                     "cards => Object.fromEntries(cards.map(c => [c.dataset.node, c.dataset.state]))")


def _wait_history_seq(page: Any, seq: int) -> None:
    page.wait_for_selector(f"#history[data-seq='{seq}']", timeout=5_000)


ADMIN_RETRIES = 20
ADMIN_RETRY_S = 0.5


def _http(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, Any]:
    """One request; an admin POST answered 503 (no leader at this moment, e.g. while a loaded
    machine delays the quorum lease) is retried as a client would."""
    for _ in range(ADMIN_RETRIES if method != "GET" else 1):
        status, doc = _http_once(url, method, body, token)
        if status != 503:
            break
        time.sleep(ADMIN_RETRY_S)
    return status, doc


def _http_once(url: str, method: str, body: dict | None, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- the browser against a simulated cluster (no Ray): token, admin buttons, reconnect ----------------------


@pytest.fixture
def sim_live() -> Iterator[tuple[LiveServer, SimCluster]]:
    holder: dict[str, SimCluster] = {}

    def make():
        holder["cluster"] = SimCluster()
        return holder["cluster"].app()

    with LiveServer(make) as server:
        yield server, holder["cluster"]


@pytest.mark.slow
def test_admin_buttons_appear_only_with_the_token_and_errors_are_in_words(browser, sim_live):
    live, cluster = sim_live
    assert _http(live.url + "/v1/groups", "POST", {"name": "web", "preferred_owners": ["n3"]}, TOKEN)[0] == 200
    page = _open(browser, live.url + "/")
    try:
        page.wait_for_selector("#live-groups tr[data-group=web]")
        assert page.locator("[data-action]").count() == 0, "admin buttons without a token"

        page.fill("#token-input", "not-the-token")
        page.click("#token-use")
        page.click("#live-nodes [data-node=n2] [data-action=pause]")
        error = page.wait_for_selector(".msg-error", timeout=5_000).inner_text()
        assert "Pause n2 failed: the admin token was refused" in error and "HTTP 401" in error, error
        assert page.locator("#live-nodes [data-node=n2]").get_attribute("data-state") == "Online"
        _shot(page, "sim-01-wrong-token-error")

        page.click("#token-forget")
        assert page.locator("[data-action]").count() == 0
        page.fill("#token-input", TOKEN)
        page.click("#token-use")
        page.click("#live-nodes [data-node=n2] [data-action=pause]")
        page.wait_for_selector("#live-nodes [data-node=n2][data-state=Paused]", timeout=LIVE_CHANGE_MS)
        page.wait_for_selector("#live-nodes [data-node=n2] [data-action=resume]")

        owner = page.locator("#live-groups tr[data-group=web] td").nth(1).inner_text()
        target = next(n for n in ("n1", "n3", "n4", "n5") if n != owner)
        page.select_option("#live-groups select[data-group=web]", target)
        page.click("#live-groups tr[data-group=web] [data-action=move]")
        page.wait_for_selector(f".msg-ok:has-text('Move web to {target}')", timeout=5_000)
        live.in_loop(lambda: cluster.run(2_000))  # the simulated world runs on: the group stops, then starts
        page.wait_for_function(
            "t => document.querySelector('#live-groups tr[data-group=web] td:nth-of-type(2)').textContent === t",
            arg=target, timeout=LIVE_CHANGE_MS)
        _shot(page, "sim-02-admin-commands")

        # the token is kept in this tab only: never in the URL, never in localStorage
        assert TOKEN not in page.url
        assert page.evaluate("sessionStorage.getItem('roster.adminToken')") == TOKEN
        assert page.evaluate("localStorage.length") == 0
        assert not page.errors, page.errors
    finally:
        page.close()


WEB_GROUP = {"groups": {"web": {"preferred_owners": ["n2"], "resources": [
    {"name": "app", "type": "process", "params": {"argv": ["python3", "-m", "http.server"], "port": 8080}},
    {"name": "api", "type": "process", "params": {"argv": ["python3", "api.py"]}, "depends_on": ["app"]}]}}}


@pytest.mark.slow
def test_issue10_each_groups_resources_show_state_owner_restarts_and_last_failure_now_and_at_any_seq(browser, sim_live):
    live, cluster = sim_live
    assert _http(live.url + "/v1/apply", "POST", WEB_GROUP, TOKEN)[0] == 200
    live.in_loop(lambda: cluster.run(2_000))  # placed on n2; app, then api, start
    page = _open(browser, live.url + "/")
    try:
        app = "#live-groups tr[data-group=web] li[data-resource=app]"
        page.wait_for_selector(f"{app}[data-state=Online]", timeout=LIVE_CHANGE_MS)
        assert "app (process)" in page.inner_text(app) and "on n2" in page.inner_text(app)
        assert page.locator("#live-groups tr[data-group=web] li[data-resource=api][data-state=Online]").count() == 1
        assert live.in_loop(lambda: cluster.world.resources.kill("web", "app"))
        live.in_loop(lambda: cluster.run(2_000))  # restarted in place (attempt 1)
        page.wait_for_selector(f"{app} .last-failure", timeout=LIVE_CHANGE_MS)
        text = page.inner_text(app)
        assert "1 restart" in text and "killed" in text and "exit -9" in text, text
        _shot(page, "sim-05-resources")

        failed = next(r.seq for r in cluster.world.qdisk.records if r.event.type == "ResourceFailed")
        page.goto(f"{live.url}/?seq={failed}")
        page.wait_for_selector("body[data-ready=true]", timeout=PAGE_READY_MS)
        _wait_history_seq(page, failed)
        past = "#history-groups tr[data-group=web] li[data-resource=app]"
        assert page.get_attribute(past, "data-state") == "Failed"
        assert "resource web/app: Online on n2 \u2192 Failed" in page.inner_text("#history-changes")
        assert "failed on n2 (run): killed" in page.inner_text(f"#log tr[data-seq='{failed}']")
        _shot(page, "sim-06-resources-scrubbed-to-the-failure")
        assert not page.errors, page.errors
    finally:
        page.close()


@pytest.mark.slow
def test_the_page_reconnects_by_itself_after_the_stream_drops(browser, sim_live):
    live, cluster = sim_live
    page = _open(browser, live.url + "/")
    try:
        live.call(live.runner.cleanup())  # the node's HTTP server goes away: the stream drops
        page.wait_for_selector("#conn:not([data-status=live])", timeout=5_000)
        _shot(page, "sim-03-disconnected")
        live.runner, _ = live.call(serve(live.in_loop(cluster.app), "127.0.0.1", live.port))
        page.wait_for_selector("#conn[data-status=live]", timeout=15_000)
        assert _http(live.url + "/v1/nodes/n3/pause", "POST", token=TOKEN)[0] == 200
        page.wait_for_selector("#live-nodes [data-node=n3][data-state=Paused]", timeout=LIVE_CHANGE_MS)
        # nothing lost: the log in the page is the node's log
        seqs = page.eval_on_selector_all("#log tbody tr[data-seq]", "rows => rows.map(r => +r.dataset.seq)")
        assert seqs == list(range(1, cluster.feed.seq + 1))
        assert not page.errors, page.errors
    finally:
        page.close()


# --- the browser against a live `roster up` cluster -----------------------------------------------------


class Up:
    def __init__(self, proc: subprocess.Popen, data_dir: Path) -> None:
        self.proc, self.data_dir = proc, data_dir
        self.lines: list[str] = []
        self.urls: dict[str, str] = {}
        self.ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:  # read every line, so a chatty child never blocks on a full pipe
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.match(r"\s+(n\d+)\s+\S+\s+\S+\s+(http://\S+)", line)
            if m:
                self.urls[m.group(1)] = m.group(2)
            if "all 3 nodes Online" in line:
                self.ready.set()

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def up_cluster(tmp_path_factory) -> Iterator[Up]:
    """One `roster up --nodes 3` for the module (it costs ~1 GB and ~20 s)."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "roster.cli", "up", "--nodes", "3", "--data-dir", str(data_dir),
           "--http-port", str(UP_HTTP_PORT), "--heartbeat-ms", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    up = Up(proc, data_dir)
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not up.ready.wait(0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"roster up did not bring 3 nodes Online:\n{up.output()}")
        assert set(up.urls) == {"n1", "n2", "n3"}, up.output()
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=UP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def _membership_states(url: str, at: int | None = None) -> dict[str, str]:
    status, doc = _http(url + "/v1/membership" + (f"?at={at}" if at is not None else ""))
    assert status == 200, doc
    return {n["id"]: n["state"] for n in doc["nodes"]}


@pytest.mark.slow
@pytest.mark.ray
def test_every_node_serves_the_page_and_it_shows_every_node_online(browser, up_cluster):
    for node, url in sorted(up_cluster.urls.items()):
        with urllib.request.urlopen(url + "/", timeout=HTTP_TIMEOUT_S) as resp:
            assert resp.status == 200 and "default-src 'self'" in resp.headers["Content-Security-Policy"], node
    page = _open(browser, up_cluster.urls["n1"] + "/")
    try:
        page.wait_for_function(
            "() => ['n1','n2','n3'].every(n => document.querySelector(`#live-nodes [data-node=${n}]`)"
            "?.dataset.state === 'Online')", timeout=PAGE_READY_MS)
        assert _card_states(page, "live-nodes") == {"n1": "Online", "n2": "Online", "n3": "Online"}
        leader = page.inner_text("#leader")
        assert leader in up_cluster.urls
        assert page.locator(f"#live-nodes [data-node={leader}] .leader-tag").count() == 1
        assert page.locator("[data-action]").count() == 0  # read-only without the token
        _shot(page, "01-all-online")
        assert not page.errors, page.errors
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.ray
def test_a_pause_over_the_api_turns_the_card_paused_within_2s(browser, up_cluster):
    url = up_cluster.urls["n1"]
    page = _open(browser, url + "/")
    try:
        page.wait_for_selector("#live-nodes [data-node=n2][data-state=Online]", timeout=PAGE_READY_MS)
        status, reply = _http(up_cluster.urls["n3"] + "/v1/nodes/n2/pause", "POST", token=up_cluster.token)
        assert status == 200, reply
        committed = time.monotonic()
        page.wait_for_selector("#live-nodes [data-node=n2][data-state=Paused]", timeout=LIVE_CHANGE_MS)
        assert time.monotonic() - committed <= LIVE_CHANGE_MS / 1000 + 0.1
        assert page.inner_text("#live-nodes [data-node=n2] .badge").strip().endswith("Paused")  # words, not colour
        _shot(page, "02-n2-paused-over-the-api")

        # resume from the page itself, with the token typed in
        page.fill("#token-input", up_cluster.token)
        page.click("#token-use")
        page.click("#live-nodes [data-node=n2] [data-action=resume]")
        page.wait_for_selector("#live-nodes [data-node=n2][data-state=Online]", timeout=LIVE_CHANGE_MS)
        page.wait_for_selector(".msg-ok", timeout=LIVE_CHANGE_MS)
        _shot(page, "03-n2-resumed-from-the-page")
        assert up_cluster.token not in page.url
        assert not page.errors, page.errors
    finally:
        page.close()
        if _membership_states(url).get("n2") == "Paused":
            _http(url + "/v1/nodes/n2/resume", "POST", token=up_cluster.token)


@pytest.mark.slow
@pytest.mark.ray
def test_scrubbing_shows_the_cluster_as_membership_at_seq_does(browser, up_cluster):
    url = up_cluster.urls["n2"]
    status, page_doc = _http(url + "/v1/events?type=NodePaused&node=n2")
    if status != 200 or not page_doc["events"]:  # this test alone: make the history it scrubs through
        assert _http(url + "/v1/nodes/n2/pause", "POST", token=up_cluster.token)[0] == 200
        assert _http(url + "/v1/nodes/n2/resume", "POST", token=up_cluster.token)[0] == 200
        status, page_doc = _http(url + "/v1/events?type=NodePaused&node=n2")
    paused_seq = page_doc["events"][-1]["seq"]

    # a shared link to a seq opens the page there
    page = _open(browser, f"{url}/?seq={paused_seq}")
    try:
        _wait_history_seq(page, paused_seq)
        assert _card_states(page, "history-nodes") == _membership_states(url, paused_seq)
        assert page.get_attribute("#history-nodes [data-node=n2]", "data-state") == "Paused"
        assert page.get_attribute("#history-nodes [data-node=n2]", "data-changed") == "true"  # what this step changed
        assert "n2: Online \u2192 Paused" in page.inner_text("#history-changes")
        assert page.get_attribute(f"#log tr[data-seq='{paused_seq}']", "aria-current") == "true"
        _shot(page, "04-scrubbed-to-the-pause")

        page.click("#step-back")
        _wait_history_seq(page, paused_seq - 1)
        assert f"seq={paused_seq - 1}" in page.url  # the seq is in the URL: shareable
        assert _card_states(page, "history-nodes") == _membership_states(url, paused_seq - 1)
        assert page.get_attribute("#history-nodes [data-node=n2]", "data-state") == "Online"
        page.click("#step-forward")
        _wait_history_seq(page, paused_seq)

        # the slider, to an early seq: before everyone had joined
        status, joined = _http(url + "/v1/events?type=NodeJoined")
        early = joined["events"][0]["seq"]
        page.locator("#slider").fill(str(early))
        _wait_history_seq(page, early)
        assert _card_states(page, "history-nodes") == _membership_states(url, early)
        assert page.inner_text("#history-mode").startswith("viewing the past")
        _shot(page, "05-scrubbed-to-an-early-seq")

        # filter the log to one node and one type: stepping moves between the shown events
        page.select_option("#filter-type", "NodePaused")
        page.select_option("#filter-node", "n2")
        assert "type=NodePaused" in page.url and "node=n2" in page.url
        types = page.eval_on_selector_all("#log tbody tr", "rows => rows.map(r => r.dataset.type)")
        assert types and set(types) == {"NodePaused"}
        page.click("#step-forward")
        _wait_history_seq(page, page_doc["events"][0]["seq"])
        _shot(page, "06-filtered-log")

        page.click("#follow")  # back to now
        page.wait_for_selector("#history-mode[data-mode=live]")
        assert "seq=" not in page.url
        assert not page.errors, page.errors
    finally:
        page.close()
