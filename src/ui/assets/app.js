// The app shell: settings (localStorage, upstream's shape), URL bootstrap (?token, ?password,
// ?session, ?gatewayUrl with a confirmation), the connection and its status pill, tab routing
// under the base path, and the event bus the tab views subscribe to.

import { h, fill, callout, confirmDialog } from "./dom.js";
import { GatewayClient } from "./gateway.js";
import { chatView } from "./chat.js";
import { overviewView, channelsView, instancesView, sessionsView, nodesView, logsView, debugView, placeholderView } from "./tabs.js";
import { configView } from "./config.js";

const SETTINGS_KEY = "moltbot.control.settings.v1";
const LEGACY_SETTINGS_KEY = "clawdbot.control.settings.v1";

const TABS = [
  ["chat", "Chat", chatView],
  ["overview", "Overview", overviewView],
  ["channels", "Channels", channelsView],
  ["instances", "Instances", instancesView],
  ["sessions", "Sessions", sessionsView],
  ["cron", "Cron Jobs", placeholderView("Cron Jobs", "cron.status")],
  ["skills", "Skills", placeholderView("Skills", "skills.status")],
  ["nodes", "Nodes", nodesView],
  ["config", "Config", configView],
  ["debug", "Debug", debugView],
  ["logs", "Logs", logsView],
];

function defaultGatewayUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

function loadSettings() {
  const defaults = { gatewayUrl: defaultGatewayUrl(), token: "", sessionKey: "main", lastActiveSessionKey: "main" };
  try {
    const raw = localStorage.getItem(SETTINGS_KEY) ?? localStorage.getItem(LEGACY_SETTINGS_KEY);
    const p = raw ? JSON.parse(raw) : {};
    const str = (v, d) => (typeof v === "string" && v.trim() ? v.trim() : d);
    return {
      ...p,
      gatewayUrl: str(p.gatewayUrl, defaults.gatewayUrl),
      token: typeof p.token === "string" ? p.token : "",
      sessionKey: str(p.sessionKey, defaults.sessionKey),
      lastActiveSessionKey: str(p.lastActiveSessionKey, str(p.sessionKey, "main")),
    };
  } catch { return defaults; }
}

/** The base path: injected by the gateway, else the path minus a known tab suffix. */
function basePath() {
  const injected = window.__CLAWDBOT_CONTROL_UI_BASE_PATH__;
  if (typeof injected === "string") return injected.replace(/\/+$/, "");
  const parts = location.pathname.replace(/\/+$/, "").split("/");
  if (TABS.some(([id]) => id === parts[parts.length - 1])) parts.pop();
  return parts.join("/");
}

function tabFromPath(base) {
  let rest = location.pathname.slice(base.length).replace(/^\/+|\/+$/g, "").toLowerCase();
  if (!rest || rest === "index.html") rest = "chat";
  return TABS.some(([id]) => id === rest) ? rest : "chat";
}

const app = {
  settings: loadSettings(),
  password: "",
  client: null,
  hello: null,
  helloAt: 0,
  connected: false,
  lastError: null,
  close: null,
  base: basePath(),
  tab: "chat",
  listeners: new Set(),
  view: null,
  assistantName: window.__CLAWDBOT_ASSISTANT_NAME__ || "Assistant",

  saveSettings(patch) {
    Object.assign(this.settings, patch || {});
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(this.settings));
  },

  request(method, params) {
    if (!this.client) return Promise.reject(new Error("gateway not connected"));
    return this.client.request(method, params ?? {});
  },

  /** Subscribes to gateway events (and the pseudo events "hello" and "close"). */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },

  emit(event, payload) {
    for (const fn of [...this.listeners]) {
      try { fn(event, payload); } catch (err) { console.error("[ui] listener", event, err); }
    }
  },

  /** The main session key the gateway reported (`agent:main:main`), for alias matching. */
  mainSessionKey() {
    const d = this.hello && this.hello.snapshot && this.hello.snapshot.sessionDefaults;
    return (d && d.mainSessionKey) || "agent:main:main";
  },

  sameSession(a, b) {
    const norm = (k) => (k === "main" || k === this.mainSessionKey() ? this.mainSessionKey() : k);
    return norm(a) === norm(b);
  },

  connect() {
    if (this.client) this.client.stop();
    this.connected = false;
    this.hello = null;
    this.lastError = null;
    this.close = null;
    renderStatus();
    this.client = new GatewayClient({
      url: this.settings.gatewayUrl,
      token: this.settings.token.trim() || undefined,
      password: this.password.trim() || undefined,
      onHello: (hello) => {
        this.hello = hello;
        this.helloAt = Date.now();
        this.connected = true;
        this.lastError = null;
        this.close = null;
        renderStatus();
        this.emit("hello", hello);
      },
      onConnectError: (err) => {
        this.lastError = err.message;
        if (err.details && err.details.requestId) this.lastError += ` (request ${err.details.requestId})`;
        renderStatus();
      },
      onClose: (info) => {
        this.connected = false;
        this.close = info;
        renderStatus();
        this.emit("close", info);
      },
      onEvent: (frame) => this.emit(frame.event, frame.payload),
    });
    this.client.start();
  },

  navigate(tab, opts = {}) {
    if (opts.session) this.saveSettings({ sessionKey: opts.session, lastActiveSessionKey: opts.session });
    const url = `${this.base}/${tab}`;
    if (location.pathname !== url) history.pushState({}, "", url + (opts.keepQuery ? location.search : ""));
    showTab(tab);
  },
};

