// Roster dashboard: live membership from /v1/events/stream, and a time-travel scrubber over the
// event log (/v1/membership?at=SEQ). Plain JavaScript, no dependencies, no build step.
//
// Reads need no token. The admin token is typed into the page and kept in sessionStorage only
// (never in the URL, never in localStorage); admin buttons appear only once it is entered.
// Every DOM text is set with textContent (node and group names are never parsed as HTML).
"use strict";

(() => {
  const MAX_EVENTS = 20000;    // newest events kept in the page (the scrubber still reaches seq 1)
  const PAGE_EVENTS = 1000;    // /v1/events page size (the API's maximum)
  const MAX_ROWS = 400;        // log rows drawn at once, around the viewed seq
  const AT_CACHE = 256;        // membership views kept by seq (a seq's view never changes)
  const RETRY_MIN_MS = 1000;   // reconnect backoff when the stream is closed for good
  const RETRY_MAX_MS = 10000;
  const HB_POLL_MS = 2000;     // how often the leader's heartbeat view of each node is fetched
  const TOKEN_KEY = "roster.adminToken";
  const STATES = {
    Online: "\u25CF Online",    // ● filled: up and serving
    Paused: "\u2016 Paused",    // ‖ paused
    Joining: "\u25D4 Joining",  // ◔ on its way
    Offline: "\u2715 Offline",  // ✕ not a running member
  };

  const S = {
    live: null,          // membership at the head
    head: 0,             // newest seq this page knows
    events: [],          // envelopes, ascending and contiguous
    viewSeq: null,       // null: follow the newest event
    filterNode: "",
    filterType: "",
    atCache: new Map(),  // seq -> Promise<membership at seq>
    es: null,
    retryMs: RETRY_MIN_MS,
    token: "",
    types: new Set(),
    nodes: new Set(),
    lastMiss: new Map(), // node -> its newest HeartbeatMissed event
    leaderView: new Map(), // node -> the leader's view of its heartbeats (GET /v1/nodes/{id})
    hbBusy: false,
    liveBusy: false,
    liveDirty: false,
    historyTicket: 0,
    historyQueued: false,
    logQueued: false,
  };

  const $ = (id) => document.getElementById(id);

  // --- small helpers ---------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k.startsWith("data-")) el.setAttribute(k, String(v));
      else if (k in el) el[k] = v;
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  class ApiFailure extends Error {
    constructor(status, error, detail) {
      super(detail || error || `HTTP ${status}`);
      this.status = status;
      this.error = error;
      this.detail = detail;
    }
  }

  async function api(path, opts) {
    let resp;
    try {
      resp = await fetch(path, { cache: "no-store", ...(opts || {}) });
    } catch (e) {
      throw new ApiFailure(0, "unreachable", "could not reach this node (is it running?)");
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      throw new ApiFailure(resp.status, body && body.error, body && body.detail);
    }
    return body;
  }

  // An error in words: what happened, in a sentence, then the server's own detail.
  function words(e) {
    if (!(e instanceof ApiFailure)) return String(e && e.message ? e.message : e);
    const why = {
      0: "the node did not answer",
      401: "the admin token was refused",
      404: "it does not exist",
      409: "the cluster's current state does not allow it",
      413: "the request was too large",
      422: "the request was not valid",
      502: "the leader gave an answer that made no sense",
      503: "no leader could be reached",
      504: "this node's replica is behind",
    }[e.status] || "the node refused it";
    const detail = e.detail ? `: ${e.detail}` : "";
    const code = e.status ? ` (HTTP ${e.status}${e.error ? ", " + e.error : ""})` : "";
    return `${why}${detail}${code}.`;
  }

  function say(kind, text) {
    const box = $("messages");
    const close = h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss", text: "\u00D7" });
    const msg = h("div", { class: `msg msg-${kind}`, "data-kind": kind },
      h("span", { class: "msg-kind", text: kind === "error" ? "Error:" : kind === "ok" ? "Done:" : "Note:" }), " ",
      h("span", { class: "msg-text", text }), close);
    close.addEventListener("click", () => msg.remove());
    box.append(msg);
    while (box.children.length > 5) box.firstElementChild.remove();
    if (kind !== "error") setTimeout(() => msg.remove(), 8000);
  }

  function fmtTime(ts) {
    if (!ts) return "";
    return ts.replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace(/Z$|\+00:00$/, "");
  }

  function age(ts) {
    const t = Date.parse(ts);
    if (Number.isNaN(t)) return "";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 2) return "just now";
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  }

  function eventAt(seq) {
    if (!S.events.length) return null;
    const i = seq - S.events[0].seq;
    return i >= 0 && i < S.events.length ? S.events[i] : null;
  }

  function lastSeq() {
    return S.events.length ? S.events[S.events.length - 1].seq : 0;
  }

  // What an event says, in one line (the reason column).
  function reasonOf(e) {
    const d = e.data || {};
    const list = (xs) => (xs && xs.length ? xs.join(", ") : "none");
    switch (e.type) {
      case "ClusterCreated": return `cluster "${d.name}" created`;
      case "QuorumConfigured": return `quorum resource ${d.resource}, lease ${d.lease_ms} ms`;
      case "NodeAdded": return d.address ? `added (address ${d.address})` : "added to the member list";
      case "QuorumAcquired": return `took the quorum (epoch ${e.epoch})`;
      case "QuorumReleased": return "released the quorum";
      case "JoinRequested": return `asked ${d.sponsor} to join (replica at seq ${d.replica_seq})`;
      case "NodeAuthenticated": return `authenticated by ${d.sponsor}`;
      case "JoinRejected": return `rejected by ${d.sponsor}: ${d.reason}` + (d.suppressed ? ` (+${d.suppressed} more)` : "");
      case "ConfigDbSynced": return `${d.mode} sync from ${d.sponsor}, seq ${d.from_seq}\u2013${d.to_seq}`;
      case "NodeJoined": return `joined (incarnation ${d.incarnation})`;
      case "HeartbeatMissed": return `${d.count} heartbeat${d.count === 1 ? "" : "s"} missed in a row`;
      case "Regrouped": return `${d.reason}; online: ${list(d.online)}; down: ${list(d.down)}`;
      case "NodeDown": return d.reason;
      case "NodePaused": return d.drain ? "paused, groups drained" : "paused";
      case "NodeResumed": return "resumed";
      case "NodeExited": return "left the cluster (planned)";
      case "NodeEvicted": return `evicted: ${d.reason}`;
      case "GroupCreated": return `group ${d.group} created; preferred owners: ${list(d.preferred_owners)}` + (d.failback ? "; failback" : "");
      case "GroupMoved": return `group ${d.group}: ${d.from_node || "nobody"} \u2192 ${d.to_node || "nobody"} (${d.reason})`;
      case "GroupStateChanged": return `group ${d.group} ${d.state} (${d.reason})`;
      case "GroupDeleted": return `group ${d.group} deleted`;
      case "ResourceAdded": return `resource ${d.group}/${d.spec.name} (${d.spec.type}) added`;
      case "ResourceChanged": return `resource ${d.group}/${d.spec.name} changed`;
      case "ResourceRemoved": return `resource ${d.group}/${d.resource} removed`;
      case "GroupPolicyChanged": return `group ${d.group}: failover at most ${d.failover.threshold} per ${d.failover.period_ms} ms`;
      case "GroupOfflineRequested": return `group ${d.group}: taken offline by an admin`;
      case "GroupOnlineRequested": return `group ${d.group}: brought online by an admin`;
      case "ResourceRestartRequested": return `resource ${d.group}/${d.resource}: restart requested`;
      case "ResourceOnline": return `resource ${d.group}/${d.resource} Online on ${d.node} (attempt ${d.attempt})` + (d.endpoint ? ` at ${d.endpoint}` : "");
      case "ResourceFailed": return `resource ${d.group}/${d.resource} failed on ${d.node} (${d.phase}): ${d.reason}` +
        (d.exit_code === null || d.exit_code === undefined ? "" : `, exit ${d.exit_code}`) + (d.restarts_exhausted ? "; restarts exhausted, the group fails over" : "");
      case "ResourceRestarted": return `resource ${d.group}/${d.resource} restarting on ${d.node} (attempt ${d.attempt})`;
      case "ResourceOffline": return `resource ${d.group}/${d.resource} Offline on ${d.node} (${d.reason})`;
      case "SettingsChanged": return Object.entries(d.changes || {}).map(([k, v]) => `${k}=${v}`).join(", ");
      default:
        if (d.reason) return String(d.reason);
        return Object.entries(d).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    }
  }

  // The same test as the API's ?node= filter: the subject, a group moved from/to it, a regroup that downed it.
  function namesNode(e, node) {
    if (e.node === node) return true;
    const d = e.data || {};
    if (e.type === "GroupMoved") return d.from_node === node || d.to_node === node;
    if (e.type === "Regrouped") return (d.down || []).includes(node);
    return false;
  }

  function shown(e) {
    return (!S.filterType || e.type === S.filterType) && (!S.filterNode || namesNode(e, S.filterNode));
  }

  function stateBadge(state) {
    return h("span", { class: `badge badge-${state}`, "data-state": state, text: STATES[state] || state });
  }

  // --- the URL: ?seq=N&node=&type= (shareable; never the token) -------------------------------------------

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const seq = q.get("seq");
    S.viewSeq = seq && /^[0-9]{1,15}$/.test(seq) && Number(seq) >= 1 ? Number(seq) : null;
    S.filterNode = q.get("node") || "";
    S.filterType = q.get("type") || "";
  }

  function urlFor(seq) {
    const q = new URLSearchParams();
    if (seq !== null) q.set("seq", String(seq));
    if (S.filterNode) q.set("node", S.filterNode);
    if (S.filterType) q.set("type", S.filterType);
    const qs = q.toString();
    return location.pathname + (qs ? `?${qs}` : "");
  }

  function writeUrl() {
    const url = urlFor(S.viewSeq);
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  // --- admin token (sessionStorage only) ------------------------------------------------------------------

  function loadToken() {
    try {
      S.token = sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      S.token = "";
    }
  }

  function setToken(tok) {
    S.token = tok;
    for (const m of document.querySelectorAll(".msg-error")) m.remove();  // they were about the old token
    try {
      if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives in this page only */ }
    renderToken();
    renderLive();
  }

  function renderToken() {
    document.body.classList.toggle("admin", !!S.token);
    $("token-forget").hidden = !S.token;
    $("token-state").textContent = S.token ? "commands enabled (token kept in this tab only)" : "read-only";
    $("token-input").placeholder = S.token ? "token entered \u2713" : "paste to enable commands";
  }

  async function command(label, method, path, body, button) {
    if (!S.token) {
      say("error", `${label} failed: enter the admin token first.`);
      return;
    }
    const headers = { Authorization: `Bearer ${S.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (button) button.disabled = true;
    try {
      const r = await api(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      say("ok", `${label} (committed at seq ${r.seq}).`);
      refreshLive();
    } catch (e) {
      say("error", `${label} failed: ${words(e)}`);
      if (e instanceof ApiFailure && e.status === 401) $("token-input").focus();
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --- live view ----------------------------------------------------------------------------------------------

  async function refreshLive() {
    if (S.liveBusy) {
      S.liveDirty = true;
      return;
    }
    S.liveBusy = true;
    try {
      do {
        S.liveDirty = false;
        const doc = await api("/v1/membership");
        if (!S.live || doc.seq >= S.live.seq) {
          S.live = doc;
          S.head = Math.max(S.head, doc.seq);
          renderLive();
          if (S.viewSeq === null) queueHistory();
          renderScrubber();
        }
      } while (S.liveDirty);
    } catch (e) {
      say("error", `Could not read the membership: ${words(e)}`);
    } finally {
      S.liveBusy = false;
    }
  }

  function renderLive() {
    const doc = S.live;
    if (!doc) return;
    document.title = `Roster \u2013 ${doc.cluster || "cluster"}`;
    $("cluster-name").textContent = doc.cluster ? `\u00B7 ${doc.cluster}` : "";
    $("leader").textContent = doc.leader || "none";
    $("epoch").textContent = String(doc.epoch);
    $("head-seq").textContent = String(S.head);
    renderLiveSeq();
    for (const n of doc.nodes) S.nodes.add(n.id);
    refreshFilterOptions();

    const cards = $("live-nodes");
    cards.replaceChildren(...doc.nodes.map(liveCard));
    if (!doc.nodes.length) cards.append(h("p", { class: "muted", text: "No members yet." }));
    renderGroups($("live-groups"), doc, null, true);
    $("live-groups").hidden = !doc.groups.length;
    $("no-groups").hidden = doc.groups.length > 0;
  }

  // Heartbeats: the log records misses (HeartbeatMissed), not each beat; only the leader sees
  // every beat, so the age of the last one is the leader's view, fetched per node from
  // /v1/nodes/{id} (leader_view) every HB_POLL_MS and labelled as the leader's.
  function heartbeatCell(n) {
    const member = n.state === "Online" || n.state === "Paused";
    if (!member) return h("dd", { text: "\u2013" });
    const misses = n.misses
      ? h("span", { class: n.misses >= 2 ? "warn" : "", text: `${n.misses} missed in a row \u00B7 ` }) : null;
    return h("dd", { class: "heartbeat" }, misses, h("span", { class: "hb-age", "data-hb-node": n.id,
      text: leaderViewText(n.id) }));
  }

  function leaderViewText(id) {
    const v = S.leaderView.get(id);
    if (!v) return "last heartbeat: \u2026";
    if (v.last_heartbeat_age_ms === null || v.last_heartbeat_age_ms === undefined) {
      return v.leader === id ? "leader (sends no heartbeats)" : `last heartbeat unknown (${v.detail || "no leader view"})`;
    }
    return `last heartbeat ${(v.last_heartbeat_age_ms / 1000).toFixed(1)} s ago (${v.leader}'s view)`;
  }

  async function refreshHeartbeats() {
    if (S.hbBusy || !S.live || document.hidden) return;
    S.hbBusy = true;
    try {
      const ids = S.live.nodes.filter((n) => n.state === "Online" || n.state === "Paused").map((n) => n.id);
      const docs = await Promise.all(ids.map((id) => api(`/v1/nodes/${encodeURIComponent(id)}`).catch(() => null)));
      ids.forEach((id, i) => {
        if (docs[i] && docs[i].leader_view) S.leaderView.set(id, docs[i].leader_view);
        else S.leaderView.delete(id);
      });
      for (const el of document.querySelectorAll(".hb-age[data-hb-node]")) {
        el.textContent = leaderViewText(el.dataset.hbNode);
      }
    } finally {
      S.hbBusy = false;
    }
  }

  function liveCard(n) {
    const since = eventAt(n.since_seq);
    const card = h("article", {
      class: `card state-${n.state}${n.leader ? " is-leader" : ""}${n.misses ? " has-misses" : ""}`,
      "data-node": n.id, "data-state": n.state, "aria-label": `${n.id}: ${n.state}${n.leader ? ", leader" : ""}`,
    },
    h("header", {}, h("h3", { text: n.id }), stateBadge(n.state),
      n.leader ? h("span", { class: "tag leader-tag", text: "\u2605 leader" }) : null,
      n.evicted ? h("span", { class: "tag", text: "evicted" }) : null),
    h("dl", {},
      h("dt", { text: "Groups" }), h("dd", { class: "groups-owned", text: n.groups.length ? n.groups.join(", ") : "none" }),
      h("dt", { text: "Heartbeats" }), heartbeatCell(n),
      h("dt", { text: "In state" }), h("dd", {},
        `since seq ${n.since_seq}`,
        since ? h("span", { class: "age muted", "data-ts": since.ts, text: ` \u00B7 ${age(since.ts)}` }) : null),
      h("dt", { text: "Reason" }), h("dd", { text: n.reason || "\u2013" }),
      h("dt", { text: "Incarnation" }), h("dd", { text: String(n.incarnation) })));
    if (S.token) card.append(nodeActions(n));
    return card;
  }

  function nodeActions(n) {
    const box = h("div", { class: "actions" });
    const enc = encodeURIComponent(n.id);
    if (n.state === "Online") {
      box.append(
        h("button", { type: "button", class: "act-pause", "data-action": "pause", text: "Pause",
          onclick: (ev) => command(`Pause ${n.id}`, "POST", `/v1/nodes/${enc}/pause`, undefined, ev.currentTarget) }),
        h("button", { type: "button", class: "act-drain", "data-action": "drain", text: "Drain & pause",
          onclick: (ev) => command(`Drain and pause ${n.id}`, "POST", `/v1/nodes/${enc}/pause?drain=true`, undefined, ev.currentTarget) }));
    } else if (n.state === "Paused") {
      box.append(h("button", { type: "button", class: "act-resume", "data-action": "resume", text: "Resume",
        onclick: (ev) => command(`Resume ${n.id}`, "POST", `/v1/nodes/${enc}/resume`, undefined, ev.currentTarget) }));
    } else {
      box.append(h("span", { class: "muted small", text: "no commands while " + n.state }));
    }
    return box;
  }

  function renderGroups(table, doc, changed, live) {
    const tbody = table.tBodies[0];
    const keep = {};  // the move target a user picked survives a redraw
    for (const sel of tbody.querySelectorAll("select[data-group]")) keep[sel.dataset.group] = sel.value;
    const online = doc.nodes.filter((n) => n.state === "Online").map((n) => n.id);
    tbody.replaceChildren(...doc.groups.map((g) => {
      const isChanged = changed && changed.has(g.name);
      const row = h("tr", { class: isChanged ? "changed" : "", "data-group": g.name, "data-state": g.state },
        h("th", { scope: "row" }, g.name, isChanged ? h("span", { class: "tag changed-tag", text: "changed" }) : null),
        h("td", {}, h("span", { class: `gstate gstate-${g.state}`, text: g.state })),
        h("td", { text: g.owner || "nobody" }),
        h("td", { text: (g.preferred_owners || []).join(", ") || "any" }),
        h("td", { class: "resources" }, renderResources(g.resources || [])));
      if (live && S.token) {
        const targets = online.filter((id) => id !== g.owner);
        const sel = h("select", { "data-group": g.name, "aria-label": `Move ${g.name} to` },
          ...targets.map((id) => h("option", { value: id, text: id })));
        if (keep[g.name] && targets.includes(keep[g.name])) sel.value = keep[g.name];
        const btn = h("button", { type: "button", "data-action": "move", text: "Move", disabled: !targets.length,
          onclick: (ev) => command(`Move ${g.name} to ${sel.value}`, "POST", `/v1/groups/${encodeURIComponent(g.name)}/move`,
            { node: sel.value }, ev.currentTarget) });
        row.append(h("td", { class: "admin-only" }, targets.length ? [sel, " ", btn] : h("span", { class: "muted small", text: "no Online node to take it" })));
      } else if (live) {
        row.append(h("td", { class: "admin-only" }));
      }
      return row;
    }));
  }

  // A group's resources, one line each: name (type), state, where, restarts, the last failure.
  function renderResources(resources) {
    if (!resources.length) return h("span", { class: "muted small", text: "none" });
    return h("ul", { class: "resource-list" }, ...resources.map((r) => {
      const f = r.last_failure;
      const bits = [r.owner ? `on ${r.owner}` : null, r.restarts ? `${r.restarts} restart${r.restarts === 1 ? "" : "s"}` : null];
      return h("li", { "data-resource": r.name, "data-state": r.state },
        h("span", { class: "rname", text: `${r.name} (${r.type}) ` }),
        h("span", { class: `gstate gstate-${r.state}`, text: r.state }),
        h("span", { class: "small", text: bits.filter(Boolean).map((b) => ` \u00B7 ${b}`).join("") }),
        f ? h("div", { class: "small last-failure",
                       text: `last failure (seq ${f.seq}, ${f.node}, ${f.phase}): ${f.reason}` +
                             (f.exit_code === null ? "" : `, exit ${f.exit_code}`) }) : null);
    }));
  }

  function tickAges() {
    for (const el of document.querySelectorAll(".age[data-ts]")) el.textContent = ` \u00B7 ${age(el.dataset.ts)}`;
  }

  // --- the event stream ---------------------------------------------------------------------------------

  function setConn(status, text) {
    const el = $("conn");
    el.dataset.status = status;
    el.textContent = text;
    $("live").dataset.stale = String(status !== "live");
    renderLiveSeq();
  }

  function renderLiveSeq() {
    if (!S.live) return;
    const stale = $("live").dataset.stale === "true";
    $("live-seq").textContent = stale ? `(seq ${S.live.seq}, last known: not receiving updates)` : `(seq ${S.live.seq})`;
  }

  function connect() {
    if (S.es) S.es.close();
    const es = new EventSource(`/v1/events/stream?from=${lastSeq() + 1}`);
    S.es = es;
    setConn("connecting", "connecting\u2026");
    es.onopen = () => {
      S.retryMs = RETRY_MIN_MS;
      setConn("live", "\u25CF live");
      refreshLive();  // anything missed while away (the stream resumes the log itself)
    };
    es.onmessage = (m) => {
      let env;
      try {
        env = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      addEvent(env);
    };
    es.addEventListener("reset", () => {
      es.close();
      say("info", "This node's log was replaced by a different history; reloading the page.");
      setTimeout(() => location.reload(), 1500);
    });
    es.onerror = () => {
      if (S.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {  // the browser gave up (an error answer): retry ourselves
        es.close();
        const wait = S.retryMs;
        S.retryMs = Math.min(S.retryMs * 2, RETRY_MAX_MS);
        setConn("down", `\u2715 disconnected \u2013 retrying in ${Math.round(wait / 1000)} s`);
        setTimeout(() => { if (S.es === es) connect(); }, wait);
      } else {
        setConn("reconnecting", "\u25CC reconnecting\u2026");  // the browser retries (with Last-Event-ID)
      }
    };
  }

  function addEvent(env) {
    const last = lastSeq();
    if (S.events.length && env.seq <= last) return;  // already have it (a resumed stream)
    if (S.events.length && env.seq !== last + 1) {
      // a gap should not happen (the stream resumes by seq); start the page's log over from here
      S.events = [];
    }
    S.events.push(env);
    if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
    S.head = Math.max(S.head, env.seq);
    noteEvent(env);
    refreshLive();
    renderScrubber();
    if (S.viewSeq === null) queueHistory();
    queueLog();
  }

  function noteEvent(env) {
    let added = false;
    for (const n of [env.node, env.data && env.data.to_node]) {
      if (n && !S.nodes.has(n)) { S.nodes.add(n); added = true; }
    }
    if (env.type === "HeartbeatMissed" && env.node) S.lastMiss.set(env.node, env);
    if (!S.types.has(env.type)) { S.types.add(env.type); added = true; }
    if (added) refreshFilterOptions();
  }

  async function loadEvents() {
    let from = Math.max(1, S.head - MAX_EVENTS + 1);
    const out = [];
    for (;;) {
      const page = await api(`/v1/events?from=${from}&limit=${PAGE_EVENTS}`);
      out.push(...page.events);
      S.head = Math.max(S.head, page.seq);
      if (!page.more || !page.events.length) break;
      from = page.next;
    }
    S.events = out.slice(-MAX_EVENTS);
    for (const e of S.events) noteEvent(e);
  }

  async function loadTypes() {
    try {
      const doc = await api("/openapi.json");
      const types = doc.components.schemas.Envelope.properties.type.enum || [];
      for (const t of types) S.types.add(t);
      refreshFilterOptions();
    } catch (e) { /* the types seen in the log are enough */ }
  }

  async function loadServedBy() {
    try {
      const resp = await fetch("/healthz", { cache: "no-store" });
      const doc = await resp.json();  // a 503 (not healthy) still says who is serving
      $("served-by").textContent = `served by ${doc.node} (${doc.role}${doc.ok ? "" : ", not healthy: " + (doc.detail || "?")})`;
    } catch (e) {
      $("served-by").textContent = "";
    }
  }

  // --- filters ------------------------------------------------------------------------------------------------

  function fillSelect(sel, values, current, allLabel) {
    const want = ["", ...values];
    const have = [...sel.options].map((o) => o.value);
    if (want.join("\u0000") !== have.join("\u0000")) {
      sel.replaceChildren(...want.map((v) => h("option", { value: v, text: v || allLabel })));
    }
    if (current && !values.includes(current)) sel.append(h("option", { value: current, text: current }));
    sel.value = current;
  }

  function refreshFilterOptions() {
    fillSelect($("filter-node"), [...S.nodes].sort(), S.filterNode, "all nodes");
    fillSelect($("filter-type"), [...S.types].sort(), S.filterType, "all types");
  }

  // --- history: the scrubber and the cluster at a seq ---------------------------------------------------------

  function currentSeq() {
    return S.viewSeq === null ? S.head : Math.min(S.viewSeq, S.head);
  }

  function membershipAt(seq) {
    let p = S.atCache.get(seq);
    if (!p) {
      p = api(`/v1/membership?at=${seq}`);
      p.catch(() => S.atCache.delete(seq));
      S.atCache.set(seq, p);
      if (S.atCache.size > AT_CACHE) S.atCache.delete(S.atCache.keys().next().value);
    }
    return p;
  }

  function setView(seq) {
    if (seq === null) {
      S.viewSeq = null;
    } else {
      S.viewSeq = Math.max(1, Math.min(Math.round(seq), S.head || 1));
    }
    writeUrl();
    renderScrubber();
    queueHistory();
    queueLog();
  }

  function renderScrubber() {
    const slider = $("slider");
    const seq = currentSeq();
    slider.max = String(Math.max(1, S.head));
    slider.value = String(Math.max(1, seq));
    const input = $("seq-input");
    if (document.activeElement !== input) input.value = seq ? String(seq) : "";
    input.max = String(Math.max(1, S.head));
    $("head-seq").textContent = String(S.head);
    $("step-back").disabled = !(seq > 1) || neighbour(seq, -1) === null;
    $("step-forward").disabled = !(seq < S.head) || neighbour(seq, +1) === null;
    $("follow").disabled = S.viewSeq === null;
    $("follow").setAttribute("aria-pressed", String(S.viewSeq === null));
    $("permalink").href = urlFor(seq || null);
    $("permalink").textContent = `link to seq ${seq}`;
    const mode = $("history-mode");
    mode.dataset.mode = S.viewSeq === null ? "live" : "past";
    mode.textContent = S.viewSeq === null ? "following the newest event" : `viewing the past (${S.head - seq} events ago)`;
  }

  // The previous / next seq to step to: the neighbouring shown event when a filter is on, else seq ∓ 1.
  function neighbour(seq, dir) {
    if (!S.filterNode && !S.filterType) {
      const n = seq + dir;
      return n >= 1 && n <= S.head ? n : null;
    }
    if (dir < 0) {
      for (let i = S.events.length - 1; i >= 0; i--) if (S.events[i].seq < seq && shown(S.events[i])) return S.events[i].seq;
    } else {
      for (const e of S.events) if (e.seq > seq && shown(e)) return e.seq;
    }
    return null;
  }

  function queueHistory() {
    if (S.historyQueued) return;
    S.historyQueued = true;
    requestAnimationFrame(() => {
      S.historyQueued = false;
      renderHistory();
    });
  }

  async function renderHistory() {
    const seq = currentSeq();
    if (seq < 1) return;
    const ticket = ++S.historyTicket;
    let cur, prev;
    try {
      [cur, prev] = await Promise.all([membershipAt(seq), seq > 1 ? membershipAt(seq - 1) : Promise.resolve(null)]);
    } catch (e) {
      if (ticket === S.historyTicket) say("error", `Could not read the cluster at seq ${seq}: ${words(e)}`);
      return;
    }
    if (ticket !== S.historyTicket) return;  // a newer scrub won
    const changes = diff(prev, cur);
    $("history").dataset.seq = String(cur.seq);
    $("history-seq").textContent = String(cur.seq);
    $("history-time").textContent = cur.ts ? `(${fmtTime(cur.ts)} UTC)` : "";
    $("history-epoch").textContent = String(cur.epoch);
    $("history-leader").textContent = cur.leader || "none";

    const ev = eventAt(seq);
    const evLine = $("history-event");
    evLine.replaceChildren();
    if (ev) {
      evLine.append(h("span", { class: "muted", text: `Event ${ev.seq}: ` }), h("strong", { text: ev.type }),
        ev.node ? ` \u00B7 ${ev.node}` : "", ` \u00B7 ${reasonOf(ev)}`, h("span", { class: "muted", text: ` \u00B7 by ${ev.by}` }));
    }
    const list = $("history-changes");
    list.replaceChildren(...(changes.lines.length
      ? changes.lines.map((t) => h("li", { text: t }))
      : [h("li", { class: "muted", text: "No change to membership at this step (it changed the configuration or the log only)." })]));

    $("history-nodes").replaceChildren(...cur.nodes.map((n) => historyCard(n, changes.nodes.get(n.id))));
    renderGroups($("history-groups"), cur, changes.groups, false);
    $("history-groups").hidden = !cur.groups.length;
    $("history-no-groups").hidden = cur.groups.length > 0;
  }

  function historyCard(n, change) {
    return h("article", {
      class: `card state-${n.state}${n.leader ? " is-leader" : ""}${change ? " changed" : ""}`,
      "data-node": n.id, "data-state": n.state, "data-changed": change ? "true" : null,
    },
    h("header", {}, h("h3", { text: n.id }), stateBadge(n.state),
      n.leader ? h("span", { class: "tag leader-tag", text: "\u2605 leader" }) : null,
      change ? h("span", { class: "tag changed-tag", text: "changed" }) : null),
    change ? h("p", { class: "change-text", text: change }) : null,
    h("dl", {},
      h("dt", { text: "Groups" }), h("dd", { text: n.groups.length ? n.groups.join(", ") : "none" }),
      h("dt", { text: "Since" }), h("dd", { text: `seq ${n.since_seq}${n.reason ? " \u00B7 " + n.reason : ""}` }),
      n.misses ? h("dt", { text: "Heartbeats" }) : null,
      n.misses ? h("dd", { class: n.misses >= 2 ? "warn" : "", text: `${n.misses} missed in a row` }) : null));
  }

  // What changed from one membership view to the next: lines in words, and which cards/rows to mark.
  function diff(prev, cur) {
    const lines = [];
    const nodes = new Map();
    const groups = new Set();
    const mark = (id, text) => nodes.set(id, nodes.has(id) ? `${nodes.get(id)}; ${text}` : text);
    if (!prev) {
      for (const n of cur.nodes) mark(n.id, "new");
      for (const g of cur.groups) groups.add(g.name);
      if (cur.nodes.length || cur.groups.length) lines.push("The first event: everything is new.");
      return { lines, nodes, groups };
    }
    if (prev.epoch !== cur.epoch) lines.push(`epoch ${prev.epoch} \u2192 ${cur.epoch}`);
    if (prev.leader !== cur.leader) {
      lines.push(`leader ${prev.leader || "none"} \u2192 ${cur.leader || "none"}`);
      if (prev.leader) mark(prev.leader, "no longer leader");
      if (cur.leader) mark(cur.leader, "became leader");
    }
    const before = new Map(prev.nodes.map((n) => [n.id, n]));
    for (const n of cur.nodes) {
      const p = before.get(n.id);
      if (!p) {
        lines.push(`${n.id} added (${n.state})`);
        mark(n.id, "added");
        continue;
      }
      if (p.state !== n.state) {
        lines.push(`${n.id}: ${p.state} \u2192 ${n.state}${n.reason ? " (" + n.reason + ")" : ""}`);
        mark(n.id, `${p.state} \u2192 ${n.state}`);
      }
      if (p.evicted !== n.evicted) {
        lines.push(`${n.id} ${n.evicted ? "evicted" : "no longer evicted"}`);
        mark(n.id, n.evicted ? "evicted" : "re-added");
      }
      if (p.incarnation !== n.incarnation) {
        lines.push(`${n.id}: incarnation ${p.incarnation} \u2192 ${n.incarnation}`);
        mark(n.id, `incarnation ${n.incarnation}`);
      }
      if (p.misses !== n.misses) {
        lines.push(`${n.id}: missed heartbeats ${p.misses} \u2192 ${n.misses}`);
        mark(n.id, `missed heartbeats ${n.misses}`);
      }
      const gained = n.groups.filter((g) => !p.groups.includes(g));
      const lost = p.groups.filter((g) => !n.groups.includes(g));
      if (gained.length) mark(n.id, `took ${gained.join(", ")}`);
      if (lost.length) mark(n.id, `gave up ${lost.join(", ")}`);
    }
    for (const p of prev.nodes) {
      if (!cur.nodes.some((n) => n.id === p.id)) lines.push(`${p.id} removed`);
    }
    const gBefore = new Map(prev.groups.map((g) => [g.name, g]));
    for (const g of cur.groups) {
      const p = gBefore.get(g.name);
      if (!p) {
        lines.push(`group ${g.name} created (${g.state}, owner ${g.owner || "nobody"})`);
        groups.add(g.name);
        continue;
      }
      if (p.owner !== g.owner) {
        lines.push(`group ${g.name}: owner ${p.owner || "nobody"} \u2192 ${g.owner || "nobody"}`);
        groups.add(g.name);
      }
      if (p.state !== g.state) {
        lines.push(`group ${g.name}: ${p.state} \u2192 ${g.state}`);
        groups.add(g.name);
      }
      const rBefore = new Map((p.resources || []).map((r) => [r.name, r]));
      for (const r of g.resources || []) {
        const q = rBefore.get(r.name);
        if (!q) {
          lines.push(`resource ${g.name}/${r.name} added`);
        } else if (q.state !== r.state || q.owner !== r.owner) {
          lines.push(`resource ${g.name}/${r.name}: ${q.state}${q.owner ? " on " + q.owner : ""} \u2192 ${r.state}${r.owner ? " on " + r.owner : ""}`);
        } else if (q.restarts !== r.restarts || q.attempt !== r.attempt) {
          lines.push(`resource ${g.name}/${r.name}: attempt ${q.attempt} \u2192 ${r.attempt}`);
        } else {
          continue;
        }
        groups.add(g.name);
      }
      for (const q of p.resources || []) {
        if (!(g.resources || []).some((r) => r.name === q.name)) {
          lines.push(`resource ${g.name}/${q.name} removed`);
          groups.add(g.name);
        }
      }
    }
    for (const p of prev.groups) {
      if (!cur.groups.some((g) => g.name === p.name)) lines.push(`group ${p.name} deleted`);
    }
    return { lines, nodes, groups };
  }

  // --- the log table ------------------------------------------------------------------------------------------

  function queueLog() {
    if (S.logQueued) return;
    S.logQueued = true;
    requestAnimationFrame(() => {
      S.logQueued = false;
      renderLog();
    });
  }

  function renderLog() {
    const seq = currentSeq();
    const rows = S.events.filter(shown);
    let start = Math.max(0, rows.length - MAX_ROWS);
    if (S.viewSeq !== null) {
      let at = rows.findIndex((e) => e.seq >= seq);
      if (at < 0) at = rows.length;
      start = Math.max(0, Math.min(at - MAX_ROWS / 2, rows.length - MAX_ROWS));
    }
    const slice = rows.slice(start, start + MAX_ROWS);
    const tbody = $("log").tBodies[0];
    let selected = null;
    tbody.replaceChildren(...slice.map((e) => {
      const tr = h("tr", {
        "data-seq": e.seq, "data-type": e.type, tabIndex: 0,
        class: `ev-${e.type}${e.seq === seq ? " selected" : ""}${e.seq > seq ? " future" : ""}`,
        title: `Show the cluster at seq ${e.seq}`,
      },
      h("td", { class: "num", text: String(e.seq) }),
      h("td", { class: "time", text: fmtTime(e.ts) }),
      h("td", { class: "type", text: e.type }),
      h("td", { text: e.node || "\u2013" }),
      h("td", { class: "muted", text: e.by }),
      h("td", { class: "reason", text: reasonOf(e) }));
      if (e.seq === seq) {
        tr.setAttribute("aria-current", "true");
        selected = tr;
      }
      return tr;
    }));
    const hidden = rows.length - slice.length;
    const older = S.events.length && S.events[0].seq > 1 ? ` (events before seq ${S.events[0].seq} not loaded)` : "";
    $("log-count").textContent = `${rows.length} of ${S.events.length} events shown` +
      (hidden > 0 ? `, ${slice.length} drawn around seq ${seq}` : "") + older;
    const wrap = $("log-wrap");
    if (selected) {
      const top = selected.offsetTop - wrap.clientHeight / 2;
      wrap.scrollTop = Math.max(0, top);
    } else if (S.viewSeq === null) {
      wrap.scrollTop = wrap.scrollHeight;
    }
  }

  // --- wiring ------------------------------------------------------------------------------------------------

  function bind() {
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $("token-input");
      const tok = input.value.trim();
      input.value = "";
      if (!tok) {
        say("error", "Type the admin token first (it is in <data dir>/admin.token on the cluster's machine).");
        return;
      }
      setToken(tok);
      say("info", "Admin commands enabled. The token is kept in this browser tab only; a wrong token shows an error when a command is sent.");
    });
    $("token-forget").addEventListener("click", () => {
      setToken("");
      say("info", "Token forgotten; the page is read-only.");
    });
    const slider = $("slider");
    slider.addEventListener("input", () => setView(Number(slider.value)));
    $("step-back").addEventListener("click", () => {
      const n = neighbour(currentSeq(), -1);
      if (n !== null) setView(n);
    });
    $("step-forward").addEventListener("click", () => {
      const n = neighbour(currentSeq(), +1);
      if (n !== null) setView(n);
    });
    $("follow").addEventListener("click", () => setView(null));
    $("seq-input").addEventListener("change", (ev) => {
      const v = Number(ev.target.value);
      if (Number.isFinite(v) && v >= 1) setView(v);
    });
    $("filter-node").addEventListener("change", (ev) => {
      S.filterNode = ev.target.value;
      writeUrl();
      renderScrubber();
      queueLog();
    });
    $("filter-type").addEventListener("change", (ev) => {
      S.filterType = ev.target.value;
      writeUrl();
      renderScrubber();
      queueLog();
    });
    const log = $("log").tBodies[0];
    const pick = (ev) => {
      const tr = ev.target.closest("tr[data-seq]");
      if (tr) setView(Number(tr.dataset.seq));
    };
    log.addEventListener("click", pick);
    log.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        pick(ev);
      }
    });
    window.addEventListener("popstate", () => {
      readUrl();
      refreshFilterOptions();
      setView(S.viewSeq);
    });
  }

  async function start() {
    readUrl();
    loadToken();
    bind();
    renderToken();
    refreshFilterOptions();
    loadServedBy();
    loadTypes();
    for (;;) {
      try {
        S.live = await api("/v1/membership");
        S.head = S.live.seq;
        await loadEvents();
        break;
      } catch (e) {
        setConn("down", "\u2715 cannot read this node");
        say("error", `Could not load the cluster: ${words(e)} Retrying in 2 s.`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    if (S.viewSeq !== null && S.viewSeq > S.head) {
      say("info", `This node's log ends at seq ${S.head}; showing that instead of seq ${S.viewSeq}.`);
      S.viewSeq = S.head;
      writeUrl();
    }
    renderLive();
    renderScrubber();
    queueHistory();
    queueLog();
    connect();
    setInterval(tickAges, 1000);
    refreshHeartbeats();
    setInterval(refreshHeartbeats, HB_POLL_MS);
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
