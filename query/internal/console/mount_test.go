package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/api"
	"github.com/flexipack/cutover/query/internal/cutoverapi"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestMountBehindTokens: with tokens, the cutover API needs one and the
// console's files do not (they hold no data); the OpenAPI document lists
// the cutover routes.
func TestMountBehindTokens(t *testing.T) {
	state, err := cutover.Open(testenv.Context(t, 30*time.Second), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("s3cret-token-for-tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := api.NewAuth(tokens)
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.DefaultConfig(), api.Deps{Auth: auth})
	cut := cutoverapi.New(cutoverapi.DefaultConfig(), cutoverapi.Deps{State: state, Shadow: state})
	defer cut.Close()
	Mount(a, cut)
	h := a.Handler()

	get := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/v1/cutover/state", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("cutover state without a token: %d; want 401", rec.Code)
	}
	rec := get("/v1/cutover/state", "s3cret-token-for-tests")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"phase":"legacy"`) {
		t.Fatalf("cutover state with the token: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []string{"/", "/assets/app.js", "/favicon.ico"} {
		if rec := get(p, ""); rec.Code != 200 {
			t.Errorf("GET %s without a token: %d; want 200 (static files)", p, rec.Code)
		}
	}
	rec = get("/v1/openapi.json", "s3cret-token-for-tests")
	var doc struct {
		Paths      map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi: %d %v", rec.Code, err)
	}
	for p := range cutoverapi.Paths() {
		if doc.Paths[p] == nil {
			t.Errorf("the OpenAPI document lacks %s", p)
		}
	}
	if doc.Components.Schemas["CutoverOverview"] == nil || doc.Components.Schemas["Problem"] == nil {
		t.Errorf("the OpenAPI document lacks the cutover schemas or Problem")
	}
}
