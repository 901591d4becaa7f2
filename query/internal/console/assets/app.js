// The console's shell: hash routes (#/cutover, #/fleet, #/unit/ID), the
// API client (bearer token from session storage), the time-range picker
// and the auto-refresh loop. Pages return their content; the shell swaps it
// in, keeping open table views open across refreshes.
import {h} from "./util.js";
import {cutoverPage} from "./cutover.js";
import {fleetPage, unitPage} from "./fleet.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "cutover-console-token";
let timer = null, seq = 0;

class APIError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path) {
  const headers = {Accept: "application/json"};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, {headers, cache: "no-store"});
  const body = await res.json().catch(() => null);
  if (res.status === 401 || res.status === 403) {
    $("token-form").hidden = false;
    throw new APIError(res.status, "the query API wants a bearer token: enter one above");
  }
  if (!res.ok) throw new APIError(res.status, (body && (body.detail || body.title)) || `${path}: HTTP ${res.status}`);
  return body;
}

function setPhase(st) {
  const b = $("phase-badge");
  b.textContent = st.phase;
  b.title = `phase ${st.phase} (version ${st.version}) since ${st.since} by ${st.actor}`;
  b.dataset.phase = st.phase;
}

function route() {
  const parts = (location.hash || "#/cutover").slice(2).split("/");
  const name = parts[0] || "cutover";
  if (name === "fleet") return {name, page: fleetPage};
  if (name === "unit" && parts[1]) return {name: "fleet", page: (ctx) => unitPage(ctx, decodeURIComponent(parts.slice(1).join("/")))};
  return {name: "cutover", page: cutoverPage};
}

function rangeParams() {
  const r = $("range").value, hours = parseInt(r, 10);
  const to = new Date(), from = new Date(to.getTime() - hours * 3600e3);
  // The step keeps a chart near 300 points or fewer: a multiple of the
  // stores' 5-minute rollups.
  const step = hours <= 1 ? "5m" : hours <= 6 ? "5m" : hours <= 24 ? "15m" : hours <= 168 ? "1h" : "3h";
  return {from, to, step, hours};
}

async function refresh() {
  clearTimeout(timer);
  if (document.hidden) return; // a hidden tab asks nothing; it refreshes when shown again
  const my = ++seq, r = route();
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.page === r.name ? "page" : "false"));
  $("range").disabled = r.name === "cutover"; // the cutover page shows the state now, not a range
  $("range").title = r.name === "cutover" ? "the cutover page shows the state now; the range applies to the fleet and unit pages" : "";
  const status = $("status");
  try {
    const ctx = {api, setPhase, range: rangeParams()};
    if (r.name !== "cutover") api("/v1/cutover/state").then(setPhase).catch(() => {});
    const content = await r.page(ctx);
    if (my !== seq) return; // a newer refresh started meanwhile
    swap(content);
    status.className = "status";
    status.textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC" + ($("auto").checked ? `, refreshing every ${$("every").selectedOptions[0].text}` : "");
  } catch (e) {
    if (my !== seq) return;
    status.className = "status error";
    status.textContent = "Could not refresh: " + e.message + " (the page shows the last good data)";
  } finally {
    if (my === seq && $("auto").checked) timer = setTimeout(refresh, parseInt($("every").value, 10));
  }
}

function swap(content) {
  const main = $("main");
  const open = new Set([...main.querySelectorAll("details[open][data-keep]")].map((d) => d.dataset.keep));
  const frag = document.createDocumentFragment();
  for (const c of [content].flat(3)) if (c) frag.appendChild(c);
  frag.querySelectorAll("details[data-keep]").forEach((d) => { if (open.has(d.dataset.keep)) d.open = true; });
  main.replaceChildren(frag);
}

function init() {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-btn").addEventListener("click", () => { $("token-form").hidden = !$("token-form").hidden; });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("token").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    $("token-form").hidden = true;
    refresh();
  });
  const params = new URLSearchParams(location.search);
  if (params.get("range")) $("range").value = params.get("range");
  if (params.get("every")) {
    const opt = [...$("every").options].find((o) => o.value === params.get("every"));
    if (opt) $("every").value = opt.value; else $("every").appendChild(h("option", {value: params.get("every"), selected: true}, params.get("every") + " ms"));
  }
  for (const id of ["range", "auto", "every"]) $(id).addEventListener("change", refresh);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.addEventListener("hashchange", () => { $("main").replaceChildren(); refresh(); });
  refresh();
}

init();
