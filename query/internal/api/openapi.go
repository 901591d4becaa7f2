package api

import (
	"encoding/json"
	"maps"
	"net/http"
)

// document is the OpenAPI 3.1 document, assembled from the mounted groups.
type document struct {
	paths   map[string]any
	schemas map[string]any
}

func newDocument() *document {
	return &document{paths: map[string]any{}, schemas: map[string]any{"Problem": problemSchema()}}
}

func (d *document) add(g RouteGroup) {
	maps.Copy(d.paths, g.Paths)
	maps.Copy(d.schemas, g.Schemas)
}

// OpenAPI returns the OpenAPI document as JSON.
func (a *API) OpenAPI() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "query: battery-fleet telemetry",
			"version": "1",
			"description": "Reads telemetry from the store the cutover phase says serves (X-Served-By, X-Cutover-Phase). " +
				"Times are RFC 3339 or a duration before now (24h). Errors are application/problem+json (RFC 9457).",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    a.openapi.paths,
		"components": map[string]any{
			"schemas": a.openapi.schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "a token of --tokens-file; none needed when the service runs open (loopback, no tokens file)"},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (a *API) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	b, err := a.OpenAPI()
	if err != nil {
		WriteProblem(w, a.problemFor(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// Ref returns a JSON reference to a component schema.
func Ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// Operation returns an OpenAPI GET operation answering schema with 200 and
// problems with the listed error statuses.
func Operation(id, summary string, params []any, ok map[string]any, errs ...string) map[string]any {
	responses := map[string]any{"200": map[string]any{"description": "OK", "content": ok}}
	for _, code := range errs {
		responses[code] = map[string]any{"description": problemDescriptions[code], "content": map[string]any{
			"application/problem+json": map[string]any{"schema": Ref("Problem")}}}
	}
	op := map[string]any{"operationId": id, "summary": summary, "responses": responses}
	if len(params) > 0 {
		op["parameters"] = params
	}
	return op
}

var problemDescriptions = map[string]string{
	"400": "a parameter is wrong (the problem's param names it)",
	"401": "no or a wrong bearer token",
	"404": "unknown unit",
	"422": "the range or point count exceeds a limit (the problem's limit says it)",
	"503": "the serving store is down, busy or slow; see Retry-After",
}

// JSONContent is a 200 content map of application/json with schema.
func JSONContent(schema map[string]any) map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": schema}}
}

// QueryParam describes a query parameter.
func QueryParam(name, description string, schema map[string]any) map[string]any {
	return map[string]any{"name": name, "in": "query", "description": description, "schema": schema}
}

func str() map[string]any { return map[string]any{"type": "string"} }

func unitPathParam() map[string]any {
	return map[string]any{"name": "unit", "in": "path", "required": true, "description": "the unit's identifier", "schema": str()}
}

var (
	fromParam   = QueryParam("from", "start of the range, inclusive: RFC 3339 or a duration before now (default: 24h before to)", str())
	toParam     = QueryParam("to", "end of the range, exclusive: RFC 3339, a duration before now, or now (default)", str())
	limitParam  = QueryParam("limit", "most items in the page (default 1000, at most the --max-page limit)", map[string]any{"type": "integer", "minimum": 1})
	cursorParam = QueryParam("cursor", "next_cursor of the previous page, with the same other parameters", str())
)

func telemetryPaths() map[string]any {
	return map[string]any{
		"/v1/units": map[string]any{"get": Operation("listUnits", "units with the site, model and time of their latest reading",
			[]any{QueryParam("site", "only units whose latest reading is from this site", str()), QueryParam("model", "only units of this model", str())},
			JSONContent(Ref("UnitList")), "400", "401", "503")},
		"/v1/units/{unit}/latest": map[string]any{"get": Operation("latestReading", "the unit's latest reading, as the contract's normalised record",
			[]any{unitPathParam()}, JSONContent(Ref("Record")), "400", "401", "404", "503")},
		"/v1/units/{unit}/readings": map[string]any{"get": Operation("readings",
			"raw readings in time order, a page at a time; with Accept: application/x-ndjson the whole range (or limit readings) streams, one record a line",
			[]any{unitPathParam(), fromParam, toParam, limitParam, cursorParam},
			map[string]any{"application/json": map[string]any{"schema": Ref("ReadingsPage")}, NDJSON: map[string]any{"schema": Ref("Record")}},
			"400", "401", "404", "422", "503")},
		"/v1/units/{unit}/series": map[string]any{"get": Operation("series",
			"the unit's fields aggregated per step (buckets from the Unix epoch; the range is widened to whole steps); from the 5-minute rollups when the step is a multiple of 5 minutes and they cover the range",
			[]any{unitPathParam(), fromParam, toParam,
				QueryParam("step", "bucket width, a duration of whole seconds (default 5m)", str()),
				QueryParam("fields", "comma-separated: soc_pct, soh_pct, voltage_v, current_a, power_kw, temp_<sensor>_c (default the first five)", str()),
				QueryParam("agg", "aggregation (default mean)", map[string]any{"type": "string", "enum": []any{"mean", "min", "max", "last"}})},
			JSONContent(Ref("Series")), "400", "401", "404", "422", "503")},
		"/v1/fleet": map[string]any{"get": Operation("fleet",
			"per site and step: mean SoC of the readings, power (mean of the 5-minute sums of the units' mean power), most units reporting in a 5-minute window, alarm count",
			[]any{fromParam, toParam, QueryParam("step", "a multiple of 5m (default 1h)", str()), QueryParam("site", "only this site", str())},
			JSONContent(Ref("Fleet")), "400", "401", "422", "503")},
		"/v1/alarms": map[string]any{"get": Operation("alarms", "alarms in time order (then unit, code, severity, text), a page at a time",
			[]any{fromParam, toParam, QueryParam("unit", "only this unit", str()), QueryParam("site", "only this site", str()),
				QueryParam("severity", "only this severity", str()), limitParam, cursorParam},
			JSONContent(Ref("AlarmPage")), "400", "401", "422", "503")},
	}
}

func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func num() map[string]any          { return map[string]any{"type": "number"} }
func integer() map[string]any      { return map[string]any{"type": "integer"} }
func timeStr() map[string]any      { return map[string]any{"type": "string", "format": "date-time"} }
func arr(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func telemetrySchemas() map[string]any {
	return map[string]any{
		"Record": obj([]string{"unit", "schema", "time"}, map[string]any{
			"unit": str(), "site": str(), "model": str(), "firmware": str(),
			"schema": map[string]any{"type": "string", "enum": []any{"1.0", "2.0", "2.1"}},
			"seq":    integer(), "time": timeStr(),
			"soc_pct": num(), "soh_pct": num(), "voltage_v": num(), "current_a": num(), "power_kw": num(),
			"temp_c": map[string]any{"type": "object", "additionalProperties": num()},
			"mode":   map[string]any{"type": "string", "enum": []any{"idle", "charging", "discharging", "fault", "maintenance"}},
			"alarms": arr(obj([]string{"code", "severity", "text"}, map[string]any{"code": str(), "severity": str(), "text": str()})),
		}),
		"Unit":     obj([]string{"unit", "last_reading"}, map[string]any{"unit": str(), "site": str(), "model": str(), "last_reading": timeStr()}),
		"UnitList": obj([]string{"units"}, map[string]any{"units": arr(Ref("Unit"))}),
		"ReadingsPage": obj([]string{"unit", "readings"}, map[string]any{"unit": str(), "readings": arr(Ref("Record")),
			"next_cursor": map[string]any{"type": "string", "description": "present when more readings follow"}}),
		"Series": obj([]string{"unit", "from", "to", "step", "agg", "fields", "points"}, map[string]any{
			"unit": str(), "from": timeStr(), "to": timeStr(), "step": str(),
			"agg":    map[string]any{"type": "string", "enum": []any{"mean", "min", "max", "last"}},
			"fields": arr(str()),
			"points": arr(map[string]any{"type": "object", "required": []any{"time"}, "properties": map[string]any{"time": timeStr()},
				"additionalProperties": num(), "description": "the bucket's start and each field that had a value in it"}),
		}),
		"FleetPoint": obj([]string{"time", "site", "units", "alarms"}, map[string]any{
			"time": timeStr(), "site": str(), "soc_pct_mean": num(), "power_kw": num(), "units": integer(), "alarms": integer()}),
		"Fleet": obj([]string{"from", "to", "step", "points"}, map[string]any{"from": timeStr(), "to": timeStr(), "step": str(), "points": arr(Ref("FleetPoint"))}),
		"Alarm": obj([]string{"time", "unit", "code", "severity", "text"}, map[string]any{
			"time": timeStr(), "unit": str(), "site": str(), "code": str(), "severity": str(), "text": str()}),
		"AlarmPage": obj([]string{"alarms"}, map[string]any{"alarms": arr(Ref("Alarm")), "next_cursor": str()}),
	}
}

func problemSchema() map[string]any {
	return obj([]string{"type", "title", "status", "detail"}, map[string]any{
		"type": str(), "title": str(), "status": integer(), "detail": str(), "param": str(), "limit": str()})
}
