// The official `openai` JS SDK against the gateway's /v1/chat/completions.
// Usage: node openai_sdk.mjs <base_url> <token>. Prints `NONSTREAM {json}`, `STREAM {json}` and
// `AUTH <error class> <status>` for the Rust test (tests/it/openai_sdk.rs) to assert.
import OpenAI from "openai";

const [baseURL, token] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: token, maxRetries: 0, timeout: 20000 });

const done = await client.chat.completions.create({
  model: "moltbot",
  messages: [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "Say hello" },
  ],
});
const choice = done.choices[0];
console.log("NONSTREAM " + JSON.stringify({
  id: done.id,
  object: done.object,
  model: done.model,
  role: choice.message.role,
  content: choice.message.content,
  finish_reason: choice.finish_reason,
  total_tokens: done.usage?.total_tokens ?? null,
}));

const stream = await client.chat.completions.create({
  model: "moltbot:main",
  stream: true,
  messages: [{ role: "user", content: "Stream something" }],
});
const parts = [];
const roles = [];
const ids = new Set();
for await (const chunk of stream) {
  ids.add(chunk.id);
  const delta = chunk.choices[0]?.delta ?? {};
  if (delta.role) roles.push(delta.role);
  if (delta.content) parts.push(delta.content);
}
console.log("STREAM " + JSON.stringify({ content: parts.join(""), deltas: parts.length, roles, ids: ids.size }));

const wrong = new OpenAI({ baseURL, apiKey: "not-the-token", maxRetries: 0, timeout: 20000 });
try {
  await wrong.chat.completions.create({ model: "moltbot", messages: [{ role: "user", content: "hi" }] });
  console.log("AUTH no error raised");
  process.exit(1);
} catch (e) {
  if (!(e instanceof OpenAI.AuthenticationError)) throw e;
  console.log(`AUTH ${e.constructor.name} ${e.status}`);
}
