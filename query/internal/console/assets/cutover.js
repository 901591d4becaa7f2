// The cutover page: one /v1/cutover/overview read per refresh.
import {h, card, table, command, badge, fmtTime, fmtAge, ago, fmtNum, pct} from "./util.js";
import {timelineChart} from "./chart.js";

export async function cutoverPage(ctx) {
  const o = await ctx.api("/v1/cutover/overview");
  ctx.setPhase(o.state);
  const errs = o.errors ? Object.entries(o.errors).map(([k, v]) => h("p", {class: "status error"}, `${k}: ${v}`)) : [];
  return [
    ...errs,
    phaseCard(o),
    nextCard(o),
    consumersCard(o),
    shadowCard(o),
    backfillCard(o),
    gapsCard(o),
    verifyCard(o),
    timelineCard(o),
  ];
}

function phaseCard(o) {
  const st = o.state, idx = st.phases.indexOf(st.phase);
  return card("Phase", {id: "phase"},
    h("p", {class: "big", "data-testid": "phase-name"}, st.phase),
    h("ol", {class: "stepper", "aria-label": "Cutover phases"}, st.phases.map((p, i) =>
      h("li", {class: i < idx ? "done" : i === idx ? "current" : null, "aria-current": i === idx ? "step" : null}, p))),
    h("dl", {class: "kv"},
      h("dt", {}, "since"), h("dd", {}, `${fmtTime(st.since)} (${ago(st.since, o.at)})`),
      h("dt", {}, "by"), h("dd", {"data-testid": "phase-actor"}, st.actor),
      h("dt", {}, "reason"), h("dd", {}, st.reason || "—"),
      h("dt", {}, "version"), h("dd", {"data-testid": "phase-version"}, st.version),
      h("dt", {}, "legacy store"), h("dd", {}, st.legacy_role),
      h("dt", {}, "InfluxDB"), h("dd", {}, st.influx_role),
      h("dt", {}, "reads"), h("dd", {"data-testid": "reads-served-by"}, `served by ${st.reads_served_by}` + (st.reads_shadowed_by ? `, compared with ${st.reads_shadowed_by}` : ""))));
}

function nextCard(o) {
  const n = o.next;
  if (!n) return card("Next step", {id: "next"}, h("p", {class: "empty"}, "unavailable"));
  const head = n.to
    ? h("p", {}, `${n.from} → `, h("b", {}, n.to), " ", badge(n.gates_passed ? "gates pass" : "gates refuse", n.gates_passed ? "pass" : "fail"))
    : h("p", {}, "The cutover is complete.");
  return card("Next step", {id: "next"},
    head,
    table("", [
      {label: "gate", cell: (g) => h("code", {}, g.name)},
      {label: "result", cell: (g) => badge(g.status, g.status)},
      {label: "detail", cell: (g) => g.detail},
    ], n.gates, (g) => ({"data-gate": g.name, "data-status": g.status})),
    n.command ? [h("h3", {}, "Run next"), command(n.command, "advances the cutover after re-checking every gate")] : null,
    h("h3", {}, "Check again"), command(n.check_command),
    n.rollback_command ? [h("h3", {}, "Roll back"), command(n.rollback_command, "always allowed, one phase back")] : null,
    n.note ? h("p", {class: "muted small"}, n.note) : null);
}

function consumersCard(o) {
  const c = o.consumers;
  if (!c) return card("Consumers", {id: "consumers"}, h("p", {class: "empty"}, "unavailable"));
  return card("Consumers", {id: "consumers"},
    h("div", {class: "stats"},
      h("div", {}, h("b", {}, c.live), "live"),
      h("div", {}, h("b", {}, c.stale), "stopped beating"),
      h("div", {}, h("b", {"data-testid": "laggard-count"}, c.laggards), "laggards")),
    table(`Live within ${c.live_for}; lag allowed up to ${c.max_lag}. Laggards are highlighted.`, [
      {label: "consumer", cell: (r) => [h("b", {}, r.consumer_id), r.laggard ? [" ", badge("laggard", "bad")] : null]},
      {label: "host", cell: (r) => r.host},
      {label: "applied phase", cell: (r) => [r.phase, h("span", {class: "muted"}, ` v${r.phase_version}`), r.applies_current_phase ? null : [" ", badge("behind", "warn")]]},
      {label: "lag", num: true, cell: (r) => `${fmtNum(r.lag_seconds, 1)}s / ${fmtNum(r.lag_messages, 0)} msgs`},
      {label: "last heartbeat", cell: (r) => [fmtAge(r.beat_age_seconds) + " ago", r.stale ? [" ", badge("stale", "bad")] : null]},
      {label: "why flagged", cell: (r) => r.flags.join("; ") || "—"},
    ], c.consumers, (r) => ({class: r.laggard ? "laggard" : null, "data-consumer": r.consumer_id, "data-laggard": r.laggard ? "true" : "false"})));
}

