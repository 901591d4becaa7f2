package influx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/redact"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/tlsconf"
)

// API is the generation of InfluxDB's HTTP API the store talks to.
type API string

// The API generations. APIAuto asks /ping and reads its X-Influxdb-Version
// header: 2.x answers "v2.…", 3.x "3.…" (and X-Influxdb-Build Core or
// Enterprise); anything else (1.x's "1.8.3", a source build's "unknown") is 1.x.
const (
	APIAuto API = "auto"
	APIV1   API = "v1"
	APIV2   API = "v2"
	APIV3   API = "v3"
)

// ParseAPI parses an --influx-api value.
func ParseAPI(s string) (API, error) {
	switch a := API(strings.ToLower(strings.TrimSpace(s))); a {
	case "", APIAuto:
		return APIAuto, nil
	case APIV1, APIV2, APIV3:
		return a, nil
	default:
		return "", fmt.Errorf("influx: API %q: want auto, v1, v2 or v3", s)
	}
}

// apiFromPing maps /ping's headers to an API generation.
func apiFromPing(h http.Header) API {
	v := strings.TrimSpace(h.Get("X-Influxdb-Version"))
	build := strings.ToLower(h.Get("X-Influxdb-Build"))
	switch {
	case strings.HasPrefix(v, "v2.") || strings.HasPrefix(v, "2."):
		return APIV2
	case strings.HasPrefix(v, "v3.") || strings.HasPrefix(v, "3.") || build == "core" || build == "enterprise":
		return APIV3
	default:
		return APIV1
	}
}

// httpClient builds the HTTP client of cfg: bounded connection set-up and
// response-header waits, TLS with an extra CA and a client certificate
// when configured.
func (cfg Config) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = cfg.Timeout
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tlsCfg
	// No client-wide Timeout: a streamed query may legitimately take
	// minutes; callers bound each request with a context instead.
	return &http.Client{Transport: tr}, nil
}

func (cfg Config) tlsConfig() (*tls.Config, error) {
	tc, err := tlsconf.Config(tlsconf.Files{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}, "")
	if err != nil {
		return nil, fmt.Errorf("influx: TLS: %w", err)
	}
	return tc, nil
}

// authorize sets the credentials of req as api expects them: 1.x takes
// user:password as Basic authentication (nothing when empty), 2.x and 3.x
// an API token as "Authorization: Token …".
func (cfg Config) authorize(req *http.Request, api API) {
	if cfg.Token == "" {
		return
	}
	if api == APIV1 {
		if user, pass, ok := strings.Cut(cfg.Token, ":"); ok {
			req.SetBasicAuth(user, pass)
			return
		}
	}
	req.Header.Set("Authorization", "Token "+cfg.Token)
}

// Ping asks InfluxDB's /ping whether it answers and returns the API
// generation it speaks (the configured one unless that is auto).
func (c *Client) Ping(ctx context.Context) (API, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL+"/ping", nil)
	if err != nil {
		return "", fmt.Errorf("influx: ping: %w", err)
	}
	c.mu.Lock()
	api := c.api
	c.mu.Unlock()
	c.cfg.authorize(req, api)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("influx: ping %s: %w: %w", redact.URL(c.cfg.URL), ErrUnavailable, redact.Error(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// 3.x may require a token even on /ping: a 401 carrying the version
	// header still tells the version.
	if resp.StatusCode >= 300 && (resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Influxdb-Version") == "") {
		return "", fmt.Errorf("influx: ping %s: %w: %s", redact.URL(c.cfg.URL), ErrUnavailable, resp.Status)
	}
	if api == APIAuto {
		api = apiFromPing(resp.Header)
		c.mu.Lock()
		c.api = api
		c.mu.Unlock()
	}
	return api, nil
}

// resolveAPI returns the API generation, pinging once when it is auto.
func (c *Client) resolveAPI(ctx context.Context) (API, error) {
	c.mu.Lock()
	api := c.api
	c.mu.Unlock()
	if api != APIAuto {
		return api, nil
	}
	return c.Ping(ctx)
}

// newBackoff returns the back-off of cfg's retries (shared/retry, equal
// jitter): RetryBase doubling up to RetryMax.
func newBackoff(cfg Config) *retry.Backoff {
	return retry.NewBackoff(retry.Policy{Initial: cfg.RetryBase, Max: cfg.RetryMax})
}

// nextWait returns the wait before the next retry: the server's
// Retry-After when it gave one, else the back-off's next wait.
func nextWait(bo *retry.Backoff, retryAfter time.Duration) time.Duration {
	d := bo.Next() // grow the back-off either way
	if retryAfter > 0 {
		return retryAfter
	}
	return d
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}
