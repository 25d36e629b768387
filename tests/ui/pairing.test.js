// Logs and pairing: a line the test caused shows up in the followed tail (and obeys the
// filters); a new remote device is approved from the Nodes tab and then connects; DM pairing
// requests are approved (written to the allow store) and rejected.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { startGateway, launchBrowser, newPage, openConnected, screenshot, eventually, defaultConfig, TOKEN } from "./harness.js";

let gw, browser;

before(async () => {
  const gateway = (port) => `{ mode: "local", controlUi: { allowedOrigins: ["http://gw.test:${port}"] } }`;
  gw = await startGateway({ config: ({ port, logFile }) => defaultConfig({ logFile, gateway: gateway(port) }) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

/** A raw WebSocket upgrade with a foreign Origin: the gateway refuses it and logs why. */
function refusedUpgrade(origin) {
  return new Promise((resolve) => {
    const s = net.connect(gw.port, "127.0.0.1", () => {
      s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`);
    });
    s.on("data", () => {});
    s.on("close", resolve);
    s.on("error", resolve);
    setTimeout(() => { s.destroy(); resolve(); }, 3000);
  });
}

test("the logs tab follows the tail and filters by level and text", async () => {
  const page = await newPage(browser);
  await openConnected(page, gw, "/logs");
  const logs = page.locator("[data-testid=logs]");
  await logs.getByText("listening on ws://127.0.0.1").first().waitFor();
  const marker = `http://ui-log-${Date.now()}.test`;
  await refusedUpgrade(marker);
  const line = logs.locator(".log", { hasText: marker });
  await line.waitFor({ timeout: 10000 });
  assert.match(await line.textContent(), /WARN \[ws\] origin not allowed conn=\d+ origin=http:\/\/ui-log-\d+\.test/);
  await page.getByLabel("Filter logs").fill(marker);
  assert.equal(await logs.locator(".log").count(), 1);
  await page.getByLabel("Minimum level").selectOption("error");
  assert.equal(await logs.locator(".log").count(), 0, "a warning is hidden at error+");
  await page.getByLabel("Minimum level").selectOption("warn");
  assert.equal(await logs.locator(".log").count(), 1);
  await screenshot(page, "logs-filtered");
  await page.context().close();
});

test("a new remote browser is approved from the Nodes tab and then connects", async () => {
  const origin = `http://gw.test:${gw.port}`;
  const remote = await launchBrowser(["--host-resolver-rules=MAP gw.test 127.0.0.1", `--unsafely-treat-insecure-origin-as-secure=${origin}`]);
  const phone = await newPage(remote);
  await phone.goto(`${origin}/?token=${TOKEN}`);
  await phone.locator("#banner").getByText(/pairing required/).waitFor();
  await phone.locator("#banner").getByText(/This browser is a new device/).waitFor();
  await screenshot(phone, "pairing-required");

  const admin = await newPage(browser);
  await openConnected(admin, gw, "/nodes");
  const pending = admin.locator(".item[data-request]");
  await pending.first().waitFor();
  assert.equal(await pending.count(), 1);
  await screenshot(admin, "nodes-pending-device");
  await pending.getByRole("button", { name: "Approve" }).click();
  await admin.getByText(/^Approved /).waitFor();
  await eventually(async () => (await phone.locator("#status").textContent()) === "connected", 20000, "approved browser connects");
  const paired = JSON.parse(fs.readFileSync(path.join(gw.state, "devices", "paired.json"), "utf8"));
  const deviceId = await phone.evaluate(() => JSON.parse(localStorage.getItem("moltbot-device-identity-v1")).deviceId);
  assert.ok(paired[deviceId], "the device is in paired.json");
  assert.equal(await pending.count(), 0);

  // Revoking the phone's token from the admin page, then rotating it.
  const row = admin.locator(`.item[data-device="${deviceId}"]`);
  await row.locator("[data-role=operator]").getByRole("button", { name: "Revoke" }).click();
  await admin.getByRole("dialog", { name: "Revoke token" }).getByRole("button", { name: "Revoke" }).click();
  await admin.getByText("Revoked the operator token.").waitFor();
  await row.getByText(/operator token · revoked/).waitFor();
  const revoked = JSON.parse(fs.readFileSync(path.join(gw.state, "devices", "paired.json"), "utf8"));
  assert.ok(revoked[deviceId].tokens.operator.revokedAtMs, "revokedAtMs on disk");
  await row.locator("[data-role=operator]").getByRole("button", { name: "Rotate" }).click();
  const shown = admin.getByRole("dialog", { name: "New device token" });
  const token = await shown.getByLabel("New device token").inputValue();
  assert.match(token, /^[0-9a-f]{32}$/);
  await shown.getByRole("button", { name: "Done" }).click();
  await admin.getByText("Rotated the operator token.").waitFor();
  const rotated = JSON.parse(fs.readFileSync(path.join(gw.state, "devices", "paired.json"), "utf8"));
  assert.equal(rotated[deviceId].tokens.operator.token, token);
  await remote.close();
  await admin.context().close();
});

test("DM pairing: approving a code writes the allow store; rejecting does not", async () => {
  const creds = path.join(gw.state, "credentials");
  fs.mkdirSync(creds, { recursive: true });
  const now = new Date().toISOString();
  // What the Telegram channel writes for two unknown senders (upstream's file shape).
  fs.writeFileSync(path.join(creds, "telegram-pairing.json"), JSON.stringify({
    version: 1,
    requests: [
      { id: "123456789", code: "7KQ2MZXA", createdAt: now, lastSeenAt: now, meta: { username: "bob" } },
      { id: "555000111", code: "H3JK9PQR", createdAt: now, lastSeenAt: now },
    ],
  }, null, 2));
  const page = await newPage(browser);
  await openConnected(page, gw, "/nodes");
  const telegram = page.locator("[data-channel=telegram]");
  await telegram.getByText("telegram: 2 pending · 0 allowed").waitFor();
  await screenshot(page, "nodes-dm-pairing");
  await telegram.locator(".item[data-code='7KQ2MZXA']").getByRole("button", { name: "Approve" }).click();
  await page.getByText("Approved telegram sender 123456789.").waitFor();
  await telegram.locator(".item[data-code='H3JK9PQR']").getByRole("button", { name: "Reject" }).click();
  await page.getByText("Rejected H3JK9PQR.").waitFor();
  await telegram.getByText("telegram: 0 pending · 1 allowed").waitFor();
  const allow = JSON.parse(fs.readFileSync(path.join(creds, "telegram-allowFrom.json"), "utf8"));
  assert.deepEqual(allow, { version: 1, allowFrom: ["123456789"] });
  const pendingFile = JSON.parse(fs.readFileSync(path.join(creds, "telegram-pairing.json"), "utf8"));
  assert.deepEqual(pendingFile.requests, []);
  assert.equal(fs.statSync(path.join(creds, "telegram-allowFrom.json")).mode & 0o777, 0o600);
  await page.context().close();
});
