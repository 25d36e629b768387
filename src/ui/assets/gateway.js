// The gateway client: protocol v3 over one WebSocket (connect.challenge → connect → hello-ok),
// requests by id, events, reconnect with upstream's backoff (800 ms × 1.7, at most 15 s), the
// browser's Ed25519 device identity (WebCrypto) and the device tokens the gateway issues.

import { uuid } from "./dom.js";

const IDENTITY_KEY = "moltbot-device-identity-v1";
const DEVICE_AUTH_KEY = "moltbot.device.auth.v1";
// What the npm (clawdbot) build of upstream's UI stored; read once so a browser that already
// paired with that UI keeps its identity.
const LEGACY = { [IDENTITY_KEY]: "clawdbot-device-identity-v1", [DEVICE_AUTH_KEY]: "clawdbot.device.auth.v1" };

export const CLIENT_ID = "moltbot-control-ui";
export const CLIENT_MODE = "webchat";
export const ROLE = "operator";
export const SCOPES = ["operator.admin", "operator.approvals", "operator.pairing"];
// 4008: an application close code (browsers refuse to send 1008).
const CONNECT_FAILED = 4008;

function readStored(key) {
  try {
    const raw = localStorage.getItem(key) ?? (LEGACY[key] ? localStorage.getItem(LEGACY[key]) : null);
    return raw ? JSON.parse(raw) : null;
  } catch { return null; }
}

