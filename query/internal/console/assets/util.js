// Small DOM and formatting helpers. Every text goes through textContent:
// nothing from the API is ever parsed as HTML.

const SVGNS = "http://www.w3.org/2000/svg";

// h builds an element: h("td", {class: "num"}, "42"). Attributes whose value
// is null, undefined or false are left out; children may be strings,
// numbers, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  return fill(el, attrs, children);
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// card is a section of a page.
export function card(title, opts, ...children) {
  return h("section", {class: "card" + (opts.wide ? " wide" : ""), "aria-labelledby": opts.id + "-h", id: opts.id, "data-testid": opts.id},
    h("h2", {id: opts.id + "-h"}, title), ...children);
}

// table renders rows; cols are {label, num?, cell(row) -> child}; rowAttrs(row) adds attributes.
export function table(caption, cols, rows, rowAttrs) {
  if (!rows || rows.length === 0) return h("p", {class: "empty"}, "none");
  return h("div", {class: "table-wrap"}, h("table", {},
    h("caption", {class: "muted small", hidden: !caption}, caption || ""),
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", {scope: "col", class: c.num ? "num" : null}, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {}, cols.map((c) => h("td", {class: c.num ? "num" : null}, c.cell(r))))))));
}

// command shows a command with a copy button; the console never runs it.
export function command(cmd, label) {
  if (!cmd) return null;
  const code = h("code", {"data-testid": "command"}, cmd);
  const btn = h("button", {type: "button", "aria-label": "Copy the command " + cmd}, "Copy");
  btn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(cmd);
      btn.textContent = "Copied";
    } catch {
      const r = document.createRange();
      r.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      btn.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { btn.textContent = "Copy"; }, 2000);
  });
  return h("div", {class: "cmd", title: label || "Run this in a terminal"}, code, btn);
}

export function badge(text, kind) {
  return h("span", {class: "badge " + (kind || text)}, text);
}

export function fmtTime(t) {
  if (!t) return "—";
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:00Z$/, ":00Z");
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return s + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  if (s < 172800) return (s / 3600).toFixed(1) + "h";
  return (s / 86400).toFixed(1) + "d";
}

export function ago(t, now) {
  if (!t) return "—";
  return fmtAge(((now ? new Date(now) : new Date()) - new Date(t)) / 1000) + " ago";
}

export function fmtNum(v, digits) {
  if (v === null || v === undefined || isNaN(v)) return "—";
  const d = digits === undefined ? 2 : digits;
  return Number(v).toLocaleString("en-US", {maximumFractionDigits: d});
}

export function pct(v) {
  if (v === null || v === undefined || isNaN(v)) return "—";
  return (v * 100).toLocaleString("en-US", {maximumFractionDigits: 3}) + "%";
}
