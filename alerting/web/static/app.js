// hostwatch alerting page: reads the Alertmanager API v2 and /api/hostwatch/*, renders, refreshes every 5 s.
"use strict";

const REFRESH_MS = 5000;
const $ = (sel) => document.querySelector(sel);
const data = { groups: [], silences: [], oncall: null, escalations: [], health: null, errors: [] };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

function me() {
  return $("#me").value.trim() || "web";
}

// -- time --------------------------------------------------------------------------------------
function span(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
const ago = (iso) => `${span((Date.now() - Date.parse(iso)) / 1000)} ago`;
const until = (iso) => `in ${span((Date.parse(iso) - Date.now()) / 1000)}`;
function clock(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  const opts = sameDay ? { hour: "2-digit", minute: "2-digit" }
                       : { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return d.toLocaleString(undefined, opts);
}

// -- alerts --------------------------------------------------------------------------------------
function alertState(a) {
  if (a.status.silencedBy.length) return "silenced";
  if (a.status.inhibitedBy.length) return "inhibited";
  return "firing";
}

function matchesFilter(a, text) {
  if (!text) return true;
  const hay = Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`).join(" ") + " "
    + Object.values(a.annotations || {}).join(" ");
  return text.toLowerCase().split(/\s+/).every((w) => hay.toLowerCase().includes(w.replace(/,$/, "")));
}

function chips(labels, cls, skip) {
  return Object.keys(labels).sort().filter((k) => !(skip && skip.has(k)))
    .map((k) => h("span", { class: `chip ${cls || ""}` }, `${k}="${labels[k]}"`));
}

function renderGroups() {
  const text = $("#filter").value.trim();
  const showMuted = $("#show-muted").checked;
  const escalations = new Map(data.escalations.map((e) => [e.groupID, e]));
  const byReceiver = new Map();
  let shown = 0;
  for (const g of data.groups) {
    const alerts = g.alerts.filter((a) => matchesFilter(a, text) && (showMuted || alertState(a) === "firing"));
    if (!alerts.length) continue;
    shown += alerts.length;
    if (!byReceiver.has(g.receiver.name)) byReceiver.set(g.receiver.name, []);
    byReceiver.get(g.receiver.name).push(renderGroup(g, alerts, escalations.get(g.id)));
  }
  $("#alert-count").textContent = shown ? `${shown}` : "";
  const root = $("#groups");
  root.replaceChildren();
  if (!byReceiver.size) {
    root.append(h("p", { class: "empty" }, data.groups.length ? "No alert matches the filter." : "No active alerts."));
    return;
  }
  for (const [receiver, groups] of [...byReceiver.entries()].sort()) {
    root.append(h("div", { class: "receiver-block" }, h("h3", {}, `receiver ${receiver}`), groups));
  }
}

function renderGroup(g, alerts, esc) {
  const ack = g.acknowledged && g.acknowledged.active ? g.acknowledged : null;
  const firing = alerts.filter((a) => alertState(a) === "firing").length;
  const muted = alerts.length - firing;
  const groupLabels = new Set(Object.keys(g.labels));
  const badges = [];
  if (firing) badges.push(h("span", { class: "badge firing" }, `${firing} firing`));
  if (muted) badges.push(h("span", { class: "badge silenced" }, `${muted} muted`));
  if (ack) {
    badges.push(h("span", { class: "badge acked", title: ack.comment || "" },
                  `Acknowledged by ${ack.acknowledgedBy || "someone"} · ${ago(ack.acknowledgedAt)}`));
  } else if (esc && esc.status === "triggered") {
    const who = esc.paged.length ? `paged ${esc.paged.join(", ")}` : "nobody reachable yet";
    const next = esc.nextEscalationAt ? ` · escalates ${until(esc.nextEscalationAt)}` : "";
    badges.push(h("span", { class: "badge escalation" }, `${esc.policy} level ${esc.level} · ${who}${next}`));
  }
  const button = ack
    ? h("button", { class: "unack", onclick: () => act(() => api("DELETE", `/api/v2/alerts/groups/${g.id}/ack`)) },
        "Unacknowledge")
    : h("button", { class: "ack primary", onclick: () => act(() => api("POST", `/api/v2/alerts/groups/${g.id}/ack`,
        { createdBy: me(), comment: "" })) }, "Acknowledge");
  const cls = ["group", ack ? "acked" : "", !firing ? "muted" : ""].join(" ");
  return h("article", { class: cls, "data-group-id": g.id, "data-group-key": g.groupKey },
    h("div", { class: "group-head" },
      h("div", { class: "head-main" },
        Object.keys(g.labels).length ? chips(g.labels, "group-label") : h("span", { class: "muted" }, "(all alerts)"),
        badges),
      button),
    h("ul", { class: "alerts" }, alerts.map((a) => renderAlert(a, groupLabels))));
}

function renderAlert(a, groupLabels) {
  const st = alertState(a);
  const summary = (a.annotations || {}).summary || (a.annotations || {}).description || "";
  const skip = new Set(["alertname", ...groupLabels]);
  return h("li", { class: `alert ${st === "firing" ? "" : "is-muted"} state-${st}`,
                   "data-alertname": a.labels.alertname || "", "data-fingerprint": a.fingerprint },
    h("span", { class: `badge ${st}` }, st),
    h("div", { class: "what" }, h("span", { class: "name" }, a.labels.alertname || "(no alertname)"),
      chips(a.labels, "", skip), summary ? h("span", { class: "summary" }, summary) : null),
    h("span", { class: "since", title: a.startsAt }, `since ${ago(a.startsAt).replace(" ago", "")}`),
    h("button", { class: "silence", onclick: () => openSilence(a) }, "Silence"));
}

// -- silences ------------------------------------------------------------------------------------
function matcherText(m) {
  const op = m.isRegex ? (m.isEqual === false ? "!~" : "=~") : (m.isEqual === false ? "!=" : "=");
  return `${m.name}${op}"${m.value}"`;
}

function renderSilences() {
  const showExpired = $("#show-expired").checked;
  const rows = data.silences.filter((s) => showExpired || s.status.state !== "expired");
  const live = data.silences.filter((s) => s.status.state !== "expired").length;
  $("#silence-count").textContent = live ? `${live}` : "";
  const root = $("#silences-body");
  root.replaceChildren();
  if (!rows.length) {
    root.append(h("p", { class: "empty" }, "No silences. Use “Silence” on an alert to mute it."));
    return;
  }
  root.append(h("table", {},
    h("thead", {}, h("tr", {}, ["State", "Matchers", "Ends", "Created by", "Comment", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((s) => {
      const state = s.status.state;
      const ends = state === "expired" ? `ended ${ago(s.endsAt)}` : `${clock(s.endsAt)} (${until(s.endsAt)})`;
      return h("tr", { class: `silence state-${state}`, "data-silence-id": s.id },
        h("td", {}, h("span", { class: `badge ${state === "active" ? "acked" : "silenced"}` }, state)),
        h("td", {}, s.matchers.map((m) => h("span", { class: "chip" }, matcherText(m)))),
        h("td", { class: "small" }, ends),
        h("td", {}, s.createdBy),
        h("td", { class: "small" }, s.comment),
        h("td", {}, state === "expired" ? null : h("button", { class: "expire",
          onclick: () => act(() => api("DELETE", `/api/v2/silence/${s.id}`)) }, "Expire")));
    }))));
}

function openSilence(a) {
  const fs = $("#silence-matchers");
  fs.replaceChildren(h("legend", { class: "muted small" }, "Matchers"),
    ...Object.keys(a.labels).sort().map((k) => h("label", {},
      h("input", { type: "checkbox", checked: true, "data-name": k, "data-value": a.labels[k] }),
      h("span", { class: "chip" }, `${k}="${a.labels[k]}"`))));
  $("#silence-author").value = me();
  $("#silence-comment").value = "";
  $("#silence-error").hidden = true;
  $("#silence-dialog").showModal();
  $("#silence-comment").focus();
}

async function createSilence(ev) {
  ev.preventDefault();
  const matchers = [...document.querySelectorAll("#silence-matchers input:checked")].map((i) => (
    { name: i.dataset.name, value: i.dataset.value, isRegex: false, isEqual: true }));
  const err = $("#silence-error");
  if (!matchers.length) {
    err.textContent = "Check at least one label.";
    err.hidden = false;
    return;
  }
  const now = new Date();
  const end = new Date(now.getTime() + Number($("#silence-duration").value) * 1000);
  try {
    await api("POST", "/api/v2/silences", { matchers, startsAt: now.toISOString(), endsAt: end.toISOString(),
      createdBy: $("#silence-author").value.trim(), comment: $("#silence-comment").value.trim() });
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    return;
  }
  $("#silence-dialog").close();
  await refresh();
}

// -- on call, cluster ----------------------------------------------------------------------------
function renderOnCall() {
  const root = $("#oncall-body");
  root.replaceChildren();
  const oc = data.oncall;
  if (!oc) return;
  if (!oc.schedules.length) {
    root.append(h("p", { class: "empty" }, "No on-call schedules configured."));
    return;
  }
  root.append(h("table", {},
    h("thead", {}, h("tr", {}, ["Schedule", "Now", "Until", "Next"].map((t) => h("th", {}, t)))),
    h("tbody", {}, oc.schedules.map((s) => h("tr", { "data-schedule": s.schedule },
      h("td", {}, s.schedule, h("div", { class: "muted small" }, s.timeZone)),
      h("td", { class: s.onCall.length ? "person" : "nobody" }, s.onCall.length ? s.onCall.join(", ") : "nobody"),
      h("td", { class: "small" }, s.until ? clock(s.until) : "—",
        s.until ? h("div", { class: "muted" }, until(s.until)) : null),
      h("td", {}, s.next.length ? s.next.join(", ") : h("span", { class: "muted" }, "nobody")))))));
  if (oc.policies.length) {
    root.append(h("p", { class: "muted small" }, `Escalation policies: ${oc.policies.join(", ")}`));
  }
}

function pill(cls, text, title) {
  return h("span", { class: `pill ${cls}`, title: title || "" }, h("span", { class: "dot" }), text);
}

function renderHealth() {
  const pills = $("#health-pills");
  pills.replaceChildren();
  const hl = data.health;
  if (data.errors.length) pills.append(pill("bad", "API unreachable", data.errors.join("\n")));
  if (!hl) return;
  const live = hl.replicas.filter((r) => r.live).length;
  const log = hl.log;
  if (log.kind === "kafka") {
    pills.append(pill(log.reachable && hl.healthy ? "ok" : "bad", log.reachable && hl.healthy ? "Kafka ok" : "Kafka unreachable"));
  } else {
    pills.append(pill("warn", log.kind === "journal" ? "local journal (no Kafka)" : "in-memory log (no Kafka)"));
  }
  pills.append(pill(live ? "ok" : "warn", `${live} replica${live === 1 ? "" : "s"}`));
  pills.append(pill("", `this: ${hl.replica}`));

  const root = $("#cluster-body");
  root.replaceChildren();
  const transport = log.kind === "kafka" ? `Kafka ${log.brokers.join(", ")} · topic ${log.topic}`
    : log.kind === "journal" ? `local journal ${log.path}` : "memory only";
  const ok = log.reachable && hl.healthy;
  root.append(h("dl", { class: "kv" },
    h("dt", {}, "Replicated log"), h("dd", {}, transport),
    h("dt", {}, "Log status"), h("dd", { class: ok ? "status-ok" : "status-bad" },
      ok ? (log.caughtUp ? "reachable, caught up" : "reachable, replaying") : "unreachable: failing open"),
    h("dt", {}, "Cluster"), h("dd", {}, hl.cluster)));
  root.append(h("table", {},
    h("thead", {}, h("tr", {}, ["Replica", "Address", "Seen"].map((t) => h("th", {}, t)))),
    h("tbody", {}, hl.replicas.map((r) => h("tr", { class: r.live ? "live" : "stale", "data-replica": r.name },
      h("td", { class: r.live ? "person" : "muted" }, r.name, r.self ? h("span", { class: "muted small" }, " (this)") : null),
      h("td", { class: "mono" }, r.address),
      h("td", { class: r.live ? "small" : "small status-bad" }, `${span(r.lastSeenSeconds)} ago`))))));
}

// -- loop ----------------------------------------------------------------------------------------
async function act(fn) {
  try {
    await fn();
  } catch (e) {
    alert(e.message);
  }
  await refresh();
}

async function refresh() {
  const calls = [["groups", "/api/v2/alerts/groups"], ["silences", "/api/v2/silences"],
                 ["oncall", "/api/hostwatch/oncall"], ["escalations", "/api/hostwatch/escalations"],
                 ["health", "/api/hostwatch/health"]];
  const results = await Promise.allSettled(calls.map(([, path]) => api("GET", path)));
  data.errors = [];
  results.forEach((r, i) => {
    if (r.status === "fulfilled") data[calls[i][0]] = r.value;
    else data.errors.push(r.reason.message);
  });
  renderGroups();
  renderSilences();
  renderOnCall();
  renderHealth();
  $("#refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

$("#me").value = localStorage.getItem("hostwatch.me") || "";
$("#me").addEventListener("change", () => localStorage.setItem("hostwatch.me", $("#me").value.trim()));
$("#filter").addEventListener("input", renderGroups);
$("#show-muted").addEventListener("change", renderGroups);
$("#show-expired").addEventListener("change", renderSilences);
$("#silence-form").addEventListener("submit", createSilence);
$("#silence-cancel").addEventListener("click", () => $("#silence-dialog").close());
refresh();
setInterval(refresh, REFRESH_MS);
