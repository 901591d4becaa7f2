package obs_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flexipack/cutover/shared/obs"
)

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	cases := []struct {
		name, token, method, auth string
		headers                   map[string]string
		want                      int
	}{
		{"read without token", "tok", http.MethodGet, "", nil, http.StatusOK},
		{"post without token", "tok", http.MethodPost, "", nil, http.StatusUnauthorized},
		{"post with wrong token", "tok", http.MethodPost, "Bearer nope", nil, http.StatusUnauthorized},
		{"post with token", "tok", http.MethodPost, "Bearer tok", nil, http.StatusOK},
		{"token as basic auth", "tok", http.MethodPost, "Basic dG9r", nil, http.StatusUnauthorized},
		{"no token configured", "", http.MethodPost, "Bearer ", nil, http.StatusForbidden},
		{"cross-origin Origin", "tok", http.MethodPost, "Bearer tok", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null Origin", "tok", http.MethodPost, "Bearer tok", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"same Origin", "tok", http.MethodPost, "Bearer tok", map[string]string{"Origin": "http://127.0.0.1:9102"}, http.StatusOK},
		{"cross-site fetch", "tok", http.MethodPost, "Bearer tok", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch", "tok", http.MethodPost, "Bearer tok", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"same-origin fetch", "tok", http.MethodPost, "Bearer tok", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"put", "tok", http.MethodPut, "", nil, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://127.0.0.1:9102/control/pause", nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			obs.RequireToken(c.token, ok).ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("%s with %q %v: %d, want %d (%s)", c.method, c.auth, c.headers, rec.Code, c.want, rec.Body)
			}
		})
	}
}
