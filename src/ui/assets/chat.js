// The Chat tab: a session picker, the transcript from chat.history (Markdown, thinking blocks
// collapsed, tool calls as one-liners), the streamed reply from `chat` delta events, Stop
// (chat.abort) and errors shown where the reply would have been.

import { h, fill, errorText, uuid } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

/** The text blocks of a message (string content or [{type:"text", text}]). */
export function messageText(msg) {
  if (!msg) return "";
  if (typeof msg.content === "string") return msg.content;
  if (!Array.isArray(msg.content)) return typeof msg.text === "string" ? msg.text : "";
  return msg.content.filter((b) => b && b.type === "text").map((b) => b.text || "").join("\n");
}

function block(b) {
  if (!b || typeof b !== "object") return null;
  if (b.type === "text") return h("div", { class: "md" }, renderMarkdown(b.text));
  if (b.type === "thinking") {
    return h("details", { class: "thinking" }, h("summary", {}, "Thinking"), h("div", { class: "md" }, renderMarkdown(b.thinking || b.text || "")));
  }
  if (b.type === "toolCall" || b.type === "tool_use") {
    const args = b.arguments ?? b.input;
    return h("div", { class: "tool" }, `⚙ ${b.name || "tool"}(${args ? JSON.stringify(args).slice(0, 200) : ""})`);
  }
  if (b.type === "image") return h("div", { class: "muted small" }, "[image]");
  return null;
}

function messageNode(msg, assistantName) {
  const role = msg.role || "assistant";
  if (role === "toolResult" || role === "tool") {
    return h("div", { class: "msg tool-result" }, h("details", {},
      h("summary", { class: "tool" }, `Tool result${msg.toolName ? ": " + msg.toolName : ""}`),
      h("pre", {}, messageText(msg).slice(0, 4000))));
  }
  const stopped = role === "assistant" && msg.stopReason === "aborted" ? " · stopped" : "";
  const who = (role === "user" ? "You" : role === "assistant" ? assistantName : role) + stopped;
  const body = typeof msg.content === "string"
    ? [h("div", { class: "md" }, renderMarkdown(msg.content))]
    : (msg.content || []).map(block);
  const error = msg.stopReason === "error" && msg.errorMessage ? h("div", { class: "bad-text small" }, msg.errorMessage) : null;
  return h("div", { class: `msg ${role}`, "data-role": role }, h("div", { class: "who" }, who), body, error);
}

