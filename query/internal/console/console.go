// Package console serves the read-only web console of the query service:
// static assets embedded in the binary (no CDN, no build step), a page for
// the cutover and pages for the fleet and each unit, all drawn in the
// browser from the /v1 API. The console shows commands; it never runs one.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// csp allows the console's own scripts, styles and API calls only: no
// inline script, no third party, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Assets returns the embedded files (for size checks and tests).
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler serves the console: the page at "/" and its files under
// "/assets/". Anything else is 404, so the console never shadows the API.
func Handler() http.Handler {
	files := http.FileServerFS(Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		switch p := path.Clean(r.URL.Path); {
		case p == "/" || p == "/index.html":
			h.Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, Assets(), "index.html")
		case strings.HasPrefix(p, "/assets/") && !strings.HasSuffix(p, "/"):
			h.Set("Cache-Control", "no-cache")
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(p, "/assets")
			files.ServeHTTP(w, r2)
		case p == "/favicon.ico":
			http.ServeFileFS(w, r, Assets(), "favicon.svg")
		default:
			http.NotFound(w, r)
		}
	})
}