function shadowCard(o) {
  const sh = o.shadow;
  if (!sh) return card("Shadow reads", {id: "shadow"}, h("p", {class: "empty"}, "unavailable"));
  if (!sh.recording) return card("Shadow reads", {id: "shadow"}, h("p", {class: "empty"}, "No shadow comparisons are recorded by this query service."));
  const cur = sh.current, all = sh.all;
  return card("Shadow reads", {id: "shadow", wide: true},
    h("p", {class: "muted small"}, "Real reads answered by the serving store and, after the response, by the other one, compared. " +
      `Counts of the current phase (version ${o.state.version}), which the gate into influx-primary weighs; ${fmtNum(all.comparisons, 0)} comparisons and ${fmtNum(all.mismatches, 0)} mismatches over every phase.`),
    h("div", {class: "stats"},
      h("div", {}, h("b", {"data-testid": "shadow-comparisons"}, fmtNum(cur.comparisons, 0)), "comparisons"),
      h("div", {}, h("b", {"data-testid": "shadow-mismatches"}, fmtNum(cur.mismatches, 0)), "mismatches"),
      h("div", {}, h("b", {"data-testid": "shadow-rate"}, pct(cur.mismatch_rate)), "mismatch rate"),
      h("div", {}, h("b", {}, fmtNum(cur.errors, 0)), "shadow store errors")),
    table("Per endpoint, current phase", [
      {label: "endpoint", cell: (e) => h("code", {}, e.endpoint)},
      {label: "comparisons", num: true, cell: (e) => fmtNum(e.comparisons, 0)},
      {label: "mismatches", num: true, cell: (e) => fmtNum(e.mismatches, 0)},
      {label: "rate", num: true, cell: (e) => pct(e.comparisons ? e.mismatches / e.comparisons : 0)},
      {label: "errors", num: true, cell: (e) => fmtNum(e.errors, 0)},
      {label: "last", cell: (e) => fmtTime(e.last_at)},
    ], cur.endpoints),
    h("h3", {}, "Latest mismatches"),
    sh.latest.length === 0 ? h("p", {class: "empty"}, "none") : sh.latest.map((m) =>
      h("div", {class: "example", "data-testid": "shadow-example"},
        h("p", {class: "small"}, h("code", {}, m.endpoint), " ", h("code", {}, m.params),
          h("span", {class: "muted"}, ` at ${fmtTime(m.at)} in ${m.phase}; first difference at `), h("code", {}, m.path)),
        h("div", {class: "side"},
          h("div", {}, h("h4", {}, `served by ${m.primary_store}`), sideBySide(m.primary_value, m.shadow_value)),
          h("div", {}, h("h4", {}, `shadow ${m.shadow_store}`), sideBySide(m.shadow_value, m.primary_value))))));
}

// sideBySide shows one store's value; when both are JSON objects, one key a
// line, the keys whose values differ marked.
function sideBySide(mine, theirs) {
  let a, b;
  try { a = JSON.parse(mine); b = JSON.parse(theirs); } catch { return h("pre", {}, mine); }
  if (!a || !b || typeof a !== "object" || typeof b !== "object" || Array.isArray(a)) return h("pre", {}, mine);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return h("pre", {}, keys.filter((k) => k in a).map((k) => {
    const line = `${k}: ${JSON.stringify(a[k])}\n`;
    return JSON.stringify(a[k]) === JSON.stringify(b[k]) ? line : h("mark", {class: "diff"}, line);
  }));
}

