package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPageWeight keeps everything the console loads (its embedded files)
// under 300 KB.
func TestPageWeight(t *testing.T) {
	var total int64
	err := fs.WalkDir(Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || total > 300*1024 {
		t.Fatalf("the console's files weigh %d bytes; want some, under 300 KB", total)
	}
	t.Logf("console assets: %d bytes", total)
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tt := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", `<script type="module" src="/assets/app.js">`},
		{"GET", "/assets/app.js", 200, "javascript", "hashchange"},
		{"GET", "/assets/style.css", 200, "text/css", "prefers-color-scheme: dark"},
		{"GET", "/favicon.ico", 200, "image/svg+xml", "<svg"},
		{"GET", "/assets/", 404, "", ""},
		{"GET", "/assets/../console.go", 404, "", ""},
		{"GET", "/elsewhere", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || !strings.Contains(rec.Header().Get("Content-Type"), tt.ctype) || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s %s = %d %q; want %d %q containing %q", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.status, tt.ctype, tt.body)
		}
		if rec.Code == http.StatusOK && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: no CSP header", tt.path)
		}
	}
}

// TestNoExternalReferences: no CDN, no third-party URL, no inline script.
func TestNoExternalReferences(t *testing.T) {
	err := fs.WalkDir(Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Assets(), path)
		if err != nil {
			return err
		}
		s := string(b)
		for _, bad := range []string{"https://", "http://cdn", "//cdn", "<script>", "innerHTML", "eval("} {
			if strings.Contains(s, bad) && !(bad == "https://" && path == "favicon.svg") {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
