package cutoverapi

import "strings"

// The OpenAPI 3.1 fragment of the cutover routes: Paths and Schemas merge
// into the query service's document (/v1/openapi.json). A test checks
// every route is described and every real answer matches its schema.

func obj(required []string, props map[string]any) map[string]any {
	return map[string]any{"type": "object", "required": required, "properties": props}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func arr(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func nullable(t string) map[string]any { return map[string]any{"type": []any{t, "null"}} }

var (
	str   = map[string]any{"type": "string"}
	tim   = map[string]any{"type": "string", "format": "date-time"}
	num   = map[string]any{"type": "number"}
	integ = map[string]any{"type": "integer"}
	boo   = map[string]any{"type": "boolean"}
	phase = map[string]any{"type": "string", "enum": []any{"legacy", "dual-write", "shadow-read", "influx-primary", "influx-only"}}
)

// Schemas returns the component schemas the paths refer to (all prefixed
// Cutover, clear of the API's own names).
func Schemas() map[string]any {
	return map[string]any{
		"CutoverState": obj([]string{"phase", "version", "since", "actor", "reason", "legacy_role", "influx_role", "reads_served_by", "reads_shadowed_by", "phases"}, map[string]any{
			"phase": phase, "version": integ, "since": tim, "actor": str, "reason": str, "legacy_role": str, "influx_role": str,
			"reads_served_by": str, "reads_shadowed_by": map[string]any{"type": "string", "description": "empty when no store shadows"}, "phases": arr(phase)}),
		"CutoverAuditEntry": obj([]string{"id", "at", "actor", "kind", "from", "to", "version", "reason", "forced"}, map[string]any{
			"id": integ, "at": tim, "actor": str, "kind": str, "from": phase, "to": phase, "version": integ, "reason": str, "forced": boo,
			"gates": arr(obj([]string{"name", "ok", "detail"}, map[string]any{"name": str, "ok": boo, "detail": str})), "detail": map[string]any{}}),
		"CutoverNextStep": obj([]string{"from", "gates", "gates_passed", "check_command"}, map[string]any{
			"from": phase, "to": phase, "gates_passed": boo, "command": str, "check_command": str, "rollback_to": phase, "rollback_command": str, "note": str,
			"gates": arr(obj([]string{"name", "status", "ok", "detail"}, map[string]any{
				"name": str, "ok": boo, "detail": str, "evaluated_at": tim,
				"status": map[string]any{"type": "string", "enum": []any{GatePass, GateFail, GatePending, GateAtCommand, GateNotEvaluated}}}))}),
		"CutoverConsumers": obj([]string{"live_for", "max_lag", "live", "stale", "laggards", "consumers", "phase", "phase_version"}, map[string]any{
			"live_for": str, "max_lag": str, "live": integ, "stale": integ, "laggards": integ, "phase": phase, "phase_version": integ,
			"consumers": arr(obj([]string{"consumer_id", "host", "phase", "phase_version", "lag_messages", "lag_seconds", "started_at", "beat_at",
				"beat_age_seconds", "applies_current_phase", "stale", "laggard", "flags"}, map[string]any{
				"consumer_id": str, "host": str, "phase": phase, "phase_version": integ, "lag_messages": integ, "lag_seconds": num,
				"started_at": tim, "beat_at": tim, "beat_age_seconds": num, "applies_current_phase": boo, "stale": boo, "laggard": boo, "flags": arr(str)}))}),
		"CutoverGaps": obj([]string{"open", "entries", "repair_commands"}, map[string]any{
			"open":            map[string]any{"type": "object", "additionalProperties": integ},
			"repair_commands": map[string]any{"type": "object", "additionalProperties": str},
			"entries": arr(obj([]string{"id", "sink", "unit", "from", "to", "readings", "reason", "consumer_id", "created_at"}, map[string]any{
				"id": integ, "sink": str, "unit": str, "from": tim, "to": tim, "readings": integ, "reason": str, "consumer_id": str, "created_at": tim,
				"repaired_at": tim, "repaired_by": str}))}),
		"CutoverBackfillRun": obj([]string{"run_id", "started_at", "from_ledger", "state", "fraction", "points_written", "points_total", "windows_done", "windows_total",
			"points_per_second", "rate_limit_points_per_second"}, map[string]any{
			"run_id": str, "started_at": tim, "finished_at": tim, "from": tim, "to": tim, "from_ledger": boo,
			"state":    map[string]any{"type": "string", "enum": []any{"running", "finished", "not-reporting"}},
			"fraction": map[string]any{"type": "number", "minimum": 0, "maximum": 1}, "points_written": integ, "points_total": integ,
			"windows_done": integ, "windows_total": integ, "points_per_second": num, "eta_seconds": num, "throttle_state": str, "throttle_reason": str,
			"rate_limit_points_per_second": num, "progress_at": tim, "command": str}),
		"CutoverVerify": obj([]string{"age_seconds", "window_text", "command"}, map[string]any{
			"id": integ, "at": tim, "actor": str, "from": tim, "to": tim, "window": integ, "windows": integ, "mismatched": integ,
			"mismatch_rate": num, "ok": boo, "detail": map[string]any{}, "age_seconds": num, "window_text": str, "command": str}),
		"CutoverShadowStats": obj([]string{"comparisons", "mismatches", "errors", "mismatch_rate", "endpoints"}, map[string]any{
			"phase_version": integ, "comparisons": integ, "mismatches": integ, "errors": integ, "mismatch_rate": num,
			"endpoints": arr(obj([]string{"phase", "phase_version", "endpoint", "comparisons", "mismatches", "errors", "first_at", "last_at"}, map[string]any{
				"phase": phase, "phase_version": integ, "endpoint": str, "comparisons": integ, "mismatches": integ, "errors": integ, "first_at": tim, "last_at": tim}))}),
		"CutoverShadow": obj([]string{"recording", "current", "all", "latest"}, map[string]any{
			"recording": boo, "current": ref("CutoverShadowStats"), "all": ref("CutoverShadowStats"),
			"latest": arr(obj([]string{"id", "at", "phase", "phase_version", "endpoint", "params", "primary_store", "shadow_store", "path", "primary_value", "shadow_value"}, map[string]any{
				"id": integ, "at": tim, "phase": phase, "phase_version": integ, "endpoint": str, "params": str, "primary_store": str, "shadow_store": str,
				"path": str, "primary_value": str, "shadow_value": str}))}),
		"CutoverOverview": obj([]string{"at", "state", "timeline", "next", "consumers", "gaps", "backfills", "verify", "shadow"}, map[string]any{
			"at": tim, "state": ref("CutoverState"), "timeline": map[string]any{"type": []any{"array", "null"}, "items": ref("CutoverAuditEntry")},
			"next": oneOrNull("CutoverNextStep"), "consumers": oneOrNull("CutoverConsumers"), "gaps": oneOrNull("CutoverGaps"),
			"backfills": map[string]any{"type": []any{"array", "null"}, "items": ref("CutoverBackfillRun")},
			"verify":    oneOrNull("CutoverVerify"), "shadow": oneOrNull("CutoverShadow"),
			"errors": map[string]any{"type": "object", "additionalProperties": str,
				"description": "sections that could not be read, by name; the others are still shown"}}),
	}
}

func oneOrNull(name string) map[string]any {
	return map[string]any{"oneOf": []any{ref(name), map[string]any{"type": "null"}}}
}

// route describes each route: its schema, summary and query parameters.
var routeDocs = map[string]struct {
	schema, summary string
	params          []string
}{
	"overview":  {"CutoverOverview", "every section of the console's cutover page, read in one pass", []string{"limit", "examples"}},
	"state":     {"CutoverState", "the phase, since when, by whom, and each store's role", nil},
	"timeline":  {"CutoverAuditEntry", "the phase changes from the audit log, newest first", []string{"limit"}},
	"gates":     {"CutoverNextStep", "the next step's gates, each pass/fail with its detail, and the command to run next (the recent verify is cached)", nil},
	"consumers": {"CutoverConsumers", "consumers seen lately: applied phase, lag, last heartbeat; stale and lagging ones flagged", nil},
	"gaps":      {"CutoverGaps", "open gap-ledger entries, oldest first, and the commands that repair them", []string{"limit"}},
	"backfills": {"CutoverBackfillRun", "backfill runs, newest first: progress, rate, throttle state, ETA", []string{"limit"}},
	"verify":    {"CutoverVerify", "the latest recorded verify", nil},
	"shadow":    {"CutoverShadow", "shadow-read comparisons: counts, mismatch rate, the latest mismatches with both values", []string{"examples"}},
}

var paramDocs = map[string]map[string]any{
	"limit": {"name": "limit", "in": "query", "description": "most entries to list (default 50)",
		"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxLimit}},
	"examples": {"name": "examples", "in": "query", "description": "most mismatch examples to list (default 10)",
		"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxExamples}},
}

// ResponseSchema names the schema of a route's 200 answer ("Cutover..."),
// an array of it for the list routes.
func ResponseSchema(name string) map[string]any {
	d := routeDocs[name]
	if name == "timeline" || name == "backfills" {
		return arr(ref(d.schema))
	}
	return ref(d.schema)
}

// Paths returns the OpenAPI path items of every route.
func Paths() map[string]any {
	out := map[string]any{}
	for name, d := range routeDocs {
		var params []any
		for _, p := range d.params {
			params = append(params, paramDocs[p])
		}
		responses := map[string]any{
			"200": map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": ResponseSchema(name)}}},
		}
		for code, why := range map[string]string{"400": "a parameter is wrong", "401": "no or a wrong bearer token", "503": "the state store did not answer (Retry-After)"} {
			responses[code] = map[string]any{"description": why, "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
		}
		op := map[string]any{"operationId": "cutover" + strings.ToUpper(name[:1]) + name[1:], "summary": d.summary, "tags": []any{"cutover"}, "responses": responses}
		if len(params) > 0 {
			op["parameters"] = params
		}
		out[Prefix+name] = map[string]any{"get": op}
	}
	return out
}
