// The status and management tabs: Overview (access form, snapshot, health, channels,
// presence), Channels, Instances, Sessions (filter, label/thinking edits, reset, delete),
// Nodes (device and DM pairing approvals), Logs (tail with follow and filters) and Debug.

import { h, fill, card, field, stat, callout, jsonBlock, errorText, ago, duration, confirmDialog } from "./dom.js";
import { storedDeviceId, storeDeviceToken, clearDeviceToken } from "./gateway.js";

/** Runs `load` now (when connected) and after every (re)connect; returns {destroy}. */
function live(app, load, extra) {
  const off = app.on((event, payload) => {
    if (event === "hello") load();
    else if (extra) extra(event, payload);
  });
  if (app.connected) load();
  return { destroy: off };
}

function notConnected(app) {
  return app.connected ? null : h("p", { class: "muted" }, "Not connected to the gateway.");
}

// ---------- Overview ----------

function accessCard(app) {
  const url = h("input", { value: app.settings.gatewayUrl, placeholder: "ws://127.0.0.1:18789", "aria-label": "WebSocket URL" });
  const token = h("input", { value: app.settings.token, placeholder: "CLAWDBOT_GATEWAY_TOKEN", autocomplete: "off", "aria-label": "Gateway Token" });
  const password = h("input", { type: "password", value: app.password, placeholder: "system or shared password", "aria-label": "Password" });
  const session = h("input", { value: app.settings.sessionKey, "aria-label": "Default Session Key" });
  const connect = () => {
    app.saveSettings({ gatewayUrl: url.value.trim() || app.settings.gatewayUrl, token: token.value.trim(), sessionKey: session.value.trim() || "main" });
    app.password = password.value;
    app.connect();
  };
  return card("Gateway Access",
    h("p", { class: "muted small" }, "Where the dashboard connects and how it authenticates. The token is kept in this browser; the password only in memory."),
    field("WebSocket URL", url), field("Gateway Token", token), field("Password (not stored)", password), field("Default Session Key", session),
    h("div", { class: "row" }, h("button", { class: "primary", onclick: connect }, "Connect"),
      h("span", { class: "muted small" }, "Click Connect to apply connection changes.")));
}

function channelRows(res) {
  const order = (res && res.channelOrder) || Object.keys((res && res.channelAccounts) || {});
  const rows = [];
  for (const id of order) {
    const label = (res.channelLabels && res.channelLabels[id]) || id;
    for (const acc of (res.channelAccounts && res.channelAccounts[id]) || []) {
      const state = acc.connected ? ["connected", "ok-text"] : acc.running ? ["running", "warn-text"] : acc.configured ? ["configured, not running", "warn-text"] : ["not configured", "muted"];
      rows.push(h("div", { class: "item" }, h("span", { class: "key" }, `${label} · ${acc.accountId || "default"}`),
        h("span", { class: state[1] }, state[0]), acc.lastError ? h("span", { class: "bad-text small" }, acc.lastError) : null));
    }
  }
  return rows.length ? h("div", { class: "list" }, rows) : h("p", { class: "empty" }, "No channels configured.");
}

