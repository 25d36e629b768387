// The Config tab: secrets redacted and kept through a save, a saved edit, a stale base hash
// refused, and an invalid edit reported by path without touching the file.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startGateway, launchBrowser, newPage, openConnected, screenshot, eventually, sleep } from "./harness.js";

const SECRET = "sk-ant-file-secret-0123456789";
let gw, browser;

before(async () => {
  gw = await startGateway({
    config: ({ logFile }) => `{
  // the UI test's config
  gateway: { mode: "local" },
  agents: { defaults: { thinkingDefault: "off", timeoutSeconds: 30 } },
  models: { providers: { anthropic: { baseUrl: "http://127.0.0.1:9", apiKey: "${SECRET}", models: [] } } },
  logging: { file: "${logFile}" },
}
`,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

const editor = (page) => page.getByLabel("Config (JSON5)");

async function openConfig(page) {
  await openConnected(page, gw, "/config");
  await eventually(async () => (await editor(page).inputValue()).includes("timeoutSeconds"), 10000, "config text");
}

async function edit(page, from, to) {
  const text = await editor(page).inputValue();
  assert.ok(text.includes(from), `editor has ${from}`);
  await editor(page).fill(text.replace(from, to));
}

test("secrets are redacted in the editor and survive a save; the edit lands on disk", async () => {
  const page = await newPage(browser);
  await openConfig(page);
  const text = await editor(page).inputValue();
  assert.ok(!text.includes(SECRET), "the API key is not shown");
  assert.ok(text.includes('apiKey: "__OPENCLAW_REDACTED__"'), text);
  assert.ok(!(await page.content()).includes(SECRET));
  await edit(page, "timeoutSeconds: 30", "timeoutSeconds: 45");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText("Saved.", { exact: true }).waitFor();
  const disk = JSON.parse(fs.readFileSync(gw.configPath, "utf8"));
  assert.equal(disk.agents.defaults.timeoutSeconds, 45);
  assert.equal(disk.models.providers.anthropic.apiKey, SECRET, "secret kept intact");
  await screenshot(page, "config-saved");
  await page.context().close();
});

test("a save over a file changed elsewhere is refused and the other edit is kept", async () => {
  const page = await newPage(browser);
  await openConfig(page);
  await edit(page, '"off"', '"low"');
  // Someone else edits the file after the page loaded it.
  const other = fs.readFileSync(gw.configPath, "utf8").replace(/"timeoutSeconds":\s*\d+/, '"timeoutSeconds": 50');
  assert.ok(other.includes('"timeoutSeconds": 50'));
  fs.writeFileSync(gw.configPath, other);
  // Let the gateway's file watcher pick it up (a reload may reconnect the page).
  await sleep(2500);
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText("config changed since last load; re-run config.get and retry").waitFor();
  await page.getByText(/Someone changed the file since you loaded it/).waitFor();
  assert.equal(fs.readFileSync(gw.configPath, "utf8"), other, "not overwritten");
  await screenshot(page, "config-stale");
  await page.context().close();
});

test("an invalid edit shows the issue's path and leaves the file alone", async () => {
  const page = await newPage(browser);
  await openConfig(page);
  const before = fs.readFileSync(gw.configPath, "utf8");
  const text = await editor(page).inputValue();
  await editor(page).fill(text.replace(/"timeoutSeconds":\s*\d+/, '"timeoutSeconds": "soon"'));
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.locator("[data-testid=config-error]", { hasText: /^invalid config$/ }).waitFor();
  const issues = page.locator("[data-testid=config-issues]");
  await issues.getByText("agents.defaults.timeoutSeconds").waitFor();
  assert.match(await issues.textContent(), /agents\.defaults\.timeoutSeconds: .*number/i);
  assert.equal(fs.readFileSync(gw.configPath, "utf8"), before, "file unchanged");
  await screenshot(page, "config-invalid");
  await page.context().close();
});
