// Connecting: ?token= bootstrap, device identity, wrong token, the ?gatewayUrl= confirmation,
// the Origin allowlist, plain-HTTP hints, the 375 px layout and a screenshot of every tab.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { startGateway, startFakeAnthropic, launchBrowser, newPage, openConnected, screenshot, eventually, sleep, defaultConfig, TOKEN } from "./harness.js";

const TABS = ["chat", "overview", "channels", "instances", "sessions", "cron", "skills", "nodes", "config", "debug", "logs"];
let gw, fake, browser;

before(async () => {
  fake = await startFakeAnthropic();
  const gateway = (port) => `{ mode: "local", controlUi: { allowedOrigins: ["http://gw.test:${port}"] } }`;
  gw = await startGateway({ config: ({ port, logFile }) => defaultConfig({ fake, logFile, gateway: gateway(port) }) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  await fake?.close();
});

test("?token= connects, is stored, and leaves the address bar; the device key signs connect", async () => {
  const page = await newPage(browser);
  await openConnected(page, gw);
  assert.ok(!page.url().includes("token"), `token removed from ${page.url()}`);
  const stored = await page.evaluate(() => ({
    settings: JSON.parse(localStorage.getItem("moltbot.control.settings.v1")),
    identity: JSON.parse(localStorage.getItem("moltbot-device-identity-v1")),
    auth: JSON.parse(localStorage.getItem("moltbot.device.auth.v1")),
  }));
  assert.equal(stored.settings.token, TOKEN);
  assert.match(stored.identity.deviceId, /^[0-9a-f]{64}$/);
  // The gateway verified the Ed25519 signature, paired this loopback browser and issued a token.
  assert.equal(stored.auth.deviceId, stored.identity.deviceId);
  assert.match(stored.auth.tokens.operator.token, /^[0-9a-f]{32}$/);
  await page.reload();
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("Overview shows the snapshot, health and presence", async () => {
  const page = await newPage(browser);
  await openConnected(page, gw, "/overview");
  const stat = (label) => page.locator(".stat", { has: page.locator(".label", { hasText: new RegExp(`^${label}$`) }) }).locator(".value");
  await eventually(async () => (await stat("Health").textContent()) === "OK", 10000, "health OK");
  assert.equal(await stat("Status").textContent(), "Connected");
  assert.match(await stat("Version").textContent(), /^\d+\.\d+\.\d+/);
  assert.equal(await stat("Agents").textContent(), "main (default)");
  const up1 = await stat("Uptime").textContent();
  assert.match(up1, /^\d+(s|m \d+s)$/);
  await eventually(async () => (await stat("Uptime").textContent()) !== up1, 5000, "uptime ticks");
  await page.getByText("No channels configured.").waitFor();
  await page.locator(".card", { hasText: "Presence" }).getByText("moltbot-control-ui").first().waitFor();
  await page.context().close();
});

test("a wrong token shows upstream's refusal and how to fix it", async () => {
  const page = await newPage(browser);
  await page.goto(`${gw.url}/?token=wrong-token`);
  const banner = page.locator("#banner");
  await banner.getByText("unauthorized: gateway token mismatch (open a tokenized dashboard URL or paste token in Control UI settings)").waitFor();
  await banner.getByText(/Auth failed\. Re-copy a tokenized URL/).waitFor();
  await eventually(async () => (await page.locator("#status").textContent()).startsWith("disconnected (1008): unauthorized"), 5000, "pill");
  await screenshot(page, "wrong-token");
  await page.context().close();
});

test("?gatewayUrl= to another port is not followed without confirmation", async () => {
  let connections = 0;
  const trap = net.createServer((s) => { connections++; s.destroy(); });
  await new Promise((r) => trap.listen(0, "127.0.0.1", r));
  const target = `ws://127.0.0.1:${trap.address().port}`;
  const page = await newPage(browser);
  await page.goto(`${gw.url}/?token=${TOKEN}&gatewayUrl=${encodeURIComponent(target)}`);
  const dialog = page.getByRole("dialog", { name: "Change Gateway URL" });
  await dialog.waitFor();
  assert.equal(await dialog.locator("[data-testid=gateway-url-target]").textContent(), target);
  assert.ok(!page.url().includes("gatewayUrl"), page.url());
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  await sleep(1500);
  assert.equal(connections, 0, "nothing connected to the other port while the dialog is open");
  await screenshot(page, "gateway-url-confirm");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await sleep(1000);
  assert.equal(connections, 0, "nothing connected after Cancel");
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem("moltbot.control.settings.v1")).gatewayUrl);
  assert.equal(saved, `ws://127.0.0.1:${gw.port}`);
  await page.context().close();
  trap.close();
});

test("a page on another origin cannot open the gateway's WebSocket", async () => {
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<script>
      window.result = new Promise((resolve) => {
        const got = [];
        const ws = new WebSocket("ws://127.0.0.1:${gw.port}");
        ws.onmessage = (e) => got.push(e.data);
        ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, got });
      });
    </script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const page = await newPage(browser);
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  const result = await page.evaluate(() => window.result);
  assert.equal(result.code, 1008);
  assert.match(result.reason, /^origin not allowed/);
  assert.deepEqual(result.got, [], "no connect.challenge reached the foreign page");
  assert.match(gw.output(), /origin not allowed conn=\d+ origin=http:\/\/127\.0\.0\.1:\d+/);
  await page.context().close();
  evil.close();
});

