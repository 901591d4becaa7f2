// Package influx is the InfluxDB store: a Writer that writes records as line
// protocol (measurements bsu and bsu_alarm, TELEMETRY_XML.md) durably, with
// retries and isolation of rejected points; a Client that runs InfluxQL
// queries, streaming their answers; and a Reader and a Dashboard built on
// it that count and read readings back. Every read is InfluxQL over the v1
// query API, which InfluxDB 1.x, 2.x (through a DBRP mapping) and 3.x all
// serve. The package takes a plain Config; the command-line flags that fill
// it live in shared/cliapp.
package influx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/redact"
)

// Defaults for the Config fields left zero.
const (
	DefaultBatchLines   = 5000
	DefaultTimeout      = 10 * time.Second
	DefaultMaxRetries   = 5
	DefaultRetryBase    = 200 * time.Millisecond
	DefaultRetryMax     = 30 * time.Second
	DefaultStreamWindow = 24 * time.Hour
	// DefaultReadParallelism is Config.ReadParallelism's default.
	DefaultReadParallelism = 2
)

// Config says where InfluxDB is and how to write to it.
type Config struct {
	URL, Token, Org, Bucket string

	// API is the HTTP API generation (default auto: asked from /ping).
	API API
	// Database and RetentionPolicy are what InfluxQL reads name (the db
	// and rp query parameters). Left empty, they come from Bucket:
	// "telemetry/autogen" gives database telemetry, retention policy
	// autogen; a 2.x bucket "telemetry" gives database telemetry and the
	// default retention policy of its DBRP mapping.
	Database, RetentionPolicy string
	// CAFile is a PEM file of the CA certificates trusted for an https://
	// URL instead of the system's; CertFile and KeyFile a client certificate.
	CAFile, CertFile, KeyFile string
	// QueryTimeout bounds one InfluxQL query, streaming included (default
	// 10m); Timeout bounds the wait for its answer's header and each read.
	QueryTimeout time.Duration
	// ChunkSize is how many rows InfluxDB puts in one chunk of a query's
	// answer (default 10000); MaxChunkBytes bounds one chunk (default 64 MiB).
	ChunkSize     int
	MaxChunkBytes int64
	// GzipQueries asks InfluxDB to gzip query answers (default off). It
	// saves bandwidth to a distant server but costs InfluxDB CPU: on
	// loopback, compressing verify's raw stream took about 30% of
	// InfluxDB's CPU per reading.
	GzipQueries bool

	// BatchLines is the most lines one write request carries (default 5000).
	// A record's lines (its bsu point and its alarms) are never split.
	BatchLines int
	// Timeout bounds one HTTP request (default 10s); a request that times
	// out is retried.
	Timeout time.Duration
	// MaxRetries is how many times a request is retried after a retryable
	// failure (429, 5xx, network error, time-out) before giving up (default
	// 5; negative means no retries).
	MaxRetries int
	// RetryBase is the first back-off delay, doubled on each retry with
	// jitter, capped at RetryMax (default 200ms). A Retry-After header
	// overrides it.
	RetryBase time.Duration
	// RetryMax caps one back-off delay (default 30s).
	RetryMax time.Duration
	// StreamWindow is the time span the Reader's Stream reads per pass (its
	// alarms are held for the join): it bounds the memory the server and
	// the reader use (default 24h).
	StreamWindow time.Duration
	// ReadParallelism is how many queries Stream runs at once, each on a
	// slice of a StreamWindow (default 2): InfluxDB answers one query on
	// about one core, so a verification can use more of the server.
	ReadParallelism int
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.BatchLines <= 0 {
		cfg.BatchLines = DefaultBatchLines
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.StreamWindow <= 0 {
		cfg.StreamWindow = DefaultStreamWindow
	}
	if cfg.ReadParallelism <= 0 {
		cfg.ReadParallelism = DefaultReadParallelism
	}
	if cfg.API == "" {
		cfg.API = APIAuto
	}
	if cfg.Database == "" {
		cfg.Database, cfg.RetentionPolicy, _ = strings.Cut(cfg.Bucket, "/")
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxChunkBytes <= 0 {
		cfg.MaxChunkBytes = DefaultMaxChunkBytes
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	return cfg
}

func (cfg Config) validate() error {
	if cfg.URL == "" {
		return errors.New("influx: no URL (--influx-url, INFLUX_URL)")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return fmt.Errorf("influx: URL %q: want http:// or https://", redact.URL(cfg.URL))
	}
	if u, err := url.Parse(cfg.URL); err != nil || u.Host == "" {
		return fmt.Errorf("influx: URL %s: %w", redact.URL(cfg.URL), redact.URLError(errNoHost(err)))
	}
	if _, err := ParseAPI(string(cfg.API)); err != nil {
		return err
	}
	if cfg.Bucket == "" {
		return errors.New("influx: no bucket (--influx-bucket, INFLUX_BUCKET: 1.x database/retention-policy, 2.x bucket, 3.x database)")
	}
	return nil
}

// errNoHost is err, or an error saying the URL names no host.
func errNoHost(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no host")
}