function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function b64urlDecode(s) {
  const n = s.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(n + "=".repeat((4 - (n.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function sha256Hex(bytes) {
  const d = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The raw key pair as upstream stores it (base64url raw public key and 32-byte seed). */
async function importIdentity(stored) {
  const jwk = { kty: "OKP", crv: "Ed25519", x: stored.publicKey, d: stored.privateKey, ext: true };
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  const deviceId = await sha256Hex(b64urlDecode(stored.publicKey));
  return { deviceId, publicKey: stored.publicKey, key };
}

/** Loads the browser's device identity, creating and storing one on first use. */
export async function loadOrCreateIdentity() {
  const stored = readStored(IDENTITY_KEY);
  if (stored && stored.version === 1 && stored.publicKey && stored.privateKey) {
    try {
      const id = await importIdentity(stored);
      if (id.deviceId !== stored.deviceId || !localStorage.getItem(IDENTITY_KEY)) {
        localStorage.setItem(IDENTITY_KEY, JSON.stringify({ ...stored, deviceId: id.deviceId }));
      }
      return id;
    } catch { /* unusable: make a new one */ }
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const record = { version: 1, publicKey: jwk.x, privateKey: jwk.d, createdAtMs: Date.now() };
  const id = await importIdentity(record);
  localStorage.setItem(IDENTITY_KEY, JSON.stringify({ ...record, deviceId: id.deviceId }));
  return id;
}

/** This browser's device id, if it has an identity yet. */
export function storedDeviceId() {
  const stored = readStored(IDENTITY_KEY);
  return stored && typeof stored.deviceId === "string" ? stored.deviceId : null;
}

export function loadDeviceToken(deviceId, role) {
  const store = readStored(DEVICE_AUTH_KEY);
  if (!store || store.version !== 1 || store.deviceId !== deviceId) return null;
  const entry = store.tokens && store.tokens[role];
  return entry && typeof entry.token === "string" ? entry.token : null;
}

export function storeDeviceToken(deviceId, role, token, scopes) {
  const prev = readStored(DEVICE_AUTH_KEY);
  const tokens = prev && prev.deviceId === deviceId ? { ...prev.tokens } : {};
  tokens[role] = { token, role, scopes: [...new Set(scopes || [])].sort(), updatedAtMs: Date.now() };
  localStorage.setItem(DEVICE_AUTH_KEY, JSON.stringify({ version: 1, deviceId, tokens }));
}

export function clearDeviceToken(deviceId, role) {
  const prev = readStored(DEVICE_AUTH_KEY);
  if (!prev || prev.deviceId !== deviceId || !prev.tokens || !prev.tokens[role]) return;
  const tokens = { ...prev.tokens };
  delete tokens[role];
  localStorage.setItem(DEVICE_AUTH_KEY, JSON.stringify({ ...prev, tokens }));
}

/** The v2 string upstream's `buildDeviceAuthPayload` signs (v1 when there is no nonce). */
export function devicePayload({ deviceId, signedAt, token, nonce }) {
  const base = [nonce ? "v2" : "v1", deviceId, CLIENT_ID, CLIENT_MODE, ROLE, SCOPES.join(","), String(signedAt), token || ""];
  if (nonce) base.push(nonce);
  return base.join("|");
}

async function signedDevice(identity, token, nonce) {
  const signedAt = Date.now();
  const data = new TextEncoder().encode(devicePayload({ deviceId: identity.deviceId, signedAt, token, nonce }));
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, identity.key, data);
  return { id: identity.deviceId, publicKey: identity.publicKey, signature: b64url(sig), signedAt, nonce: nonce || undefined };
}

/** Errors that retrying with the same credentials cannot fix. */
export function isAuthError(message) {
  const m = String(message || "").toLowerCase();
  return m.includes("unauthorized") || m.includes("secure context") || m.includes("device identity required")
    || m.includes("origin not allowed") || m.includes("device signature") || m.includes("protocol mismatch");
}

export class GatewayClient {
  /** opts: {url, token, password, onHello, onEvent, onClose, onConnectError} */
  constructor(opts) {
    this.opts = opts;
    this.pending = new Map();
    this.backoff = 800;
    this.stopped = false;
    this.ws = null;
  }

  start() { this.stopped = false; this.open(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close();
    this.ws = null;
    this.failPending(new Error("gateway client stopped"));
  }

  get connected() { return Boolean(this.hello) && this.ws && this.ws.readyState === WebSocket.OPEN; }

  open() {
    if (this.stopped) return;
    this.hello = null;
    this.nonce = null;
    this.connectSent = false;
    this.holdRetry = false;
    let ws;
    try { ws = new WebSocket(this.opts.url); } catch (err) {
      this.opts.onClose?.({ code: 0, reason: String(err.message || err) });
      return this.scheduleRetry();
    }
    this.ws = ws;
    ws.onopen = () => { this.connectTimer = setTimeout(() => this.sendConnect(), 750); };
    ws.onmessage = (ev) => this.onMessage(ws, String(ev.data || ""));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hello = null;
      clearTimeout(this.connectTimer);
      this.failPending(new Error(`gateway closed (${ev.code}): ${ev.reason}`));
      this.opts.onClose?.({ code: ev.code, reason: ev.reason || "" });
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    if (this.stopped || this.holdRetry) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 1.7, 15000);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  failPending(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async identity() {
    // crypto.subtle exists only in secure contexts (HTTPS, localhost, 127.0.0.1).
    if (!window.isSecureContext || !crypto.subtle) return null;
    try { return await loadOrCreateIdentity(); } catch { return null; }
  }

  async sendConnect() {
    if (this.connectSent || !this.ws) return;
    this.connectSent = true;
    clearTimeout(this.connectTimer);
    const ws = this.ws;
    const { token, password } = this.opts;
    const identity = await this.identity();
    const stored = identity ? loadDeviceToken(identity.deviceId, ROLE) : null;
    const authToken = stored || token || undefined;
    const params = {
      minProtocol: 3, maxProtocol: 3,
      client: { id: CLIENT_ID, version: "dev", platform: navigator.platform || "web", mode: CLIENT_MODE, instanceId: this.opts.instanceId },
      role: ROLE, scopes: SCOPES, caps: [],
      auth: authToken || password ? { token: authToken, password: password || undefined } : undefined,
      userAgent: navigator.userAgent, locale: navigator.language,
    };
    if (identity) params.device = await signedDevice(identity, authToken, this.nonce);
    try {
      const hello = await this.request("connect", params, ws);
      if (hello && hello.auth && hello.auth.deviceToken && identity) {
        storeDeviceToken(identity.deviceId, hello.auth.role || ROLE, hello.auth.deviceToken, hello.auth.scopes);
      }
      this.backoff = 800;
      this.hello = hello;
      this.opts.onHello?.(hello);
    } catch (err) {
      // A stored device token that no longer works is dropped; the next try uses the shared one.
      if (stored && identity) clearDeviceToken(identity.deviceId, ROLE);
      else if (isAuthError(err.message)) this.holdRetry = true;
      this.opts.onConnectError?.(err);
      if (this.ws === ws) ws.close(CONNECT_FAILED, "connect failed");
    }
  }

  onMessage(ws, raw) {
    let frame;
    try { frame = JSON.parse(raw); } catch { return; }
    if (frame.type === "event") {
      if (frame.event === "connect.challenge") {
        if (frame.payload && typeof frame.payload.nonce === "string") this.nonce = frame.payload.nonce;
        this.sendConnect();
        return;
      }
      try { this.opts.onEvent?.(frame); } catch (err) { console.error("[gateway] event handler", err); }
      return;
    }
    if (frame.type !== "res") return;
    const p = this.pending.get(frame.id);
    if (!p) return;
    this.pending.delete(frame.id);
    if (frame.ok) p.resolve(frame.payload);
    else {
      const e = frame.error || {};
      const err = new Error(e.message || "request failed");
      err.code = e.code;
      err.details = e.details;
      p.reject(err);
    }
  }

  /** Sends a request; resolves with its payload, rejects with an Error carrying code/details. */
  request(method, params, ws = this.ws) {
    if (!ws || ws.readyState !== WebSocket.OPEN || (method !== "connect" && !this.hello)) {
      return Promise.reject(new Error("gateway not connected"));
    }
    const id = uuid();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }
}