test("responses carry CSP, X-Frame-Options and nosniff; assets are gzip-compressed", async () => {
  const res = await fetch(`${gw.url}/sessions`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(res.status, 200);
  const csp = res.headers.get("content-security-policy");
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/]+=*'/);
  assert.ok(!csp.includes("unsafe-inline"), csp);
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  assert.equal(res.headers.get("content-encoding"), "gzip");
  assert.match(await res.text(), /__CLAWDBOT_CONTROL_UI_BASE_PATH__=""/);
  const js = await fetch(`${gw.url}/sessions/assets/app.js`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(js.headers.get("content-type"), "application/javascript; charset=utf-8");
  assert.equal(js.headers.get("content-encoding"), "gzip");
  const plain = await fetch(`${gw.url}/assets/app.js`, { headers: { "accept-encoding": "identity" } });
  assert.equal(plain.headers.get("content-encoding"), null);
});

test("over plain HTTP from a non-loopback name the page explains the secure-context rule", async () => {
  const lan = await launchBrowser(["--host-resolver-rules=MAP gw.test 127.0.0.1"]);
  const page = await newPage(lan);
  await page.goto(`http://gw.test:${gw.port}/?token=${TOKEN}`);
  const banner = page.locator("#banner");
  await banner.getByText("control ui requires HTTPS or localhost (secure context)").waitFor();
  await banner.getByText(/This page is HTTP, so the browser blocks device identity/).waitFor();
  await banner.getByText("gateway.controlUi.allowInsecureAuth: true").waitFor();
  await screenshot(page, "insecure-context");
  await lan.close();
});

test("every tab renders; screenshots; a 375 px viewport never scrolls sideways", async () => {
  const desktop = await newPage(browser);
  await openConnected(desktop, gw);
  const mobile = await newPage(browser, { viewport: { width: 375, height: 740 } });
  await openConnected(mobile, gw);
  for (const tab of TABS) {
    for (const [page, prefix] of [[desktop, "tab"], [mobile, "mobile"]]) {
      await page.locator(`#tabs a[data-tab=${tab}]`).click();
      await page.waitForFunction((t) => location.pathname === "/" + t, tab);
      await sleep(400);
      await screenshot(page, `${prefix}-${tab}`);
    }
    const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${tab} is ${width}px wide at 375px`);
  }
  assert.deepEqual(desktop.errors, []);
  assert.deepEqual(mobile.errors, []);
  await desktop.context().close();
  await mobile.context().close();
});
