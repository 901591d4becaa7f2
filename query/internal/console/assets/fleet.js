// The fleet page (per-site SoC and power over time, units reporting, the
// alarms, the units list) and the unit page (its series and its latest
// reading), drawn from /v1/fleet, /v1/units, /v1/alarms and /v1/units/{unit}/...
import {h, card, table, badge, fmtTime, fmtNum, ago} from "./util.js";
import {lineChart} from "./chart.js";

const enc = encodeURIComponent;

function rangeQuery(r) {
  return `from=${enc(r.from.toISOString())}&to=${enc(r.to.toISOString())}&step=${r.step}`;
}

// bySite turns fleet points into one series per site of field.
function bySite(points, field) {
  const sites = new Map();
  for (const p of points) {
    if (!sites.has(p.site)) sites.set(p.site, []);
    const v = p[field];
    if (v !== undefined && v !== null) sites.get(p.site).push({t: Date.parse(p.time), v});
  }
  return [...sites.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, pts]) => ({name, points: pts}));
}

export async function fleetPage(ctx) {
  const r = ctx.range, q = rangeQuery(r);
  const fleetURL = `/v1/fleet?${q}`;
  const [fleet, units, alarms] = await Promise.all([
    ctx.api(fleetURL),
    ctx.api("/v1/units"),
    ctx.api(`/v1/alarms?from=${enc(r.from.toISOString())}&to=${enc(r.to.toISOString())}&limit=200`),
  ]);
  const from = Date.parse(fleet.from), to = Date.parse(fleet.to);
  const recent = units.units.filter((u) => Date.now() - Date.parse(u.last_reading) < 15 * 60e3).length;
  const sites = new Set(units.units.map((u) => u.site));
  return [
    card("Fleet", {id: "fleet-summary", wide: true},
      h("div", {class: "stats"},
        h("div", {}, h("b", {"data-testid": "unit-count"}, units.units.length), "units"),
        h("div", {}, h("b", {}, recent), "reported in the last 15 min"),
        h("div", {}, h("b", {}, sites.size), "sites"),
        h("div", {}, h("b", {}, alarms.alarms.length + (alarms.next_cursor ? "+" : "")), "alarms in range")),
      h("p", {class: "muted small"}, `${fmtTime(fleet.from)} → ${fmtTime(fleet.to)}, one point per site every ${fleet.step}; ${fleet.points.length} points.`)),
    card("State of charge by site", {id: "fleet-soc"},
      lineChart({key: "fleet-soc", source: fleetURL, title: "Mean state of charge by site", unit: "%", series: bySite(fleet.points, "soc_pct_mean"), from, to, digits: 1})),
    card("Power by site", {id: "fleet-power"},
      lineChart({key: "fleet-power", source: fleetURL, title: "Total power by site", unit: "kW", series: bySite(fleet.points, "power_kw"), from, to, digits: 1})),
    card("Units reporting", {id: "fleet-units"},
      lineChart({key: "fleet-units", source: fleetURL, title: "Units reporting by site", unit: "units", series: bySite(fleet.points, "units"), from, to, digits: 0})),
    card("Alarms", {id: "fleet-alarms"}, alarmsTable(alarms.alarms, true)),
    card("Units", {id: "units", wide: true}, table("Latest reading time per unit; open a unit for its series", [
      {label: "unit", cell: (u) => h("a", {href: "#/unit/" + enc(u.unit)}, u.unit)},
      {label: "site", cell: (u) => u.site || "—"},
      {label: "model", cell: (u) => u.model || "—"},
      {label: "last reading", cell: (u) => `${fmtTime(u.last_reading)} (${ago(u.last_reading)})`},
    ], units.units.slice(0, 500))),
  ];
}

function alarmsTable(alarms, withUnit) {
  const newest = [...alarms].reverse().slice(0, 100);
  return h("div", {class: "scroll"}, table(`Newest first${alarms.length > newest.length ? `, ${newest.length} of ${alarms.length}` : ""}`, [
    {label: "time", cell: (a) => fmtTime(a.time)},
    withUnit ? {label: "unit", cell: (a) => h("a", {href: "#/unit/" + enc(a.unit)}, a.unit)} : null,
    {label: "site", cell: (a) => a.site || "—"},
    {label: "code", cell: (a) => h("code", {}, a.code)},
    {label: "severity", cell: (a) => badge(a.severity, a.severity === "critical" || a.severity === "alarm" ? "bad" : "warn")},
    {label: "text", cell: (a) => a.text},
  ].filter(Boolean), newest));
}

const UNIT_FIELDS = ["soc_pct", "power_kw", "voltage_v", "current_a"];

export async function unitPage(ctx, unit) {
  const r = ctx.range, u = enc(unit);
  const seriesURL = `/v1/units/${u}/series?${rangeQuery(r)}&fields=${UNIT_FIELDS.join(",")}&agg=mean`;
  const [latest, series, alarms] = await Promise.all([
    ctx.api(`/v1/units/${u}/latest`),
    ctx.api(seriesURL),
    ctx.api(`/v1/alarms?unit=${u}&from=${enc(r.from.toISOString())}&to=${enc(r.to.toISOString())}&limit=100`),
  ]);
  const from = Date.parse(series.from), to = Date.parse(series.to);
  const one = (field) => [{name: field, points: series.points.filter((p) => p[field] !== undefined).map((p) => ({t: Date.parse(p.time), v: p[field]}))}];
  return [
    card(`Unit ${unit}`, {id: "unit-latest"},
      h("p", {class: "muted small"}, h("a", {href: "#/fleet"}, "← fleet"), ` · latest reading ${fmtTime(latest.time)} (${ago(latest.time)})`),
      h("dl", {class: "kv", "data-testid": "latest"}, flatten(latest).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    card("State of charge", {id: "unit-soc"},
      lineChart({key: "unit-soc", source: seriesURL, title: `State of charge of ${unit} (${series.agg} per ${series.step})`, unit: "%", series: one("soc_pct"), from, to, digits: 1})),
    card("Power", {id: "unit-power"},
      lineChart({key: "unit-power", source: seriesURL, title: `Power of ${unit} (${series.agg} per ${series.step})`, unit: "kW", series: one("power_kw"), from, to, digits: 2})),
    card("Voltage", {id: "unit-voltage"},
      lineChart({key: "unit-voltage", source: seriesURL, title: `Voltage of ${unit} (${series.agg} per ${series.step})`, unit: "V", series: one("voltage_v"), from, to, digits: 1})),
    card("Current", {id: "unit-current"},
      lineChart({key: "unit-current", source: seriesURL, title: `Current of ${unit} (${series.agg} per ${series.step})`, unit: "A", series: one("current_a"), from, to, digits: 1})),
    card("Alarms", {id: "unit-alarms"}, alarmsTable(alarms.alarms, false)),
  ];
}

function flatten(rec) {
  const out = [];
  for (const [k, v] of Object.entries(rec)) {
    if (k === "alarms") out.push([k, v.map((a) => `${a.code} (${a.severity}) ${a.text}`).join("; ")]);
    else if (v && typeof v === "object") for (const [k2, v2] of Object.entries(v)) out.push([`${k}.${k2}`, typeof v2 === "number" ? fmtNum(v2, 4) : String(v2)]);
    else out.push([k, typeof v === "number" ? fmtNum(v, 6) : String(v)]);
  }
  return out;
}
