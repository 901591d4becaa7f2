package cutoverapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestOpenAPIMatchesRoutesAndAnswers checks every route is described, and
// every real answer (with data in every section) matches its schema.
func TestOpenAPIMatchesRoutesAndAnswers(t *testing.T) {
	s := openState(t)
	plantEverySection(t, s)
	api := New(Config{}, Deps{State: s, Shadow: s})
	defer api.Close()
	h := api.Handler()

	routes := map[string]bool{}
	for _, r := range api.Routes() {
		routes[strings.TrimPrefix(r.Pattern, "GET ")] = true
	}
	paths := Paths()
	for p := range routes {
		if paths[p] == nil {
			t.Errorf("route %s is not in the OpenAPI paths", p)
		}
	}
	for p := range paths {
		if !routes[p] {
			t.Errorf("OpenAPI path %s has no route", p)
		}
	}

	c := jsonschema.NewCompiler()
	doc := map[string]any{"components": map[string]any{"schemas": Schemas()}, "routes": map[string]any{}}
	for name := range routeDocs {
		doc["routes"].(map[string]any)[name] = ResponseSchema(name)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	native, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("doc.json", native); err != nil {
		t.Fatal(err)
	}
	for name := range routeDocs {
		t.Run(name, func(t *testing.T) {
			sch, err := c.Compile("doc.json#/routes/" + name)
			if err != nil {
				t.Fatalf("compile schema: %v", err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Prefix+name, nil))
			if rec.Code != 200 {
				t.Fatalf("GET %s = %d %s", Prefix+name, rec.Code, rec.Body)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Body.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Fatalf("answer of %s does not match its schema: %v\n%s", name, err, rec.Body)
			}
		})
	}
}

// plantEverySection puts data in every section of the overview.
func plantEverySection(t *testing.T, s *cutover.Store) {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	now := time.Now()
	st, _ := s.Current(ctx)
	if _, err := s.Transition(ctx, cutover.Change{Kind: "advance", From: st.Phase, To: cutover.DualWrite, ExpectVersion: st.Version, Actor: "a", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Beat(ctx, cutover.Heartbeat{ConsumerID: "c1", Phase: cutover.DualWrite, PhaseVersion: 2, StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordGaps(ctx, []cutover.Gap{{Sink: cutover.SinkInflux, Unit: "u", From: now, To: now, Readings: 1, Reason: "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StartBackfillRun(ctx, "bf-1", map[string]any{"from": now.Add(-time.Hour), "to": now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveVerify(ctx, cutover.VerifyRun{From: now.Add(-time.Hour), To: now, Window: time.Hour, Windows: 3, OK: true}); err != nil {
		t.Fatal(err)
	}
	err := s.RecordShadow(ctx, []cutover.ShadowCount{{Phase: cutover.DualWrite, PhaseVersion: 2, Endpoint: "latest", Comparisons: 3, Mismatches: 1}},
		[]cutover.ShadowMismatch{{Phase: cutover.DualWrite, PhaseVersion: 2, Endpoint: "latest", Params: "unit=u", PrimaryStore: "postgres", ShadowStore: "influxdb", Path: "soc_pct", PrimaryValue: "1", ShadowValue: "2"}})
	if err != nil {
		t.Fatal(err)
	}
}
