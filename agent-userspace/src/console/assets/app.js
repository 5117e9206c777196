// Cordon console. Plain DOM code: every value from the daemon is set as
// text (never parsed as HTML), every change is a POST carrying the
// session's CSRF token in a header, and nothing is fetched from anywhere
// but this console.
"use strict";

let csrf = null;
let feed = null;
const MAX_ROWS = 500;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.classList.add("shown");
  setTimeout(() => t.classList.remove("shown"), 2500);
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json", "x-cordon-csrf": csrf || "" },
    body: JSON.stringify(body),
  };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { showLogin(data); throw new Error(data.error || "not logged in"); }
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

function confirmThen(text, action) {
  const d = $("confirm");
  $("confirm-text").textContent = text;
  d.returnValue = "";
  d.onclose = () => { if (d.returnValue === "ok") action(); };
  d.showModal();
}

async function act(path, body, done) {
  try { await api(path, body); toast(done); } catch (e) { toast(e.message); }
  refresh();
}

// ---- login ----
// Behind a reverse proxy there is no login form: the proxy authenticates,
// and a refusal here means it did not name the user.
function showLogin(why) {
  csrf = null;
  if (feed) { feed.close(); feed = null; }
  const proxied = why && why.login === "proxy";
  $("login-form").hidden = proxied;
  $("login-error").textContent = proxied ? (why.error || "") : "";
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
}

async function start() {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
    });
    const data = await r.json().catch(() => ({}));
    $("token").value = "";
    if (!r.ok) { $("login-error").textContent = data.error || "login failed"; return; }
    loggedIn(data.csrf, data.login);
  });
  $("logout").addEventListener("click", async () => {
    await api("/api/logout", {}).catch(() => {});
    showLogin();
  });
  $("audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); openFeed(); });
  $("policy-at").addEventListener("submit", (ev) => { ev.preventDefault(); loadPolicy(); });
  $("suggest-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadSuggest(); });
  window.addEventListener("hashchange", route);
  const r = await fetch("/api/session");
  const s = await r.json().catch(() => ({}));
  if (r.ok) loggedIn(s.csrf, s.login); else showLogin(s);
}

function loggedIn(token, login) {
  csrf = token;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = login === "proxy";
  route();
  setInterval(refresh, 2000);
}

// ---- views ----
function current() { return (location.hash || "#audit").slice(1); }

function route() {
  if (!csrf) return;
  const name = current();
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === name);
  if (name === "audit") { if (!feed) openFeed(); } else if (feed) { feed.close(); feed = null; }
  if (name === "policy") loadPolicy();
  refresh();
}

function refresh() {
  if (!csrf) return;
  const name = current();
  loadApprovalCount();
  if (name === "agents") loadAgents();
  else if (name === "approvals") loadApprovals();
  else if (name === "grants") loadGrants();
  else if (name === "vault") loadVault();
}

function decisionCell(rec) {
  const d = rec.decision || "";
  const text = rec.would ? d + " (would " + rec.would + ")" : d;
  return el("td", { class: d }, text);
}

function auditRow(r) {
  const detail = [r.reason, r.approver ? "by " + r.approver : null, r.status ? "→ " + r.status : null,
    Object.keys(r.params || {}).length ? JSON.stringify(r.params) : null].filter(Boolean).join(" · ");
  return el("tr", { "data-seq": r.seq, "data-action": r.action || "" },
    el("td", {}, r.seq), el("td", {}, (r.ts || "").replace("T", " ").slice(0, 23)),
    el("td", {}, r.agent || ""), el("td", {}, r.kind), el("td", {}, r.action || ""),
    decisionCell(r), el("td", {}, r.rule || ""), el("td", { class: "detail" }, detail));
}