export function overviewView(app, el) {
  const snap = h("div", {}), health = h("div", {}), channels = h("div", {}), presence = h("div", {});
  fill(el, h("h2", {}, "Overview"), h("div", { class: "grid" }, accessCard(app), card("Snapshot", snap)),
    h("div", { class: "grid" }, card("Health", health), card("Channels", channels)), card("Presence", presence));

  function renderSnap() {
    const server = (app.hello && app.hello.server) || {};
    const up = app.hello && app.hello.snapshot && app.hello.snapshot.uptimeMs;
    fill(snap, h("div", { class: "stats" },
      stat("Status", app.connected ? "Connected" : "Disconnected", app.connected ? "ok-text" : "bad-text"),
      stat("Version", server.version || "n/a"), stat("Host", server.host || "n/a"),
      stat("Uptime", up != null && app.connected ? duration(up + Date.now() - app.helloAt) : "n/a")),
    app.lastError && !app.connected ? callout("danger", app.lastError) : null);
  }

  async function load() {
    renderSnap();
    const [h1, c1, p1] = await Promise.allSettled([
      app.request("health", {}), app.request("channels.status", { probe: false, timeoutMs: 8000 }), app.request("system-presence", {}),
    ]);
    if (h1.status === "fulfilled") {
      const v = h1.value || {};
      const agents = (v.agents || []).map((a) => a.agentId + (a.isDefault ? " (default)" : "")).join(", ");
      fill(health, h("div", { class: "stats" },
        stat("Health", v.ok ? "OK" : "Not OK", v.ok ? "ok-text" : "bad-text"),
        stat("Agents", agents || "n/a"), stat("Sessions", v.sessions ? String(v.sessions.count) : "n/a"),
        stat("Heartbeat", v.heartbeatSeconds ? duration(v.heartbeatSeconds * 1000) : "off"), stat("Checked", ago(v.ts))));
    } else fill(health, callout("danger", errorText(h1.reason)));
    fill(channels, c1.status === "fulfilled" ? channelRows(c1.value) : callout("danger", errorText(c1.reason)));
    fill(presence, p1.status === "fulfilled" ? presenceList(p1.value) : callout("danger", errorText(p1.reason)));
  }

  const view = live(app, load, (event, payload) => {
    if (event === "close") renderSnap();
    if (event === "clock") renderSnap();
    if (event === "presence" && payload && payload.presence) fill(presence, presenceList(payload.presence));
  });
  renderSnap();
  return view;
}

function presenceList(entries) {
  if (!Array.isArray(entries) || !entries.length) return h("p", { class: "empty" }, "No instances.");
  return h("div", { class: "list" }, entries.map((e) => h("div", { class: "item" },
    h("span", { class: "key" }, e.host || e.instanceId || "unknown"),
    h("span", { class: "small" }, [e.mode, e.platform, e.version && "v" + e.version, e.ip].filter(Boolean).join(" · ")),
    h("span", { class: "muted small" }, (e.reason ? e.reason + " · " : "") + ago(e.ts)))));
}

// ---------- Channels / Instances ----------

export function channelsView(app, el) {
  const body = h("div", {});
  fill(el, h("h2", {}, "Channels"), card(null, body), h("p", { class: "muted small" }, "DM pairing requests are approved in Nodes."));
  return live(app, async () => {
    try { fill(body, channelRows(await app.request("channels.status", { probe: true, timeoutMs: 8000 }))); } catch (err) { fill(body, callout("danger", errorText(err))); }
  });
}

export function instancesView(app, el) {
  const body = h("div", {});
  fill(el, h("h2", {}, "Instances"), card(null, body));
  return live(app, async () => {
    try { fill(body, presenceList(await app.request("system-presence", {}))); } catch (err) { fill(body, callout("danger", errorText(err))); }
  }, (event, payload) => { if (event === "presence" && payload) fill(body, presenceList(payload.presence)); });
}

// ---------- Sessions ----------

const THINKING = ["", "off", "minimal", "low", "medium", "high"];

