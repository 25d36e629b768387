// The UI under gateway.controlUi.basePath: redirect to the slash form, assets and tab routes
// below the base, and an avatar file from the agent's workspace.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startGateway, launchBrowser, newPage, screenshot, TOKEN } from "./harness.js";

let gw, browser;

before(async () => {
  gw = await startGateway({
    config: ({ logFile }) => `{
  gateway: { mode: "local", controlUi: { basePath: "/console/" } },
  agents: { defaults: { workspace: "${path.dirname(logFile)}/ws" }, list: [{ id: "main", identity: { name: "Molty", avatar: "me.svg" } }] },
  logging: { file: "${logFile}" },
}`,
  });
  fs.mkdirSync(path.join(gw.state, "ws"), { recursive: true });
  fs.writeFileSync(path.join(gw.state, "ws", "me.svg"), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

test("the app lives under the base path, with the avatar route beside it", async () => {
  const bare = await fetch(`${gw.url}/console?x=1`, { redirect: "manual" });
  assert.equal(bare.status, 302);
  assert.equal(bare.headers.get("location"), "/console/?x=1");
  assert.equal((await fetch(`${gw.url}/chat`)).status, 404, "outside the base path");
  const page = await newPage(browser);
  await page.goto(`${gw.url}/console/sessions?token=${TOKEN}`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  assert.equal(await page.locator("#tabs a[data-tab=logs]").getAttribute("href"), "/console/logs");
  await page.locator("#tabs a[data-tab=config]").click();
  await page.waitForFunction(() => location.pathname === "/console/config");
  assert.equal(await page.evaluate(() => window.__CLAWDBOT_ASSISTANT_AVATAR__), "/console/avatar/main");
  assert.equal(await page.evaluate(() => window.__CLAWDBOT_ASSISTANT_NAME__), "Molty");
  const meta = await (await fetch(`${gw.url}/console/avatar/main?meta=1`)).json();
  assert.deepEqual(meta, { avatarUrl: "/console/avatar/main" });
  const img = await fetch(`${gw.url}/console/avatar/main`);
  assert.equal(img.headers.get("content-type"), "image/svg+xml");
  assert.match(await img.text(), /^<svg/);
  await screenshot(page, "basepath-config");
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
