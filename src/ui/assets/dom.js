// DOM helpers. Every piece of text reaches the page through text nodes or attributes set one by
// one, never through innerHTML, so nothing a gateway or a model returns can inject markup.

/** h("div", {class: "x", onclick: fn}, child, "text", [more]) → an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h3", {}, title) : null, ...children);
}

export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

export function stat(label, value, cls) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label),
    h("div", { class: "value " + (cls || "") }, value));
}

export function callout(kind, ...children) {
  return h("div", { class: "callout " + kind, role: kind === "danger" ? "alert" : null }, ...children);
}

export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

/** "5s ago", "3m ago", "2h ago", "4d ago". */
export function ago(ms) {
  if (!ms) return "n/a";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

/** "1d 2h", "3h 4m", "5m 6s", "7s". */
export function duration(ms) {
  if (ms == null || !isFinite(ms)) return "n/a";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** A random UUID; crypto.randomUUID only exists in secure contexts. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A modal with a message and two buttons; resolves true when confirmed. */
export function confirmDialog({ title, body, confirm = "Confirm", cancel = "Cancel", danger }) {
  const root = document.getElementById("modal");
  return new Promise((resolve) => {
    const done = (v) => { root.hidden = true; root.replaceChildren(); resolve(v); };
    const ok = h("button", { class: danger ? "danger" : "primary", onclick: () => done(true) }, confirm);
    const no = h("button", { onclick: () => done(false) }, cancel);
    fill(root, h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": title },
      h("h3", {}, title), body, h("div", { class: "row end" }, no, ok)));
    root.hidden = false;
    no.focus();
  });
}
