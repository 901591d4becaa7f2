// Plain SVG charts. Each chart has an accessible name (role="img" with
// aria-label and a <title>) and a table view of the same numbers, and draws
// one marker (class "pt") per data point, so a test can count them.
import {h, s, fmtTime, fmtNum} from "./util.js";

const W = 640, H = 220, M = {l: 48, r: 12, t: 10, b: 26};

function niceTicks(min, max, n) {
  if (!(max > min)) { max = min + 1; }
  const span = max - min, step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => span / st <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function timeTicks(t0, t1, n) {
  const span = t1 - t0;
  const steps = [1e3, 5e3, 15e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 864e5, 2 * 864e5, 7 * 864e5];
  const step = steps.find((st) => span / st <= n) || 30 * 864e5;
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
}

function timeLabel(t, span) {
  const iso = new Date(t).toISOString();
  if (span > 2 * 864e5) return iso.slice(5, 10) + (span < 10 * 864e5 ? " " + iso.slice(11, 16) : "");
  if (span < 600e3) return iso.slice(11, 19);
  return iso.slice(11, 16);
}

// lineChart draws series [{name, points: [{t: ms, v: number|null}]}] over
// [from, to] (ms). key names the chart for tests and for keeping its table
// view open across refreshes.
export function lineChart({key, title, unit, series, from, to, digits, source}) {
  const all = series.flatMap((se) => se.points.filter((p) => p.v !== null && p.v !== undefined));
  const n = all.length;
  const t0 = from ?? Math.min(...all.map((p) => p.t)), t1 = to ?? Math.max(...all.map((p) => p.t));
  let vmin = Math.min(...all.map((p) => p.v)), vmax = Math.max(...all.map((p) => p.v));
  if (!isFinite(vmin)) { vmin = 0; vmax = 1; }
  if (vmin === vmax) { vmin -= 1; vmax += 1; }
  const yt = niceTicks(vmin, vmax, 4);
  const y0 = Math.min(vmin, yt[0]), y1 = Math.max(vmax, yt[yt.length - 1]);
  const x = (t) => M.l + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - M.l - M.r);
  const y = (v) => H - M.b - (v - y0) / (y1 - y0) * (H - M.t - M.b);
  const first = n ? fmtTime(Math.min(...all.map((p) => p.t))) : "", last = n ? fmtTime(Math.max(...all.map((p) => p.t))) : "";
  const label = `${title}: ${series.length} series, ${n} points` + (n ? ` from ${first} to ${last}, values ${fmtNum(vmin)} to ${fmtNum(vmax)}${unit ? " " + unit : ""}` : "") + ". A table view follows.";
  const svg = s("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, "data-chart": key, "data-points": n},
    s("title", {}, label),
    yt.map((v) => [s("line", {class: "grid", x1: M.l, x2: W - M.r, y1: y(v), y2: y(v)}),
      s("text", {x: M.l - 6, y: y(v) + 4, "text-anchor": "end"}, fmtNum(v, 1))]),
    timeTicks(t0, t1, 8).map((t) => s("text", {x: x(t), y: H - 8, "text-anchor": "middle"}, timeLabel(t, t1 - t0))),
    series.map((se, i) => {
      const pts = se.points.filter((p) => p.v !== null && p.v !== undefined);
      const d = pts.map((p, j) => (j ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join("");
      return s("g", {class: "c" + (i % 8), "data-series": se.name},
        pts.length > 1 ? s("path", {class: "line", d}) : null,
        pts.map((p) => s("circle", {class: "pt", cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: pts.length > 300 ? 1.2 : 2.2})));
    }));
  const legend = series.length > 1 ? h("ul", {class: "legend", "aria-hidden": "true"}, series.map((se, i) => h("li", {}, h("i", {class: "c" + (i % 8)}), se.name))) : null;
  return h("figure", {"data-figure": key, "data-source": source},
    h("figcaption", {}, title + (unit ? ` (${unit})` : "")),
    n ? svg : h("p", {class: "empty"}, "no data in this range"),
    legend,
    tableView(key, title, series, digits));
}

function tableView(key, title, series, digits) {
  const times = [...new Set(series.flatMap((se) => se.points.map((p) => p.t)))].sort((a, b) => a - b);
  const byName = series.map((se) => new Map(se.points.map((p) => [p.t, p.v])));
  return h("details", {"data-keep": "table-" + key},
    h("summary", {}, `Table view of ${title} (${times.length} rows)`),
    h("div", {class: "table-wrap"}, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "time (UTC)"), series.map((se) => h("th", {scope: "col", class: "num"}, se.name)))),
      h("tbody", {}, times.map((t) => h("tr", {}, h("td", {}, fmtTime(t)), byName.map((m) => h("td", {class: "num"}, fmtNum(m.get(t), digits)))))))));
}

// timelineChart draws the phases over time from the audit log (oldest
// first): one band per phase held, forced changes marked.
export function timelineChart({key, entries, phases, now}) {
  const segs = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i], end = i + 1 < entries.length ? new Date(entries[i + 1].at).getTime() : now;
    segs.push({phase: e.to, from: new Date(e.at).getTime(), to: end, forced: e.forced, kind: e.kind, actor: e.actor});
  }
  const label = segs.length
    ? "Phase timeline: " + segs.map((g) => `${g.phase} from ${fmtTime(g.from)} (${g.kind} by ${g.actor}${g.forced ? ", forced" : ""})`).join("; ") + "."
    : "Phase timeline: no phase change recorded yet.";
  const TH = 64, t0 = segs.length ? segs[0].from : now - 3600e3, t1 = Math.max(now, t0 + 1);
  const x = (t) => M.l + (t - t0) / (t1 - t0) * (W - M.l - M.r);
  const svg = s("svg", {class: "chart timeline", viewBox: `0 0 ${W} ${TH}`, role: "img", "aria-label": label, "data-chart": key, "data-points": segs.length},
    s("title", {}, label),
    segs.map((g) => s("rect", {class: "pt ph" + Math.max(0, phases.indexOf(g.phase)) + (g.forced ? " forced" : ""), x: x(g.from).toFixed(1), y: 8,
      width: Math.max(2, x(g.to) - x(g.from)).toFixed(1), height: 26, rx: 3}, s("title", {}, `${g.phase} since ${fmtTime(g.from)}${g.forced ? " (forced)" : ""}`))),
    timeTicks(t0, t1, 6).map((t) => s("text", {x: x(t), y: TH - 10, "text-anchor": "middle"}, timeLabel(t, t1 - t0))));
  const legend = h("ul", {class: "legend", "aria-hidden": "true"}, phases.map((p, i) => h("li", {}, h("i", {class: "ph" + i}), p)));
  return h("figure", {"data-figure": key}, svg, legend);
}
