"use strict";
// Everything a model wrote (goals, arguments, rationales, results, names)
// reaches the page only as text: el() appends strings as text nodes and
// sets attributes with setAttribute, never through an HTML parser. Control
// and bidi characters in it are shown escaped, as the CLI shows them.

// The token comes in the URL fragment (never sent to the server), then
// lives in this tab's session storage; it goes out only as a header.
(function takeToken() {
  const m = location.hash.match(/token=([0-9A-Za-z_-]+)/);
  if (m) { sessionStorage.setItem("libos-token", m[1]); history.replaceState(null, "", location.pathname); }
})();
const token = () => sessionStorage.getItem("libos-token") || "";
const $ = (id) => document.getElementById(id);
const shown = (s) => s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
  (c) => c === "\r" ? "\\r" : `\\u{${c.codePointAt(0).toString(16)}}`);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(shown(String(k ?? ""))));
  return e;
};

async function api(path, opts = {}) {
  const headers = { "content-type": "application/json" };
  if (token()) headers.authorization = "Bearer " + token();
  const r = await fetch(path, { ...opts, headers });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || `${r.status} ${r.statusText}`);
  return body;
}
const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });
/// A failure of loading: in the header, where the connection state is.
function report(e) { $("livetext").textContent = e.message; $("livetext").className = "status err"; }
/// Runs an action from `button`, showing its error in `where` (next to it).
async function act(button, where, f) {
  where.textContent = ""; button.disabled = true;
  try { await f(); } catch (e) { where.textContent = e.message; } finally { button.disabled = false; refreshButtons(); pageInfo(); }
}
const NO_TOKEN = "needs the token `libos serve` printed";
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
const time = (iso) => iso ? iso.slice(11, 19) : "";
/// At most `n` characters of `text`, saying how much more there is.
function clip(given, n = 64 * 1024) {
  const text = String(given ?? "");
  return text.length <= n ? text : `${text.slice(0, n)}\n[… ${text.length - n} more characters: see the arguments, exactly]`;
}

function showToken() {
  $("tokenstate").textContent = token() ? "token set" : "read-only: actions " + NO_TOKEN;
  $("tokeninput").hidden = $("tokensave").hidden = !!token();
  refreshButtons();
}
$("tokensave").onclick = () => { sessionStorage.setItem("libos-token", $("tokeninput").value.trim()); showToken(); };

// ---- processes ----
const procs = new Map();
const collapsed = new Set();
let selected = null;
const ENDED = ["exited", "failed", "killed"];
const ended = (p) => ENDED.includes(p.state);
function waitReason(on) {
  if (!on) return "";
  const [k, v] = Object.entries(on)[0];
  return k === "human" ? `approval ${v}` : k === "child" ? (v ? `child ${v}` : "any child") : k === "message" ? `message ${v}` : `timer ${v}`;
}
function stateText(p) {
  const d = p.state_detail || {};
  if (p.state === "waiting") return `waiting(${waitReason(d.on)})`;
  if (p.state === "paused" && d.was && d.was.state === "waiting") return `paused(${waitReason(d.was.detail.on)})`;
  if (p.state === "exited") return `exited(${d.code})`;
  if (p.state === "failed") return `failed(${d.kind})`;
  return p.state;
}
function kidsOf() {
  const kids = new Map();
  for (const p of procs.values()) {
    const k = p.ppid !== null && procs.has(p.ppid) ? p.ppid : 0;
    if (!kids.has(k)) kids.set(k, []);
    kids.get(k).push(p);
  }
  for (const list of kids.values()) list.sort((a, b) => a.pid - b.pid);
  return kids;
}
function renderTree() {
  // Failed and killed processes stay in view; exited ones on request.
  const all = $("showall").checked;
  const visible = (p) => all || p.state !== "exited";
  const kids = kidsOf();
  const node = (p) => {
    const children = (kids.get(p.pid) || []).map(node).filter(Boolean);
    if (!visible(p) && !children.length) return null;
    const shut = collapsed.has(p.pid);
    const twisty = el("button", { class: "twisty" + (children.length ? "" : " none"), "aria-expanded": String(!shut),
      title: shut ? "show children" : "hide children",
      onclick: (e) => { e.stopPropagation(); if (shut) collapsed.delete(p.pid); else collapsed.add(p.pid); renderTree(); } },
      shut ? "▸" : "▾");
    const row = el("div", { class: "proc" + (p.pid === selected ? " sel" : "") + (visible(p) ? "" : " context"),
      role: "treeitem", "data-pid": p.pid, "data-state": p.state, onclick: () => select(p.pid) },
      twisty, el("span", {}, String(p.pid)), el("span", { class: "state s-" + p.state }, stateText(p)),
      el("span", { class: "text" }, `${p.image} · ${p.usage.quanta} ${p.usage.quanta === 1 ? "quantum" : "quanta"}${shut ? ` · ${children.length} hidden` : ""} · ${p.goal}`));
    return el("div", { class: "node", "data-node": p.pid }, row, shut ? "" : el("div", { class: "kids", role: "group" }, ...children));
  };
  const roots = (kids.get(0) || []).map(node).filter(Boolean);
  $("tree").replaceChildren(...roots);
  if (!roots.length) $("tree").append(el("span", { class: "mute" }, "no processes"));
}
async function loadProcs() {
  const list = await api("/api/processes?all=true");
  procs.clear(); for (const p of list) procs.set(p.pid, p);
  renderTree();
}
$("showall").onchange = renderTree;

