// Chat and sessions: a streamed reply rendered as it arrives, Stop mid-stream, history after a
// reload, Markdown without HTML injection, session rename and delete.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startGateway, startFakeAnthropic, launchBrowser, newPage, openConnected, screenshot, eventually, sleep } from "./harness.js";

let gw, fake, browser;

before(async () => {
  fake = await startFakeAnthropic();
  gw = await startGateway({ fake });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  await fake?.close();
});

function sessionsStore() {
  const file = path.join(gw.state, "agents", "main", "sessions", "sessions.json");
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
}

async function send(page, text) {
  await page.getByLabel("Message").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** Samples the streaming bubble's text until the run ends; returns the distinct values seen. */
async function watchStream(page, until) {
  const seen = [];
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    const text = await page.locator("[data-testid=stream] .md").textContent({ timeout: 50 }).catch(() => null);
    if (text && seen[seen.length - 1] !== text) seen.push(text);
    if (await until()) return seen;
    await sleep(40);
  }
  throw new Error("run did not end; saw " + JSON.stringify(seen));
}

test("a reply streams in as chat deltas arrive, then survives a reload", async () => {
  const chunks = ["The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog."];
  fake.push({ chunks, delayMs: 250 });
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await send(page, "tell me about the fox");
  const final = page.locator(".msg.assistant", { hasText: "The quick brown fox jumps over the lazy dog." }).filter({ hasNot: page.locator("[data-testid=stream]") });
  const seen = await watchStream(page, async () => (await final.count()) > 0 && (await page.locator("[data-testid=stream]").count()) === 0);
  const partial = seen.filter((t) => t.length && t !== chunks.join(""));
  assert.ok(partial.length >= 3, `several partial renders before the final one: ${JSON.stringify(seen)}`);
  for (let i = 1; i < partial.length; i++) assert.ok(partial[i].startsWith(partial[i - 1]), `cumulative: ${JSON.stringify(partial)}`);
  await page.locator(".msg.user", { hasText: "tell me about the fox" }).waitFor();
  await screenshot(page, "chat-streamed");
  await page.reload();
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  await page.locator(".msg.user", { hasText: "tell me about the fox" }).waitFor();
  await page.locator(".msg.assistant", { hasText: "The quick brown fox jumps over the lazy dog." }).waitFor();
  assert.equal(fake.requests.at(-1).headers["x-api-key"], "sk-ant-ui-test");
  await page.context().close();
});

test("Stop aborts the run mid-stream", async () => {
  const chunks = Array.from({ length: 60 }, (_, i) => `word${i} `);
  fake.push({ chunks, delayMs: 200 });
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await send(page, "count slowly");
  await eventually(async () => ((await page.locator("[data-testid=stream] .md").textContent({ timeout: 100 })) || "").includes("word3"), 15000, "some streamed words");
  const stop = page.getByRole("button", { name: "Stop" });
  assert.ok(await stop.isVisible());
  await stop.click();
  await page.locator(".msg.assistant", { hasText: "word3" }).locator(".who", { hasText: "stopped" }).first().waitFor();
  await eventually(async () => (await page.locator("[data-testid=stream]").count()) === 0, 10000, "stream gone");
  await sleep(1500);
  const text = await page.locator(".messages").textContent();
  assert.ok(!text.includes("word59"), "the reply did not run to the end");
  assert.ok(!(await stop.isVisible()), "Stop is hidden once the run ended");
  await screenshot(page, "chat-stopped");
  await page.context().close();
});

test("a failing provider is reported where the reply would have been", async () => {
  const denied = { status: 401, body: { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } } };
  for (let i = 0; i < 10; i++) fake.push(denied);
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await send(page, "this will fail");
  const error = page.locator(".msg.error");
  await error.waitFor({ timeout: 20000 });
  const text = await error.textContent();
  assert.ok(text.length > "Error".length, text);
  assert.ok(!text.includes("sk-ant-ui-test"), "no key in the message");
  assert.ok(!(await page.getByRole("button", { name: "Stop" }).isVisible()));
  await screenshot(page, "chat-error");
  await page.context().close();
  fake.clear(); // no queued failure is left for the next test
});