export function chatView(app, el) {
  const s = { key: app.settings.sessionKey || "main", messages: [], runId: null, stream: null, error: null, stopped: null, sessions: [] };
  const picker = h("select", { "aria-label": "Session", onchange: () => switchTo(picker.value) });
  const list = h("div", { class: "messages", "aria-live": "polite" });
  const input = h("textarea", { placeholder: "Message (Enter to send, Shift+Enter for a new line)", rows: 2, "aria-label": "Message" });
  const sendBtn = h("button", { class: "primary", onclick: () => send() }, "Send");
  const stopBtn = h("button", { class: "danger", hidden: true, onclick: () => stop() }, "Stop");
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  fill(el, h("div", { class: "chat" },
    h("div", { class: "chat-bar" }, picker,
      h("button", { onclick: () => newSession() }, "New session"),
      h("button", { onclick: () => load() }, "Refresh")),
    list,
    h("div", { class: "composer" }, input, sendBtn, stopBtn)));

  function render() {
    const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
    const nodes = s.messages.map((m) => messageNode(m, app.assistantName));
    if (!nodes.length && !s.stream && !s.error) nodes.push(h("div", { class: "empty" }, "No messages yet. Say hello."));
    if (s.stopped) nodes.push(h("div", { class: "msg assistant aborted" }, h("div", { class: "who" }, app.assistantName + " · stopped"), h("div", { class: "md" }, renderMarkdown(s.stopped))));
    if (s.stream != null) {
      nodes.push(h("div", { class: "msg assistant streaming", "data-testid": "stream" },
        h("div", { class: "who" }, app.assistantName), h("div", { class: "md" }, renderMarkdown(s.stream))));
    }
    if (s.error) nodes.push(h("div", { class: "msg error", role: "alert" }, h("div", { class: "who" }, "Error"), s.error));
    fill(list, nodes);
    stopBtn.hidden = !s.runId;
    sendBtn.disabled = !app.connected;
    if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  function renderPicker() {
    const keys = s.sessions.map((r) => r.key);
    const options = s.sessions.map((r) => h("option", { value: r.key }, r.label || r.displayName || r.key));
    if (!keys.some((k) => app.sameSession(k, s.key))) options.unshift(h("option", { value: s.key }, s.key));
    fill(picker, options);
    picker.value = keys.find((k) => app.sameSession(k, s.key)) || s.key;
  }

  async function load() {
    if (!app.connected) return render();
    try {
      const res = await app.request("chat.history", { sessionKey: s.key, limit: 200 });
      s.messages = Array.isArray(res && res.messages) ? res.messages : [];
      // A stopped reply the gateway kept in the transcript is shown from there.
      const last = s.messages[s.messages.length - 1];
      if (s.stopped && last && last.role === "assistant") { last.stopReason = "aborted"; s.stopped = null; }
    } catch (err) {
      s.error = errorText(err);
    }
    render();
    loadSessions();
  }

  async function loadSessions() {
    try {
      const res = await app.request("sessions.list", { includeGlobal: true, includeUnknown: false, limit: 120 });
      s.sessions = (res && res.sessions) || [];
    } catch { s.sessions = []; }
    renderPicker();
  }

  function switchTo(key) {
    s.key = key;
    s.runId = null; s.stream = null; s.error = null; s.stopped = null; s.messages = [];
    app.saveSettings({ sessionKey: key, lastActiveSessionKey: key });
    renderPicker();
    load();
  }

  function newSession() {
    const d = app.hello && app.hello.snapshot && app.hello.snapshot.sessionDefaults;
    const agent = (d && d.defaultAgentId) || "main";
    const key = `agent:${agent}:ui-${uuid().slice(0, 8)}`;
    s.sessions = [{ key, label: "New session" }, ...s.sessions];
    switchTo(key);
    input.focus();
  }

  async function send() {
    const text = input.value.trim();
    if (!text || !app.connected) return;
    const runId = uuid();
    input.value = "";
    s.error = null; s.stopped = null;
    s.messages.push({ role: "user", content: [{ type: "text", text }], timestamp: Date.now() });
    s.runId = runId;
    s.stream = "";
    render();
    try {
      const res = await app.request("chat.send", { sessionKey: s.key, message: text, deliver: false, idempotencyKey: runId });
      if (res && res.aborted !== undefined) { s.runId = null; s.stream = null; load(); }
    } catch (err) {
      s.runId = null; s.stream = null;
      s.error = errorText(err);
      render();
    }
  }

  async function stop() {
    if (!s.runId) return;
    try {
      await app.request("chat.abort", { sessionKey: s.key, runId: s.runId });
    } catch (err) {
      s.error = errorText(err);
      render();
    }
  }

  function onChat(p) {
    if (!p || !app.sameSession(p.sessionKey, s.key)) return;
    if (p.state === "delta") {
      if (s.runId && p.runId !== s.runId) return;
      s.runId = p.runId;
      s.stream = messageText(p.message);
      return render();
    }
    if (s.runId && p.runId !== s.runId) return load();
    const partial = s.stream;
    s.runId = null; s.stream = null;
    if (p.state === "error") s.error = p.errorMessage || "The run failed.";
    if (p.state === "aborted") s.stopped = partial || "(stopped before any text)";
    load();
  }

  const off = app.on((event, payload) => {
    if (event === "hello") load();
    else if (event === "chat") onChat(payload);
    else if (event === "close") { if (s.runId) { s.runId = null; s.stream = null; } render(); }
  });
  render();
  if (app.connected) load();
  return { destroy: off };
}