// ---- pending approvals and questions ----
function diffView(text) {
  return el("div", { class: "diff" }, ...text.split("\n").filter((l, i, a) => l || i < a.length - 1).map((l) => el("div", {
    class: l.startsWith("+++") || l.startsWith("---") ? "file" : l.startsWith("@@") ? "hunk" : l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "",
  }, l || " ")));
}
/// The call as it will act: a write as its diff (or its new content), a command as its command line.
function callView(r) {
  const p = r.preview; const args = JSON.stringify(r.args, null, 2);
  const exact = el("details", {}, el("summary", {}, "arguments, exactly"), el("pre", {}, args));
  if (p && p.kind === "write") {
    const what = p.current === "text" ? `replaces ${p.current_bytes} bytes of text with ${p.bytes} bytes` : `${p.bytes} bytes`;
    const out = [el("div", {}, `writes ${p.path}`, el("span", { class: "mute" }, ` · ${what}${p.note ? " · " + p.note : ""}`))];
    if (p.diff) out.push(el("div", { class: "label" }, "diff against the current file"), diffView(p.diff),
      el("details", {}, el("summary", {}, "the new content"), el("pre", { class: "content" }, clip(r.args.content))));
    else out.push(el("pre", { class: "content" }, clip(r.args.content)));
    return [...out, exact];
  }
  if (p && p.kind === "command") {
    return [el("div", { class: "label" }, "runs"), el("pre", { class: "cmd" }, "$ " + p.command_line), exact];
  }
  if (p && p.kind === "delete") {
    return [el("div", {}, `deletes ${p.path}`, el("span", { class: "mute" }, p.current_bytes !== null ? ` · ${p.current_bytes} bytes` : "", p.note ? " · " + p.note : "")), exact];
  }
  return [el("pre", {}, args)];
}
async function loadPending() {
  const list = await api("/api/requests");
  const box = $("pending"); box.replaceChildren();
  if (!list.length) { box.append(el("span", { class: "mute" }, "none")); return; }
  for (const r of list) {
    const error = el("span", { class: "action-error", role: "alert" });
    const age = el("span", { class: "age", "data-created": r.created_at }, " · asked " + ago(r.created_at));
    const card = el("div", { class: "card", "data-request": r.id, "data-pid": r.pid },
      el("div", { class: "what" }, `request ${r.id} · pid ${r.pid} (${r.image})`, age),
      el("div", { class: "mute" }, "goal: " + r.goal));
    const button = (cls, text, f) => el("button", { class: cls, "data-needs": "token", onclick: (e) => act(e.target, error, f) }, text);
    if (r.kind === "approval") {
      const always = el("input", { type: "checkbox" });
      const reason = el("input", { type: "text", size: 18, placeholder: "reason (optional)" });
      card.append(el("div", {}, `asks: ${r.right} ${r.resource}`),
        r.hints ? el("div", { class: "mute" }, `hints (${r.hints.note}): ${r.hints.summary}`) : "",
        r.rationale ? el("div", { class: "rationale" }, el("div", { class: "label" }, "the model says"), el("div", { class: "block" }, r.rationale))
          : el("div", { class: "label" }, "the model gave no rationale"),
        el("div", {}, `call: ${r.tool}`), ...callView(r),
        el("div", { class: "row" },
          button("approve", "approve", () => decide(r.id, "approve", { always: always.checked })),
          button("deny", "deny", () => decide(r.id, "deny", { always: always.checked, reason: reason.value.trim() || undefined })),
          el("label", { class: "mute" }, always, " always"), reason),
        error);
    } else {
      const answer = el("input", { type: "text", size: 30, placeholder: "answer" });
      card.append(el("div", {}, "asks: ", el("span", { class: "block" }, r.question)),
        el("div", { class: "row" }, answer, button("approve", "answer", () => decide(r.id, "answer", { text: answer.value }))),
        error);
    }
    box.append(card);
  }
  refreshButtons(); tickAges();
}
async function decide(id, verb, body) { await post(`/api/requests/${id}/${verb}`, body); await loadPending(); }
function tickAges() {
  for (const a of document.querySelectorAll(".age[data-created]")) {
    a.textContent = " · asked " + ago(a.dataset.created);
    a.classList.toggle("old", Date.now() - Date.parse(a.dataset.created) > 10 * 60 * 1000);
  }
}
setInterval(tickAges, 5000);