function renderStatus() {
  const pill = document.getElementById("status");
  let text = "connecting…", cls = "";
  if (app.connected) { text = "connected"; cls = "ok"; }
  else if (app.close && app.close.code === 1012) text = "gateway restarting…";
  else if (app.close) { text = `disconnected (${app.close.code}): ${app.close.reason || "no reason"}`; cls = "bad"; }
  pill.textContent = text;
  pill.className = "pill " + cls;
  renderBanner();
}

/** The error and what to do about it, shown above every tab while disconnected. */
function renderBanner() {
  const el = document.getElementById("banner");
  const err = app.lastError;
  if (app.connected || !err) { el.hidden = true; el.replaceChildren(); return; }
  el.hidden = false;
  fill(el, h("div", { class: "bad-text", role: "alert" }, err), ...hintsFor(err));
}

export function hintsFor(err) {
  const lower = err.toLowerCase();
  const out = [];
  if (lower.includes("unauthorized") || lower.includes("connect failed")) {
    const hasSecret = app.settings.token.trim() || app.password.trim();
    out.push(h("div", { class: "muted small" }, hasSecret
      ? ["Auth failed. Re-copy a tokenized URL with ", h("code", {}, "moltbot dashboard --no-open"), ", or update the token in Overview → Gateway Access, then click Connect."]
      : ["This gateway requires auth. Add a token or password in Overview → Gateway Access, then click Connect."]));
  }
  if (!window.isSecureContext && (lower.includes("secure context") || lower.includes("device identity required"))) {
    out.push(h("div", { class: "muted small" },
      "This page is HTTP, so the browser blocks device identity. Use HTTPS (Tailscale Serve) or open ",
      h("code", {}, "http://127.0.0.1:18789"), " on the gateway host. If you must stay on HTTP, set ",
      h("code", {}, "gateway.controlUi.allowInsecureAuth: true"), " (token-only)."));
  }
  if (lower.includes("pairing required")) {
    out.push(h("div", { class: "muted small" }, "This browser is a new device. Approve it from a paired Control UI (Nodes → Devices) or run ",
      h("code", {}, "moltbot devices approve <requestId>"), " on the gateway host; this page reconnects by itself."));
  }
  if (lower.includes("origin not allowed")) {
    out.push(h("div", { class: "muted small" }, "Open the Control UI from the gateway's own address, or add this page's origin to ",
      h("code", {}, "gateway.controlUi.allowedOrigins"), "."));
  }
  return out;
}

function renderTabs() {
  const nav = document.getElementById("tabs");
  fill(nav, TABS.map(([id, label]) => h("a", {
    href: `${app.base}/${id}`, class: id === app.tab ? "active" : null, "data-tab": id,
    "aria-current": id === app.tab ? "page" : null,
    onclick: (e) => { if (e.ctrlKey || e.metaKey) return; e.preventDefault(); app.navigate(id); },
  }, label)));
}

function showTab(tab) {
  if (app.view && app.view.destroy) app.view.destroy();
  app.tab = tab;
  renderTabs();
  const main = document.getElementById("view");
  main.replaceChildren();
  const entry = TABS.find(([id]) => id === tab);
  document.title = `${entry[1]} · Moltbot Control`;
  app.view = entry[2](app, main) || null;
}

/** ?token= is stored and ?password= kept in memory, both removed from the address bar;
 *  ?gatewayUrl= is only ever adopted after the user confirms the exact target. */
function bootstrapFromUrl() {
  const params = new URLSearchParams(location.search);
  let clean = false, pendingUrl = null;
  const take = (k) => { const v = params.get(k); if (v != null) { params.delete(k); clean = true; } return v == null ? null : v.trim(); };
  const token = take("token");
  if (token) app.saveSettings({ token });
  const password = take("password");
  if (password) app.password = password;
  const gatewayUrl = take("gatewayUrl");
  if (gatewayUrl && gatewayUrl !== app.settings.gatewayUrl) pendingUrl = gatewayUrl;
  const session = params.get("session");
  if (session && session.trim()) app.saveSettings({ sessionKey: session.trim(), lastActiveSessionKey: session.trim() });
  if (clean) {
    const q = params.toString();
    history.replaceState({}, "", location.pathname + (q ? "?" + q : "") + location.hash);
  }
  return pendingUrl;
}

async function confirmGatewayUrl(url) {
  const ok = await confirmDialog({
    title: "Change Gateway URL",
    body: h("div", {},
      h("p", {}, "This link asks the Control UI to connect to another gateway:"),
      h("div", { class: "target", "data-testid": "gateway-url-target" }, url),
      callout("warn", "Your gateway token and this browser's device identity would be sent there. Only confirm if you trust this URL. Malicious URLs can compromise your system.")),
    confirm: "Connect to this URL",
    danger: true,
  });
  if (!ok) return;
  app.saveSettings({ gatewayUrl: url });
  app.connect();
}

function start() {
  const pendingUrl = bootstrapFromUrl();
  window.addEventListener("popstate", () => showTab(tabFromPath(app.base)));
  document.getElementById("brand").setAttribute("href", `${app.base}/`);
  showTab(tabFromPath(app.base));
  app.connect();
  if (pendingUrl) confirmGatewayUrl(pendingUrl);
  // Overview's uptime and the relative times tick along.
  setInterval(() => app.emit("clock"), 1000);
}

start();