function openFeed() {
  if (feed) feed.close();
  const rows = $("audit-rows");
  rows.replaceChildren();
  const q = new URLSearchParams(new FormData($("audit-filter"))).toString();
  $("audit-state").textContent = "connecting…";
  feed = new EventSource("/api/audit/stream?" + q);
  let backlog = [];
  let live = false;
  feed.onmessage = (ev) => {
    const r = JSON.parse(ev.data);
    if (!live) { backlog.push(r); return; }
    rows.prepend(auditRow(r));
    while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
  };
  // The backlog is drawn in one go, newest first, then marked painted.
  feed.addEventListener("ready", (ev) => {
    live = true;
    const info = JSON.parse(ev.data || "{}");
    // Fewer matches than the view opens with, and the search stopped short
    // of the trail's start: say how far back it looked.
    const partial = backlog.length < 200 && info.searched_from > 1;
    const frag = document.createDocumentFragment();
    for (let i = backlog.length - 1; i >= 0; i--) frag.append(auditRow(backlog[i]));
    rows.append(frag);
    backlog = [];
    $("audit-state").textContent = partial
      ? "live (history searched back to #" + info.searched_from + "; older: cordon audit export)"
      : "live";
    requestAnimationFrame(() => performance.mark("cordon-audit-painted"));
  });
  feed.onerror = () => { $("audit-state").textContent = "reconnecting…"; };
}

async function loadAgents() {
  const rows = await api("/api/agents").catch((e) => { toast(e.message); return []; });
  $("agent-rows").replaceChildren(...rows.map((a) => {
    const target = a.agent + "/" + a.instance;
    const buttons = el("td", { class: "answers" });
    if (a.state === "running") {
      buttons.append(el("button", { class: "danger", "data-op": "kill", onclick: () =>
        confirmThen("Kill " + target + "? Its processes are frozen and its connections cut.",
          () => act("/api/kill", { target, reason: "killed in the console" }, "killed " + target)) }, "Kill"));
    } else {
      buttons.append(el("button", { "data-op": "resume", onclick: () =>
        confirmThen("Resume " + target + "?", () => act("/api/resume", { target }, "resumed " + target)) }, "Resume"));
    }
    buttons.append(el("button", { class: "danger", "data-op": "terminate", onclick: () =>
      confirmThen("Terminate " + target + "? Every process of it is ended.",
        () => act("/api/terminate", { target }, "terminated " + target)) }, "Terminate"));
    return el("tr", { "data-target": target },
      el("td", {}, a.agent), el("td", {}, a.instance),
      el("td", {}, el("span", { class: "mode-" + a.mode }, a.mode.toUpperCase())),
      el("td", { class: "state state-" + a.state }, a.state), el("td", {}, (a.pids || []).join(" ")),
      el("td", {}, a.allowed), el("td", {}, a.denied), el("td", {}, a.uptime_s + " s"), buttons);
  }));
}

async function loadApprovalCount() {
  const list = await api("/api/approvals").catch(() => null);
  if (list) $("pending-count").textContent = list.length ? "(" + list.length + ")" : "";
}

// Redrawn only when the set of approvals changes, so a duration being
// typed is not wiped by the next refresh.
let shownApprovals = null;

async function loadApprovals() {
  const list = await api("/api/approvals").catch((e) => { toast(e.message); return []; });
  $("no-approvals").hidden = list.length > 0;
  const ids = list.map((p) => p.id).join(",");
  if (ids === shownApprovals) {
    for (const p of list) {
      const held = document.querySelector('.card[data-id="' + p.id + '"] .held');
      if (held) held.textContent = heldText(p);
    }
    return;
  }
  shownApprovals = ids;
  $("approval-list").replaceChildren(...list.map(approvalCard));
}

function heldText(p) {
  return "held " + p.held_secs + " s; answer within " + p.answer_within_secs + " s";
}

// The four answers of `cordon approve`: once, N uses, for a duration, always.
function approvalCard(p) {
  const uses = el("input", { type: "number", min: "2", max: "1000", value: "3", class: "uses" });
  const minutes = el("input", { type: "number", min: "1", max: "1440", value: "10", class: "minutes" });
  const what = p.action + " by " + p.chain;
  const answer = (label, body, question) => el("button", {
    class: "primary", "data-answer": body.answer,
    onclick: () => {
      const b = Object.assign({ id: p.id }, body);
      if (b.answer === "uses") b.n = Math.round(Number(uses.value));
      if (b.answer === "for") b.secs = Math.round(Number(minutes.value) * 60);
      confirmThen(question(), () => act("/api/approve", b, "approved: " + label));
    } }, label);
  return el("div", { class: "card", "data-id": p.id },
    el("h3", {}, p.chain + " wants " + p.action),
    el("div", {}, "rule ", el("code", {}, p.rule), " (" + (p.decided_by || p.chain) + "'s policy) — " + (p.reason || "")),
    el("div", {}, "credential injected: ", el("code", {}, p.credential || "none")),
    el("pre", {}, JSON.stringify(p.params, null, 2)),
    el("div", { class: "muted held" }, heldText(p)),
    el("div", { class: "answers" },
      answer("Once", { answer: "once" }, () => "Approve this " + what + " once?"),
      answer("Uses", { answer: "uses" }, () => "Approve, and allow " + uses.value + " uses in all of " + what + "?"), uses,
      answer("For", { answer: "for" }, () => "Approve, and allow " + what + " for " + minutes.value + " min?"), minutes, el("span", {}, "min"),
      answer("Always", { answer: "always" }, () => "Approve, and write a rule allowing " + what + " from now on into the policy directory?"),
      el("button", { class: "danger", "data-answer": "deny", onclick: () =>
        confirmThen("Deny this " + what + "?", () => act("/api/deny", { id: p.id }, "denied")) }, "Deny")));
}

