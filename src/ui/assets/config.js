// The Config tab: the raw JSON5 file from config.get (secrets shown as the redaction
// placeholder), validation issues by path, Save (config.set) and Apply (config.apply) with the
// base hash, so an edit made elsewhere since the load is reported instead of overwritten.

import { h, fill, card, callout, errorText, confirmDialog } from "./dom.js";

const PLACEHOLDER = "__OPENCLAW_REDACTED__";

function issueList(issues) {
  if (!Array.isArray(issues) || !issues.length) return null;
  return h("ul", { class: "issues", "data-testid": "config-issues" },
    issues.map((i) => h("li", {}, h("strong", {}, i.path || "(root)"), ": ", i.message || "")));
}

export function configView(app, el) {
  const editor = h("textarea", { class: "code", spellcheck: "false", "aria-label": "Config (JSON5)" });
  const meta = h("div", { class: "muted small" }), status = h("div", {});
  const save = h("button", { class: "primary", onclick: () => write("config.set") }, "Save");
  const apply = h("button", { onclick: () => write("config.apply") }, "Apply & restart");
  let snapshot = null;
  editor.addEventListener("input", () => renderMeta());
  fill(el, h("h2", {}, "Config"), card(null,
    h("div", { class: "row" }, h("button", { onclick: () => load() }, "Reload"), save, apply, meta),
    status, editor,
    h("p", { class: "muted small" }, `Secrets are shown as ${PLACEHOLDER}; leave it in place to keep the stored value.`)));

  function dirty() { return snapshot && editor.value !== (snapshot.raw ?? ""); }

  function renderMeta() {
    if (!snapshot) return fill(meta, "");
    fill(meta, [snapshot.path, snapshot.exists ? null : "(new file)", snapshot.valid ? "valid" : "invalid", dirty() ? "unsaved changes" : null].filter(Boolean).join(" · "));
  }

  /** Loads the file; `quiet` (after a reconnect) keeps the last status message. */
  async function load(quiet) {
    if (!quiet && dirty() && !(await confirmDialog({ title: "Discard edits?", body: h("p", {}, "Reloading replaces your unsaved edits with the file on disk."), confirm: "Reload", danger: true }))) return;
    try {
      snapshot = await app.request("config.get", {});
      editor.value = snapshot.raw ?? "";
      const problems = [snapshot.valid ? null : callout("danger", "The config file on disk is invalid:", issueList(snapshot.issues)),
        snapshot.raw == null && snapshot.exists ? callout("warn", "The file does not parse, so its text is not shown (it may hold secrets). Fix it on the gateway host.") : null];
      if (!quiet || problems.some(Boolean)) fill(status, problems);
    } catch (err) {
      // A quiet reload that loses the connection is retried after the reconnect.
      if (!quiet) fill(status, callout("danger", errorText(err)));
    }
    renderMeta();
  }

  async function write(method) {
    if (!snapshot) return;
    if (method === "config.apply" && !(await confirmDialog({ title: "Apply config", body: h("p", {}, "Save and restart the gateway? Connected clients reconnect."), confirm: "Apply" }))) return;
    const params = { raw: editor.value };
    if (snapshot.hash) params.baseHash = snapshot.hash;
    if (method === "config.apply") params.sessionKey = app.settings.sessionKey;
    save.disabled = apply.disabled = true;
    try {
      await app.request(method, params);
    } catch (err) {
      const stale = /changed since last load|base hash/.test(err.message);
      save.disabled = apply.disabled = false;
      return fill(status, callout("danger", h("div", { "data-testid": "config-error" }, errorText(err)),
        stale ? h("div", { class: "small" }, "Someone changed the file since you loaded it. Copy your edits, click Reload, and apply them again.") : null,
        issueList(err.details && err.details.issues)));
    }
    fill(status, callout("ok", method === "config.apply" ? "Saved; the gateway is restarting." : "Saved."));
    // The written file gets a new hash (and the gateway may restart to pick it up): reload it
    // now, or after the reconnect if the gateway is already gone.
    snapshot = { ...snapshot, raw: editor.value, hash: null };
    save.disabled = apply.disabled = false;
    try { await load(true); } catch { /* reloaded on the next hello */ }
  }

  const off = app.on((event) => { if (event === "hello" && !dirty()) load(true); });
  if (app.connected) load();
  return { destroy: off };
}