// ---- one process ----
function eventView(e) {
  switch (e.kind) {
    case "model_call":
      if (e.outcome === "rejected") return el("div", { class: "ev warn" }, `rejected (attempt ${e.attempt + 1}): ${e.error || ""}`);
      if (e.outcome === "error") return el("div", { class: "ev bad" }, `model error: ${e.error || ""}`);
      return e.rationale ? el("div", { class: "ev" }, el("span", { class: "label" }, "says "), el("span", { class: "block" }, e.rationale)) : "";
    case "tool_call":
      return el("div", { class: "ev" }, el("span", { class: "label" }, "call "), `${e.tool} `, el("code", {}, e.command_line !== undefined ? "$ " + e.command_line : JSON.stringify(e.args)),
        e.rationale ? el("div", { class: "block" }, e.rationale) : "");
    case "decision": {
      const cls = e.outcome === "denied" ? "ev bad" : ["error", "unknown", "rejected"].includes(e.outcome) ? "ev warn" : "ev";
      const grant = e.grant !== null ? ` (grant ${e.grant})` : "";
      // A call that needs no grant has no decision, only its outcome.
      return el("div", { class: cls, "data-outcome": e.outcome }, el("span", { class: "label" }, e.decision ? "decision " : "outcome "),
        e.decision ? `${e.decision}${grant} → ${e.outcome}` : e.outcome, e.detail ? el("span", { class: "mute" }, " · " + e.detail) : "");
    }
    case "record": {
      const cls = e.outcome === "denied" || ["fail", "kill"].includes(e.action) ? "ev bad" : "ev";
      return el("div", { class: cls }, el("span", { class: "label" }, `${time(e.at)} `), `${e.actor} ${e.action} → ${e.outcome}`,
        e.detail ? el("span", { class: "mute" }, " · " + e.detail) : "");
    }
    case "result":
      return el("div", { class: "ev" }, el("span", { class: "label" }, `result (${e.outcome})`),
        el("pre", {}, e.content + (e.truncated ? `\n[… ${e.bytes} bytes in all: GET /api/processes/${selected}/transcript]` : "")));
    case "wait": {
      const req = e.request ? ` (${e.request.status}, asked ${ago(e.request.created_at)})` : "";
      return el("div", { class: "ev wait" }, `waits for ${waitReason(e.on)}${req}${e.approved ? " · approved: runs at the next quantum" : ""}`);
    }
  }
  return "";
}
function quantumView(q) {
  const models = q.events.filter((e) => e.kind === "model_call");
  const m = models[models.length - 1];
  const head = q.quantum === null ? "before the first quantum"
    : `quantum ${q.quantum}` + (m ? ` · ${time(m.at)} · ${m.model || "?"} · ${Math.round(m.latency_ms)} ms · tokens ${m.tokens_estimated ? "~" : ""}${m.tokens_in}/${m.tokens_out}` : "");
  const parked = q.events.some((e) => e.kind === "wait");
  return el("div", { class: "quantum" + (parked ? " parked" : ""), "data-quantum": q.quantum ?? "" },
    el("div", { class: "qhead" }, head), ...q.events.map(eventView));
}
function capsView(grants) {
  if (!grants.length) return el("span", { class: "mute" }, "no grants");
  return el("table", { class: "caps" },
    el("thead", {}, el("tr", {}, ...["grant", "rights", "resource", "effect", "uses", "status"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...grants.map((g) => el("tr", { class: "g-" + g.status.replace(" ", "-") },
      el("td", {}, g.id), el("td", {}, g.rights), el("td", {}, g.resource + (g.delegable ? " (delegable)" : "")),
      el("td", {}, g.effect), el("td", {}, g.uses_left ?? "-"), el("td", {}, g.status)))));
}
function memoryView(view) {
  if (!view.length) return el("span", { class: "mute" }, "empty");
  return el("div", {}, ...view.map((h) => {
    const body = el("pre", {}, "…");
    const d = el("details", { ontoggle: () => { if (d.open) api(`/api/memory/${h.oid}`).then((o) => body.replaceChildren(shown(o.content))).catch((e) => body.replaceChildren(e.message)); } },
      el("summary", {}, `${h.oid} ${h.namespace}/${h.name} · ${h.kind} v${h.version} · ${h.bytes} bytes · ${h.rights}${h.pinned ? " · pinned" : ""}`), body);
    return d;
  }));
}
function childrenView(pids) {
  if (!pids.length) return el("span", { class: "mute" }, "none");
  return el("div", {}, ...pids.map((c) => {
    const p = procs.get(c);
    return el("div", { class: "proc child", "data-pid": c, onclick: () => select(c) }, el("span", {}, String(c)),
      p ? el("span", { class: "state s-" + p.state }, stateText(p)) : "", el("span", { class: "text" }, p ? `${p.image} · ${p.goal}` : ""));
  }));
}
let view = null;
async function select(pid) {
  if (selected !== pid) { $("procerr").textContent = ""; $("killconfirm").hidden = true; }
  selected = pid; renderTree(); $("procview").hidden = false;
  try {
    const [one, t, caps, memory, inbox] = await Promise.all([api(`/api/processes/${pid}`), api(`/api/processes/${pid}/timeline`),
      api(`/api/processes/${pid}/caps`), api(`/api/processes/${pid}/memory`), api(`/api/processes/${pid}/inbox`)]);
    if (selected !== pid) return;
    const p = t.process; procs.set(pid, p); view = { ...p, children: one.children };
    const d = p.state_detail || {};
    $("proctitle").textContent = `pid ${p.pid} · ${p.image} · ${stateText(p)}`;
    const left = Object.entries(p.budget_left || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    $("procinfo").replaceChildren(el("div", {}, "goal: ", el("span", { class: "block" }, p.goal)),
      el("div", { class: "mute" }, `parent ${p.ppid ?? "none"} · priority ${p.priority} · quanta ${p.usage.quanta} · tool calls ${p.usage.tool_calls} · tokens ${p.usage.tokens_estimated ? "~" : ""}${p.usage.tokens_in}/${p.usage.tokens_out} · cost $${p.usage.cost_usd}`),
      left ? el("div", { class: "mute" }, `budget left: ${left}`) : "",
      el("div", { class: "mute" }, `workspace ${p.workspace}`),
      d.result !== undefined ? el("div", {}, "result: ", el("span", { class: "block" }, d.result)) : "",
      d.error !== undefined ? el("div", { class: "err" }, `failed (${d.kind}): `, d.error) : "",
      d.reason !== undefined ? el("div", { class: "err" }, `killed by ${d.by}: `, d.reason) : "");
    $("caps").replaceChildren(capsView(caps));
    $("children").replaceChildren(childrenView(one.children));
    $("memory").replaceChildren(memoryView(memory));
    const tl = $("timeline");
    tl.replaceChildren(...(t.total > t.quanta.length ? [el("div", { class: "mute" }, `the last ${t.quanta.length} of ${t.total} quanta`)] : []), ...t.quanta.map(quantumView));
    if (!t.quanta.length) tl.append(el("span", { class: "mute" }, "no quanta yet"));
    const ib = $("inbox"); ib.replaceChildren();
    for (const m of inbox) ib.append(el("div", {}, `${m.id} from ${m.from}${m.kind === "interrupt" ? " (interrupt)" : ""}${m.read_at ? "" : " (unread)"}: `, el("span", { class: "block" }, m.body)));
    if (!inbox.length) ib.append(el("span", { class: "mute" }, "empty"));
  } catch (e) { $("procerr").textContent = e.message; }
  refreshButtons();
}
let reselect = null;
const selectSoon = () => { clearTimeout(reselect); reselect = setTimeout(() => selected !== null && select(selected), 100); };

/// Buttons that cannot act are disabled, saying why.
function refreshButtons() {
  const t = !!token();
  for (const b of document.querySelectorAll("[data-needs=token]")) { b.disabled = !t; b.title = t ? "" : "read-only: " + NO_TOKEN; }
  const p = view;
  const why = !t ? "read-only: " + NO_TOKEN : !p ? "no process selected" : ended(p) ? `process ${p.pid} has ${p.state}` : "";
  const set = (id, off, reason) => { $(id).disabled = !!(why || off); $(id).title = why || (off ? reason : ""); };
  set("pause", p && p.state === "paused", "it is paused already");
  set("resume", p && p.state !== "paused", "it is not paused");
  set("kill", false); set("msgsend", false); set("killconfirmbtn", false);
  $("msgtext").disabled = !!why;
}
const descendants = (pid) => { const kids = kidsOf(); const out = []; const walk = (p) => { for (const c of kids.get(p) || []) { if (!ended(c)) out.push(c.pid); walk(c.pid); } }; walk(pid); return out; };
$("pause").onclick = (e) => act(e.target, $("procerr"), async () => { await post(`/api/processes/${selected}/pause`); await select(selected); });
$("resume").onclick = (e) => act(e.target, $("procerr"), async () => { await post(`/api/processes/${selected}/resume`); await select(selected); });
$("kill").onclick = () => {
  const p = view; const below = descendants(p.pid);
  $("killwhat").textContent = shown(`Kill pid ${p.pid} (${p.image})? A quantum in flight is cancelled and never committed, and its open requests are cancelled.`);
  $("killtreelabel").hidden = !below.length; $("killtree").checked = false;
  $("killtreetext").textContent = `and its ${below.length} live descendant${below.length === 1 ? "" : "s"} (${below.join(", ")}); otherwise they are detached and keep running`;
  $("killconfirm").hidden = false; $("procerr").textContent = "";
};
$("killcancel").onclick = () => { $("killconfirm").hidden = true; };
$("killconfirmbtn").onclick = (e) => act(e.target, $("procerr"), async () => {
  const reason = $("killreason").value.trim();
  await post(`/api/processes/${selected}/kill`, { tree: $("killtree").checked, reason: reason || undefined });
  $("killconfirm").hidden = true; $("killreason").value = ""; await select(selected);
});
$("msgsend").onclick = (e) => act(e.target, $("procerr"), async () => {
  await post(`/api/processes/${selected}/messages`, { text: $("msgtext").value, interrupt: $("msginterrupt").checked });
  $("msgtext").value = ""; await select(selected);
});

// ---- the audit log, a page at a time (newest first) ----
const PAGE = 50;
let pages = [];            // the `before` of each page shown so far; [] = the newest page
let hasOlder = false;
const filters = () => ({ pid: $("f-pid").value.trim(), tool: $("f-tool").value.trim(), outcome: $("f-outcome").value });
function matches(r, f) {
  return (!f.pid || String(r.pid) === f.pid) && (!f.tool || r.action === f.tool) && (!f.outcome || r.outcome === f.outcome);
}
function auditRow(r) {
  const bad = r.kind === "state" && ["fail", "kill"].includes(r.action);
  return el("tr", { "data-seq": r.seq, "data-outcome": r.outcome, class: `o-${r.outcome}${bad ? " s-bad" : ""}` },
    el("td", {}, r.seq), el("td", { title: r.at }, time(r.at)), el("td", {}, r.actor),
    el("td", {}, r.action), el("td", {}, r.pid ?? ""), el("td", {}, r.decision ?? ""), el("td", { class: "outcome" }, r.outcome),
    el("td", { class: "detail", title: r.detail ? shown(r.detail) : undefined }, r.detail || ""));
}
async function loadAudit() {
  const q = new URLSearchParams({ limit: String(PAGE + 1) });
  for (const [k, v] of Object.entries(filters())) if (v) q.set(k, v);
  const before = pages[pages.length - 1];
  if (before !== undefined) q.set("before", before);
  const list = (await api("/api/audit?" + q)).reverse();
  hasOlder = list.length > PAGE;
  $("audit").replaceChildren(...list.slice(0, PAGE).map(auditRow));
  pageInfo();
}
function pageInfo() {
  const rows = $("audit").children;
  $("pnewer").disabled = $("pnewest").disabled = !pages.length; $("polder").disabled = !hasOlder;
  $("pageinfo").textContent = rows.length ? `page ${pages.length + 1} · seq ${rows[0].dataset.seq} to ${rows[rows.length - 1].dataset.seq}${pages.length ? "" : " · live"}` : "no records";
}
const pageTo = (f) => (e) => act(e.target, $("auditerr"), async () => { f(); await loadAudit(); });
$("f-apply").onclick = pageTo(() => { pages = []; });
$("pnewest").onclick = pageTo(() => { pages = []; });
$("pnewer").onclick = pageTo(() => { pages.pop(); });
$("polder").onclick = pageTo(() => { const rows = $("audit").children; pages.push(rows[rows.length - 1].dataset.seq); });
$("verifybtn").onclick = (e) => act(e.target, $("auditerr"), async () => {
  const v = await api("/api/audit/verify");
  $("verify").textContent = v.ok ? `intact: ${v.records} records, head ${v.head.slice(0, 16)}…${v.unsealed ? `, ${v.unsealed} waiting for sealing` : ""}` : `BROKEN at ${v.first_bad_seq}: ${v.problem}`;
  $("verify").className = v.ok ? "ok" : "bad";
});
function liveAudit(r) {
  // Live records join the newest page only; older pages stay as they were read.
  if (pages.length || !matches(r, filters())) return;
  const body = $("audit"); body.prepend(auditRow(r));
  while (body.children.length > PAGE) { body.lastElementChild.remove(); hasOlder = true; }
  pageInfo();
}

// ---- live events: fetch streaming, so the token can go in a header ----
let lastId = null;
async function follow() {
  for (;;) {
    try {
      const headers = {}; if (token()) headers.authorization = "Bearer " + token();
      if (lastId !== null) headers["last-event-id"] = lastId;
      const r = await fetch("/api/events", { headers });
      if (!r.ok) throw new Error("event stream: " + r.status);
      $("live").classList.add("on"); $("livetext").textContent = "live"; $("livetext").className = "status";
      const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read(); if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) { handle(buf.slice(0, i)); buf = buf.slice(i + 2); }
      }
    } catch (e) { /* reconnect below */ }
    $("live").classList.remove("on"); $("livetext").textContent = "reconnecting";
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}
let pendingDirty = false;
function handle(block) {
  let event = "message", data = "", id = null;
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (id !== null) lastId = id;
  if (!data) return;
  const v = JSON.parse(data);
  if (event === "process") { procs.set(v.pid, v); renderTree(); if (v.pid === selected) selectSoon(); }
  else if (event === "approval") { if (!pendingDirty) { pendingDirty = true; setTimeout(() => { pendingDirty = false; loadPending().catch(report); }, 50); } }
  else if (event === "audit") {
    $("head").textContent = `audit #${v.seq}`;
    liveAudit(v);
    if (v.pid === selected) selectSoon();
  }
}

showToken();
// Take the head first, so the stream resumes exactly after what was loaded.
api("/api/audit/head")
  .then((h) => { lastId = String(h.seq); $("head").textContent = `audit #${h.seq}`; })
  .then(() => Promise.all([loadProcs(), loadPending(), loadAudit()]))
  .catch(report)
  .finally(follow);