async function loadGrants() {
  const list = await api("/api/grants").catch((e) => { toast(e.message); return []; });
  $("grant-rows").replaceChildren(...list.map((g) => {
    const left = g.uses == null ? "" : g.uses_left + " of " + g.uses;
    return el("tr", { "data-grant": g.id },
      el("td", {}, g.id), el("td", {}, g.chain.join("/")), el("td", {}, g.action),
      el("td", {}, left), el("td", {}, g.until || ""), el("td", {}, g.granted_by),
      el("td", {}, el("button", { class: "danger", "data-op": "revoke", onclick: () =>
        confirmThen("Revoke grant " + g.id + " (" + g.action + " by " + g.chain.join("/") + ")?",
          () => act("/api/grants/revoke", { id: g.id }, "revoked " + g.id)) }, "Revoke")));
  }));
}

async function loadPolicy() {
  const at = new FormData($("policy-at")).get("at") || "";
  let p;
  try { p = await api("/api/policy?at=" + encodeURIComponent(at)); } catch (e) { toast(e.message); return; }
  const s = $("policy-summary");
  s.replaceChildren(el("dt", {}, "version"), el("dd", { id: "policy-version" }, p.version),
    el("dt", {}, "directory"), el("dd", {}, p.directory),
    el("dt", {}, "files"), el("dd", {}, p.files.join(", ")),
    el("dt", {}, "agents"), el("dd", {}, ...p.agents.map((a) =>
      el("span", { class: "mode-" + a.mode }, a.agent + " (" + a.mode + ") "))));
  $("policy-at-answer").textContent = p.at ? (p.at.version ? "version " + p.at.version : "nothing recorded before then") : "";
  $("policy-history").replaceChildren(...p.history.slice().reverse().map((c) =>
    el("tr", {}, el("td", {}, c.seq), el("td", {}, c.ts), el("td", {}, c.version),
      el("td", { class: c.accepted ? "allow" : "deny" }, c.accepted ? "in force" : "rejected"), el("td", {}, c.reason))));
}

async function loadSuggest() {
  const agent = new FormData($("suggest-form")).get("agent");
  try {
    const s = await api("/api/suggest?agent=" + encodeURIComponent(agent));
    $("suggest-out").textContent = s.proposal;
  } catch (e) { $("suggest-out").textContent = e.message; }
}

async function loadVault() {
  let v;
  try { v = await api("/api/vault"); } catch (e) { toast(e.message); return; }
  $("vault-rows").replaceChildren(...v.entries.map((e) =>
    el("tr", {}, el("td", {}, e.name), el("td", {}, e.kind), el("td", {}, e.version),
      el("td", {}, e.last_used || "never"), el("td", {}, (e.used_by || []).join(", ")))));
  $("binding-rows").replaceChildren(...v.bindings.map((b) => {
    const perms = Object.entries(b.permissions || {}).map(([k, l]) => k + ":" + l);
    const scope = [(b.repositories || []).join(", "), perms.join(", ")].filter(Boolean).join(" · ");
    return el("tr", { "data-entry": b.entry },
      el("td", {}, b.agent), el("td", {}, b.connector), el("td", {}, b.order), el("td", {}, b.entry),
      el("td", {}, b.kind || "(no such entry)"), el("td", { class: "detail" }, b.when || "always"),
      el("td", { class: "detail" }, scope), el("td", { class: "muted" }, b.location));
  }));
}

document.addEventListener("DOMContentLoaded", start);