export function sessionsView(app, el) {
  const filter = h("input", { placeholder: "Filter by key or label", "aria-label": "Filter sessions", oninput: () => render() });
  const body = h("div", { class: "list" }), status = h("div", {});
  let rows = [];
  fill(el, h("h2", {}, "Sessions"), card(null, h("div", { class: "row" }, h("div", { class: "grow" }, filter), h("button", { onclick: () => load() }, "Refresh")), status, body));

  async function act(label, fn) {
    try { await fn(); fill(status, callout("ok", label)); } catch (err) { fill(status, callout("danger", errorText(err))); }
    await load(true);
  }

  function row(r) {
    const label = h("input", { value: r.label || "", placeholder: "label", "aria-label": "Label for " + r.key });
    label.addEventListener("change", () => act(`Label saved for ${r.key}.`, () => app.request("sessions.patch", { key: r.key, label: label.value.trim() || null })));
    const thinking = h("select", { "aria-label": "Thinking for " + r.key }, THINKING.map((t) => h("option", { value: t }, t || "inherit")));
    thinking.value = r.thinkingLevel || "";
    thinking.addEventListener("change", () => act(`Thinking set for ${r.key}.`, () => app.request("sessions.patch", { key: r.key, thinkingLevel: thinking.value || null })));
    const reset = async () => {
      if (await confirmDialog({ title: "Reset session", body: h("p", {}, `Start ${r.key} over with an empty history?`), confirm: "Reset", danger: true })) {
        act(`Reset ${r.key}.`, () => app.request("sessions.reset", { key: r.key }));
      }
    };
    const del = async () => {
      if (await confirmDialog({ title: "Delete session", body: h("p", {}, `Delete ${r.key} and archive its transcript?`), confirm: "Delete", danger: true })) {
        act(`Deleted ${r.key}.`, () => app.request("sessions.delete", { key: r.key, deleteTranscript: true }));
      }
    };
    const tokens = r.totalTokens ? `${r.totalTokens} tokens` : "";
    return h("div", { class: "item", "data-key": r.key },
      h("a", { class: "key", href: `${app.base}/chat`, onclick: (e) => { e.preventDefault(); app.navigate("chat", { session: r.key }); } }, r.key),
      label, thinking,
      h("span", { class: "muted small" }, [ago(r.updatedAt), tokens].filter(Boolean).join(" · ")),
      h("button", { onclick: reset }, "Reset"), h("button", { class: "danger", onclick: del }, "Delete"));
  }

  function render() {
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !q || [r.key, r.label, r.displayName, r.derivedTitle].some((v) => v && v.toLowerCase().includes(q)));
    fill(body, shown.length ? shown.map(row) : h("p", { class: "empty" }, rows.length ? "No session matches the filter." : "No sessions yet."));
  }

  async function load(keepStatus) {
    if (!keepStatus) status.replaceChildren();
    try {
      const res = await app.request("sessions.list", { includeGlobal: true, includeUnknown: false, limit: 200 });
      rows = (res && res.sessions) || [];
      render();
    } catch (err) { fill(body, callout("danger", errorText(err))); }
  }
  // A finished turn may have created or updated a session.
  return live(app, () => load(), (event, p) => { if (event === "chat" && p && p.state === "final") load(true); });
}

// ---------- Nodes: device and DM pairing ----------