test("model output is rendered as Markdown, never as HTML", async () => {
  fake.push({ chunks: ["**bold** and `code`\n\n", "<img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script>", "\n\n[link](javascript:alert(1))"], delayMs: 50 });
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await send(page, "format something");
  const msg = page.locator(".msg.assistant", { hasText: "and" }).last();
  await msg.locator("strong", { hasText: "bold" }).waitFor();
  await msg.locator("code", { hasText: "code" }).waitFor();
  await msg.getByText("<img src=x", { exact: false }).waitFor();
  assert.equal(await msg.locator("img, script").count(), 0);
  assert.equal(await msg.locator("a[href^=javascript]").count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  await page.context().close();
});

test("thinking blocks are folded away and open on click", async () => {
  fake.push({ thinking: "The user wants a haiku; count syllables carefully.", chunks: ["Old pond, ", "a frog jumps."], delayMs: 40 });
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await send(page, "a haiku please");
  const msg = page.locator(".msg.assistant:not(.streaming)", { hasText: "Old pond, a frog jumps." });
  await msg.waitFor({ timeout: 15000 });
  const details = msg.locator("details.thinking");
  await details.waitFor();
  assert.equal(await details.evaluate((d) => d.open), false, "folded by default");
  assert.ok(!(await msg.getByText("count syllables carefully").isVisible()));
  await details.locator("summary").click();
  await msg.getByText("count syllables carefully").waitFor();
  await page.context().close();
});

test("a session is created, renamed, reset and deleted from the Sessions tab", async () => {
  const page = await newPage(browser);
  await openConnected(page, gw, "/chat");
  await page.getByRole("button", { name: "New session" }).click();
  const key = await page.getByLabel("Session").inputValue();
  assert.match(key, /^agent:main:ui-[0-9a-f]{8}$/);
  await send(page, "hello new session");
  await page.locator(".msg.assistant:not(.streaming)", { hasText: "Echo: hello new session" }).waitFor({ timeout: 15000 });
  await page.locator("#tabs a[data-tab=sessions]").click();
  const row = page.locator(`.item[data-key="${key}"]`);
  await row.waitFor();
  await row.getByLabel(`Label for ${key}`).fill("Fox research");
  await row.getByLabel(`Label for ${key}`).press("Enter");
  await page.getByText(`Label saved for ${key}.`).waitFor();
  await eventually(() => sessionsStore()[key]?.label === "Fox research", 5000, "label on disk");
  await row.getByLabel(`Thinking for ${key}`).selectOption("low");
  await page.getByText(`Thinking set for ${key}.`).waitFor();
  await eventually(() => sessionsStore()[key]?.thinkingLevel === "low", 5000, "thinking on disk");
  const firstId = sessionsStore()[key].sessionId;
  await row.getByRole("button", { name: "Reset" }).click();
  await page.getByRole("dialog", { name: "Reset session" }).getByRole("button", { name: "Reset" }).click();
  await page.getByText(`Reset ${key}.`).waitFor();
  await eventually(() => sessionsStore()[key]?.sessionId && sessionsStore()[key].sessionId !== firstId, 5000, "new sessionId");
  await page.getByLabel("Filter sessions").fill("fox res");
  assert.equal(await page.locator(".item[data-key]").count(), 1);
  await screenshot(page, "sessions-renamed");
  await row.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog", { name: "Delete session" }).getByRole("button", { name: "Delete" }).click();
  await page.getByText(`Deleted ${key}.`).waitFor();
  await eventually(async () => (await row.count()) === 0, 5000, "row gone");
  assert.equal(sessionsStore()[key], undefined, "gone from sessions.json");
  await page.context().close();
});
