// Test harness for the Control UI browser tests: the real gateway binary with a temp state dir
// and token, a fake Anthropic Messages server speaking the streaming SSE wire format on
// loopback, Debian's chromium through playwright-core, and screenshot output.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(repo, "target");
export const binary = process.env.MOLTBOT_BIN || path.join(targetDir, "debug", "moltbot");
export const screenshotDir = path.join(targetDir, "ui-screenshots");
export const TOKEN = "ui-test-token-" + Math.random().toString(36).slice(2, 10);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A fake Anthropic `/v1/messages` endpoint. Each request takes the next queued reply (or an
 *  echo of the last user text) and streams it as text_delta events `delayMs` apart; a reply
 *  with `status` is answered as that HTTP error with `body`. */
export async function startFakeAnthropic() {
  const queue = [];
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      let parsed = {};
      try { parsed = JSON.parse(body); } catch { /* keep {} */ }
      requests.push({ url: req.url, headers: req.headers, body: parsed });
      if (req.method !== "POST" || !req.url.endsWith("/v1/messages")) {
        res.writeHead(404).end();
        return;
      }
      const reply = queue.shift() || { chunks: echoChunks(parsed), delayMs: 30 };
      if (reply.status) {
        res.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.body));
        return;
      }
      await streamReply(res, parsed.model || "claude-test", reply);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    push: (reply) => queue.push(reply),
    clear: () => queue.splice(0),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

function echoChunks(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const last = msgs.filter((m) => m.role === "user").pop();
  const text = last ? (typeof last.content === "string" ? last.content : (last.content || []).map((b) => b.text || "").join(" ")) : "";
  return ["Echo: ", text.slice(-200)];
}

async function streamReply(res, model, reply) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  let closed = false;
  res.on("close", () => (closed = true));
  const send = (event, data) => { if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
  send("message_start", { type: "message_start", message: { id: "msg_ui", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } } });
  let index = 0;
  if (reply.thinking) {
    send("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "" } });
    send("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: reply.thinking } });
    send("content_block_delta", { type: "content_block_delta", index, delta: { type: "signature_delta", signature: "sig-ui-test" } });
    send("content_block_stop", { type: "content_block_stop", index });
    index++;
  }
  send("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } });
  send("ping", { type: "ping" });
  for (const chunk of reply.chunks) {
    if (closed) return;
    send("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: chunk } });
    await sleep(reply.delayMs ?? 30);
  }
  send("content_block_stop", { type: "content_block_stop", index });
  send("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: reply.chunks.length } });
  send("message_stop", { type: "message_stop" });
  if (!closed) res.end();
}

/** A free loopback port (closed again; the gateway binds it right after). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts the gateway binary. `config` is JSON5 text (a function gets {port, fake}). */
export async function startGateway({ config, fake, env = {}, port } = {}) {
  if (!fs.existsSync(binary)) throw new Error(`gateway binary missing: ${binary} (run cargo build first)`);
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "mb-ui-"));
  const logFile = path.join(state, "moltbot.log");
  port = port || (await freePort());
  const text = typeof config === "function" ? config({ port, fake, logFile }) : config;
  const configPath = path.join(state, "moltbot.json");
  fs.writeFileSync(configPath, text ?? defaultConfig({ fake, logFile }), { mode: 0o600 });
  const child = spawn(binary, ["gateway", "--port", String(port), "--bind", "loopback"], {
    env: { PATH: process.env.PATH, HOME: state, CLAWDBOT_STATE_DIR: state, CLAWDBOT_GATEWAY_TOKEN: TOKEN, RUST_LOG: "debug,tungstenite=info,tiny_http=info", ANTHROPIC_API_KEY: "sk-ant-ui-test", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const started = new Promise((resolve, reject) => {
    const onData = (d) => {
      output += d;
      if (output.includes("[gateway] listening on ws://")) resolve();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`gateway exited (${code}):\n${output}`)));
    setTimeout(() => reject(new Error(`gateway did not start:\n${output}`)), 15000);
  });
  await started;
  child.on("exit", (code, signal) => {
    if (!stopping) process.stderr.write(`gateway exited unexpectedly (${code ?? signal}):\n${output.slice(-4000)}\n`);
  });
  let stopping = false;
  return {
    port, state, configPath, logFile, child,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    stop: async () => {
      stopping = true;
      if (process.env.UI_DEBUG) process.stderr.write(`--- gateway output ---\n${output}\n`);
      if (child.exitCode == null) {
        child.kill("SIGTERM");
        await new Promise((r) => { child.once("exit", r); setTimeout(r, 3000); });
      }
      fs.rmSync(state, { recursive: true, force: true });
    },
  };
}

/** The usual test config: local mode, the fake provider, a JSON log file for logs.tail. */
export function defaultConfig({ fake, logFile, gateway = '{ mode: "local" }', extra = "" }) {
  const providers = fake ? `models: { providers: { anthropic: { baseUrl: "${fake.url}", models: [] } } },` : "";
  return `{
  // written by tests/ui/harness.js
  gateway: ${gateway},
  agents: { defaults: { thinkingDefault: "off", timeoutSeconds: 30 } },
  ${providers}
  logging: { file: "${logFile}" },
  ${extra}
}
`;
}

export const LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"];

export async function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: [...LAUNCH_ARGS, ...extraArgs] });
}

/** A page whose console errors and uncaught exceptions are collected in `page.errors`. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 850 }, ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  return page;
}

export async function screenshot(page, name) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
}

/** Opens the UI with the token and waits for the connected pill. */
export async function openConnected(page, gw, tabPath = "/") {
  await page.goto(`${gw.url}${tabPath}?token=${encodeURIComponent(TOKEN)}`);
  await page.locator("#status", { hasText: "connected" }).waitFor();
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
}

/** Polls `fn` until it returns a truthy value or `ms` passes. */
export async function eventually(fn, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}: ${last}`);
}

export { sleep };