export function nodesView(app, el) {
  const devices = h("div", {}), dm = h("div", {}), status = h("div", {});
  fill(el, h("h2", {}, "Nodes & pairing"), status, card("Devices", devices), card("DM pairing (Discord, Telegram)", dm));

  async function act(label, fn) {
    try { await fn(); fill(status, callout("ok", label)); } catch (err) { fill(status, callout("danger", errorText(err))); }
    load();
  }

  function renderDevices(res) {
    const pending = (res && res.pending) || [], paired = (res && res.paired) || [];
    fill(devices,
      h("h3", {}, `Pending (${pending.length})`),
      pending.length ? h("div", { class: "list" }, pending.map((p) => h("div", { class: "item", "data-request": p.requestId },
        h("span", { class: "key" }, p.displayName || p.clientId || p.deviceId),
        h("span", { class: "small" }, [p.platform, p.role, p.remoteIp, ago(p.ts)].filter(Boolean).join(" · ")),
        h("button", { class: "primary", onclick: () => act(`Approved ${p.displayName || p.deviceId}.`, () => app.request("device.pair.approve", { requestId: p.requestId })) }, "Approve"),
        h("button", { class: "danger", onclick: () => act("Rejected.", () => app.request("device.pair.reject", { requestId: p.requestId })) }, "Reject"))))
        : h("p", { class: "empty" }, "No pending device requests."),
      h("h3", {}, `Paired (${paired.length})`),
      paired.length ? h("div", { class: "list" }, paired.map((d) => h("div", { class: "item", "data-device": d.deviceId },
        h("span", { class: "key" }, `${d.displayName || d.clientId || "device"} · ${String(d.deviceId).slice(0, 12)}${d.deviceId === storedDeviceId() ? " (this browser)" : ""}`),
        h("span", { class: "small muted" }, [(d.roles || [d.role]).filter(Boolean).join(","), d.platform, d.remoteIp, "approved " + ago(d.approvedAtMs)].filter(Boolean).join(" · ")),
        (Array.isArray(d.tokens) ? d.tokens : []).map((t) => tokenRow(d, t)))))
        : h("p", { class: "empty" }, "No paired devices."));
  }

  function tokenRow(d, t) {
    const mine = d.deviceId === storedDeviceId();
    const rotate = () => act(`Rotated the ${t.role} token.`, async () => {
      const res = await app.request("device.token.rotate", { deviceId: d.deviceId, role: t.role });
      if (mine && res && res.token) storeDeviceToken(d.deviceId, res.role || t.role, res.token, res.scopes || t.scopes);
      if (res && res.token) {
        await confirmDialog({ title: "New device token", body: h("div", {}, h("p", {}, "Copy and store it securely; it is not shown again."),
          h("input", { value: res.token, readonly: true, class: "mono", "aria-label": "New device token" })), confirm: "Done", cancel: "Close" });
      }
    });
    const revoke = async () => {
      if (!(await confirmDialog({ title: "Revoke token", body: h("p", {}, `Revoke the ${t.role} token of ${d.displayName || d.deviceId}? It must pair or use the shared token again.`), confirm: "Revoke", danger: true }))) return;
      act(`Revoked the ${t.role} token.`, async () => {
        await app.request("device.token.revoke", { deviceId: d.deviceId, role: t.role });
        if (mine) clearDeviceToken(d.deviceId, t.role);
      });
    };
    return h("div", { class: "row small", "data-role": t.role },
      h("span", { class: t.revokedAtMs ? "bad-text" : "muted" }, `${t.role} token${t.revokedAtMs ? " · revoked " + ago(t.revokedAtMs) : ""}`),
      h("button", { onclick: rotate }, "Rotate"), t.revokedAtMs ? null : h("button", { class: "danger", onclick: revoke }, "Revoke"));
  }

  function renderDm(res) {
    const channels = (res && res.channels) || [];
    fill(dm, channels.map((c) => h("div", { class: "list", "data-channel": c.channel },
      h("h3", {}, `${c.channel}: ${c.requests.length} pending · ${c.allowFrom.length} allowed`),
      c.requests.map((r) => h("div", { class: "item", "data-code": r.code },
        h("span", { class: "key" }, `${r.code} · sender ${r.id}`),
        h("span", { class: "small muted" }, [r.meta && (r.meta.username || r.meta.name), "asked " + ago(Date.parse(r.lastSeenAt || r.createdAt))].filter(Boolean).join(" · ")),
        h("button", { class: "primary", onclick: () => act(`Approved ${c.channel} sender ${r.id}.`, () => app.request("pairing.approve", { channel: c.channel, code: r.code })) }, "Approve"),
        h("button", { class: "danger", onclick: () => act(`Rejected ${r.code}.`, () => app.request("pairing.reject", { channel: c.channel, code: r.code })) }, "Reject"))),
      c.allowFrom.length ? h("p", { class: "small muted" }, "Allowed: " + c.allowFrom.join(", ")) : null)),
    h("p", { class: "muted small" }, "Senders see a pairing code in their DM; approving it lets their next message through."));
  }

  async function load() {
    const [d, p] = await Promise.allSettled([app.request("device.pair.list", {}), app.request("pairing.list", {})]);
    if (d.status === "fulfilled") renderDevices(d.value); else fill(devices, callout("danger", errorText(d.reason)));
    if (p.status === "fulfilled") renderDm(p.value); else fill(dm, callout("danger", errorText(p.reason)));
  }
  return live(app, load, (event) => { if (event === "device.pair.requested" || event === "device.pair.resolved") load(); });
}

// ---------- Logs ----------

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];

/** One tslog-style JSON line → {time, level, subsystem, message}; anything else stays raw. */
export function parseLogLine(line) {
  try {
    const o = JSON.parse(line);
    const meta = o._meta || {};
    let subsystem = meta.name;
    try { const n = JSON.parse(o["0"]); subsystem = n.subsystem || n.module || subsystem; } catch { /* plain */ }
    return { time: o.time || meta.date || "", level: String(meta.logLevelName || "info").toLowerCase(), subsystem: subsystem || "", message: typeof o["1"] === "string" ? o["1"] : JSON.stringify(o["1"] ?? "") };
  } catch {
    return { time: "", level: "info", subsystem: "", message: line };
  }
}

