// A small Markdown renderer that builds DOM nodes directly (no HTML strings): fenced code,
// headings, lists, quotes, paragraphs; inline code, bold, italic, links (http, https, mailto).
// Raw HTML in model output stays visible text.

import { h } from "./dom.js";

/** Renders `src` into a DocumentFragment. */
export function renderMarkdown(src) {
  const frag = document.createDocumentFragment();
  const lines = String(src ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)/);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      frag.append(h("pre", {}, h("code", fence[2] ? { "data-lang": fence[2] } : {}, body.join("\n"))));
      continue;
    }
    if (!line.trim()) { i++; continue; }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      frag.append(h("h" + Math.min(heading[1].length + 2, 6), {}, inline(heading[2])));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      frag.append(h("blockquote", {}, renderMarkdown(quoted.join("\n"))));
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/;
    if (bullet.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = h(ordered ? "ol" : "ul", {});
      while (i < lines.length && bullet.test(lines[i])) {
        let text = lines[i++].replace(bullet, "");
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !bullet.test(lines[i])) text += "\n" + lines[i++].trim();
        list.append(h("li", {}, inline(text)));
      }
      frag.append(list);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !/^\s*(```|~~~|#{1,6}\s|>)/.test(lines[i]) && !bullet.test(lines[i])) {
      para.push(lines[i++]);
    }
    frag.append(h("p", {}, inline(para.join("\n"))));
  }
  return frag;
}

const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\s][^*]*?)\*|\b_([^_\s][^_]*?)_\b|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])|\n/g;

/** Inline markup → an array of nodes and strings. */
export function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) out.push(h("code", {}, m[2]));
    else if (m[3] || m[4]) out.push(h("strong", {}, inline(m[3] || m[4])));
    else if (m[5] || m[6]) out.push(h("em", {}, inline(m[5] || m[6])));
    else if (m[7]) out.push(link(m[7], m[8]));
    else if (m[9]) out.push(link(m[9], m[9]));
    else out.push(h("br", {}));
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Only web and mail links become anchors; anything else (javascript:, data:) stays text. */
function link(label, href) {
  let url;
  try { url = new URL(href); } catch { return `[${label}](${href})`; }
  if (!["http:", "https:", "mailto:"].includes(url.protocol)) return `[${label}](${href})`;
  return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, label === href ? label : inline(label));
}