function backfillCard(o) {
  const runs = o.backfills || [];
  return card("Backfill runs", {id: "backfills", wide: true}, table("", [
    {label: "run", cell: (r) => [h("code", {}, r.run_id), h("div", {class: "muted small"}, r.from_ledger ? "from the gap ledger" : r.from ? `${fmtTime(r.from)} → ${fmtTime(r.to)}` : "")]},
    {label: "state", cell: (r) => badge(r.state, r.state)},
    {label: "progress", cell: (r) => [h("div", {class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(r.fraction * 100), "aria-label": `run ${r.run_id} progress`}, progressFill(r.fraction)),
      h("div", {class: "small"}, `${pct(r.fraction)} — ${fmtNum(r.points_written, 0)} / ${fmtNum(r.points_total, 0)} points, ${fmtNum(r.windows_done, 0)} / ${fmtNum(r.windows_total, 0)} windows`)]},
    {label: "rate", num: true, cell: (r) => `${fmtNum(r.points_per_second, 0)} pts/s`},
    {label: "throttle", cell: (r) => r.throttle_state ? [badge(r.throttle_state, r.throttle_state), r.throttle_reason ? h("div", {class: "small"}, r.throttle_reason) : null,
      r.rate_limit_points_per_second ? h("div", {class: "small muted"}, `limit ${fmtNum(r.rate_limit_points_per_second, 0)} pts/s`) : null] : "—"},
    {label: "ETA", cell: (r) => r.state === "finished" ? `done ${fmtTime(r.finished_at)}` : r.eta_seconds != null ? fmtAge(r.eta_seconds) : "—"},
    {label: "command", cell: (r) => r.command ? command(r.command, "resumes the run from its checkpoints") : "—"},
  ], runs));
}

function progressFill(f) {
  const span = h("span", {});
  span.style.width = Math.round(Math.min(1, Math.max(0, f)) * 100) + "%"; // CSSOM, allowed by the CSP
  return span;
}

function gapsCard(o) {
  const g = o.gaps;
  if (!g) return card("Open gaps", {id: "gaps"}, h("p", {class: "empty"}, "unavailable"));
  return card("Open gaps", {id: "gaps"},
    h("div", {class: "stats"}, Object.entries(g.open).map(([sink, n]) => h("div", {}, h("b", {}, n), `open for ${sink}`))),
    table("Oldest open gap-ledger entries", [
      {label: "sink", cell: (e) => e.sink},
      {label: "unit", cell: (e) => e.unit},
      {label: "from", cell: (e) => fmtTime(e.from)},
      {label: "to", cell: (e) => fmtTime(e.to)},
      {label: "readings", num: true, cell: (e) => e.readings},
      {label: "reason", cell: (e) => e.reason},
    ], g.entries),
    Object.entries(g.open).filter(([, n]) => n > 0).map(([sink]) => [h("h3", {}, `Repair ${sink}`), command(g.repair_commands[sink])]));
}

function verifyCard(o) {
  const v = o.verify;
  if (!v) return card("Latest verify", {id: "verify"}, h("p", {class: "empty"}, "unavailable"));
  if (!v.id) return card("Latest verify", {id: "verify"}, h("p", {class: "empty"}, "No verify recorded yet."), command(v.command));
  return card("Latest verify", {id: "verify"},
    h("p", {}, badge(v.ok ? "all windows match" : "mismatches", v.ok ? "ok" : "bad"), ` #${v.id} by ${v.actor || "—"}, ${ago(v.at, o.at)}`),
    h("dl", {class: "kv"},
      h("dt", {}, "range"), h("dd", {}, `${fmtTime(v.from)} → ${fmtTime(v.to)}`),
      h("dt", {}, "window"), h("dd", {}, v.window_text),
      h("dt", {}, "windows"), h("dd", {}, fmtNum(v.windows, 0)),
      h("dt", {}, "mismatched"), h("dd", {}, `${fmtNum(v.mismatched, 0)} (${pct(v.mismatch_rate)})`)),
    h("h3", {}, "Verify again"), command(v.command));
}

function timelineCard(o) {
  const entries = [...(o.timeline || [])].reverse();
  const now = new Date(o.at).getTime();
  return card("Phase timeline", {id: "timeline", wide: true},
    timelineChart({key: "timeline", entries, phases: o.state.phases, now}),
    table("Audit log, newest first", [
      {label: "when", cell: (e) => fmtTime(e.at)},
      {label: "who", cell: (e) => e.actor},
      {label: "change", cell: (e) => `${e.kind} ${e.from} → ${e.to}`},
      {label: "forced", cell: (e) => e.forced ? badge("forced", "bad") : "no"},
      {label: "reason", cell: (e) => e.reason || "—"},
      {label: "gates", cell: (e) => (e.gates || []).map((g) => `${g.name} ${g.ok ? "✓" : "✗"}`).join(", ") || "—"},
    ], o.timeline || []));
}