export function logsView(app, el) {
  const out = h("div", { class: "logs", "data-testid": "logs" });
  const text = h("input", { placeholder: "Filter text", "aria-label": "Filter logs", oninput: () => render() });
  const level = h("select", { "aria-label": "Minimum level", onchange: () => render() }, LEVELS.map((l) => h("option", { value: l }, l + "+")));
  level.value = "debug";
  const follow = h("input", { type: "checkbox", checked: true, "aria-label": "Follow" });
  const info = h("span", { class: "muted small" });
  let entries = [], cursor = null, timer = null;
  fill(el, h("h2", {}, "Logs"), card(null,
    h("div", { class: "row" }, h("div", { class: "grow" }, text), level, h("label", { class: "row small" }, follow, "Follow"),
      h("button", { onclick: () => { entries = []; cursor = null; poll(); } }, "Reload")), info, out));

  function render() {
    const q = text.value.trim().toLowerCase(), min = LEVELS.indexOf(level.value);
    const shown = entries.filter((e) => LEVELS.indexOf(e.level) >= min && (!q || (e.message + " " + e.subsystem).toLowerCase().includes(q)));
    fill(out, shown.slice(-1000).map((e) => h("div", { class: "log" },
      h("span", { class: "muted" }, e.time.replace("T", " ").replace(/\.\d+Z$/, "Z") + " "),
      h("span", { class: "lvl lvl-" + e.level }, e.level.toUpperCase()), " ",
      e.subsystem ? h("span", { class: "muted" }, `[${e.subsystem}] `) : null, e.message)));
    if (follow.checked) out.scrollTop = out.scrollHeight;
  }

  async function poll() {
    clearTimeout(timer);
    if (!app.connected) return;
    try {
      const params = { limit: 500, maxBytes: 250000 };
      if (cursor != null) params.cursor = cursor;
      const res = await app.request("logs.tail", params);
      if (res.reset) entries = [];
      entries = entries.concat((res.lines || []).map(parseLogLine)).slice(-2000);
      cursor = res.cursor;
      fill(info, res.file ? `${res.file}` : "");
      render();
    } catch (err) { fill(info, callout("danger", errorText(err))); }
    if (follow.checked) timer = setTimeout(poll, 2000);
  }
  follow.addEventListener("change", () => { if (follow.checked) poll(); });
  const view = live(app, poll);
  return { destroy: () => { clearTimeout(timer); view.destroy(); } };
}

// ---------- Debug ----------

export function debugView(app, el) {
  const snaps = h("div", { class: "grid" }), events = h("div", {}), result = h("div", {});
  const method = h("input", { placeholder: "method, e.g. status", "aria-label": "Method" });
  const params = h("textarea", { class: "mono", rows: 3, placeholder: "{}", "aria-label": "Params (JSON)" });
  const log = [];
  const call = async () => {
    let p = {};
    try { p = params.value.trim() ? JSON.parse(params.value) : {}; } catch (err) { return fill(result, callout("danger", "Params are not JSON: " + errorText(err))); }
    try { fill(result, jsonBlock(await app.request(method.value.trim(), p))); } catch (err) { fill(result, callout("danger", errorText(err))); }
  };
  fill(el, h("h2", {}, "Debug"), snaps, card("Manual RPC", field("Method", method), field("Params", params), h("button", { class: "primary", onclick: call }, "Call"), result), card("Events", events));
  async function load() {
    const names = ["status", "health", "models.list", "last-heartbeat"];
    const res = await Promise.allSettled(names.map((m) => app.request(m, {})));
    fill(snaps, res.map((r, i) => card(names[i], r.status === "fulfilled"
      ? jsonBlock(names[i] === "models.list" ? { models: (r.value.models || []).length } : r.value)
      : callout("danger", errorText(r.reason)))));
  }
  return live(app, load, (event, payload) => {
    if (["hello", "close", "clock"].includes(event)) return;
    log.unshift({ ts: new Date().toISOString(), event, payload });
    log.length = Math.min(log.length, 100);
    fill(events, log.slice(0, 30).map((e) => h("details", {}, h("summary", { class: "mono small" }, `${e.ts} ${e.event}`), jsonBlock(e.payload))));
  });
}

/** Tabs whose subsystem this gateway does not have yet: show what the method answers. */
export function placeholderView(title, method) {
  return (app, el) => {
    const body = h("div", {});
    fill(el, h("h2", {}, title), card(null, body));
    return live(app, async () => {
      try { fill(body, jsonBlock(await app.request(method, {}))); } catch (err) { fill(body, callout("warn", errorText(err))); }
    });
  };
}
