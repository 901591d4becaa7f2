package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/cutover"
)

// TestOpenAPI: the document lists exactly the mounted routes, and real
// answers of every endpoint (200s and problems) validate against the
// schemas it declares for their status and media type.
func TestOpenAPI(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records())
	cfg := DefaultConfig()
	cfg.MaxPage = 500
	h := newHarness(t, cfg, pg, nil, cutover.Legacy, nil, nil)
	_, raw := h.get(t, "/v1/openapi.json")
	schemaFor := openAPIValidator(t, h.api.Patterns(), raw)
	unit := "/v1/units/bsu-0001"
	day := "from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z"
	requests := []struct{ docPath, url string }{
		{"/v1/units", "/v1/units"},
		{"/v1/units", "/v1/units?site=nowhere"},
		{"/v1/units", "/v1/units?x=1"},
		{"/v1/units/{unit}/latest", unit + "/latest"},
		{"/v1/units/{unit}/latest", "/v1/units/nope/latest"},
		{"/v1/units/{unit}/readings", unit + "/readings?" + day + "&limit=3"},
		{"/v1/units/{unit}/readings", unit + "/readings?" + day + "&limit=100000"},
		{"/v1/units/{unit}/series", unit + "/series?" + day + "&step=1h"},
		{"/v1/units/{unit}/series", unit + "/series?" + day + "&step=10m&agg=last&fields=temp_cell_min_c,power_kw"},
		{"/v1/units/{unit}/series", "/v1/units/nope/series?" + day},
		{"/v1/fleet", "/v1/fleet?" + day},
		{"/v1/fleet", "/v1/fleet?" + day + "&step=5m&site=site-02"},
		{"/v1/fleet", "/v1/fleet?step=2m"},
		{"/v1/alarms", "/v1/alarms?" + day + "&limit=5"},
		{"/v1/alarms", "/v1/alarms?" + day + "&severity=critical"},
	}
	for _, r := range requests {
		resp, body := h.get(t, r.url)
		media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", r.url, err)
		}
		if err := schemaFor(r.docPath, fmt.Sprint(resp.StatusCode), media).Validate(inst); err != nil {
			t.Errorf("%s (%d): answer does not match the document: %v\n%s", r.url, resp.StatusCode, err, body)
		}
	}
	// A line of the NDJSON stream is a Record.
	resp, body := h.get(t, unit+"/readings?"+day, "Accept", NDJSON)
	line, _, _ := bytes.Cut(body, []byte("\n"))
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d %v", resp.StatusCode, err)
	}
	if err := schemaFor("/v1/units/{unit}/readings", "200", NDJSON).Validate(inst); err != nil {
		t.Errorf("stream line: %v", err)
	}
	_ = reader.StorePostgres
}

// openAPIDoc is the part of the document the test reads.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

// openAPIValidator checks that the document raw lists exactly the /v1/
// routes of patterns, and returns the schema it declares for a path's status and
// media type.
func openAPIValidator(t *testing.T, patterns []string, raw []byte) func(path, status, media string) *jsonschema.Schema {
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v (version %q)", err, doc.OpenAPI)
	}
	routes := map[string]bool{}
	for _, p := range patterns {
		method, path, _ := strings.Cut(p, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue // static assets and the like are not API
		}
		routes[path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %q is not in the document", p)
		}
	}
	for path := range doc.Paths {
		if !routes[path] {
			t.Errorf("the document lists %s, which no route serves", path)
		}
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("openapi.json", res); err != nil {
		t.Fatal(err)
	}
	return func(path, status, media string) *jsonschema.Schema {
		r, ok := doc.Paths[path]["get"].Responses[status]
		if !ok {
			t.Fatalf("%s: status %s not documented", path, status)
		}
		if _, ok := r.Content[media]; !ok {
			t.Fatalf("%s %s: media type %s not documented", path, status, media)
		}
		ptr := fmt.Sprintf("openapi.json#/paths/%s/get/responses/%s/content/%s/schema", escape(path), status, escape(media))
		s, err := c.Compile(ptr)
		if err != nil {
			t.Fatalf("compile %s: %v", ptr, err)
		}
		return s
	}
}

// escape escapes a JSON pointer token (RFC 6901) for use in a URL fragment.
func escape(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
	return strings.NewReplacer("{", "%7B", "}", "%7D").Replace(s)
}
