// Package testenv gives integration tests isolated resources on the real
// services that scripts/services.sh starts: a fresh PostgreSQL database, a
// fresh InfluxDB database, a fresh S3 bucket, unique RabbitMQ names. A
// missing service fails the test loudly with the command that starts it;
// nothing is ever skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

const hint = "start the service stack with: scripts/services.sh up (then eval \"$(scripts/services.sh env)\")"

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// Name returns a name unique to this test run, made of prefix, the test's
// name and random hex, safe for queues, exchanges, databases and buckets.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := nonName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 24 {
		base = base[len(base)-24:]
	}
	return strings.Trim(prefix+"_"+base, "_") + "_" + hex.EncodeToString(b[:])
}

// Context returns a context cancelled when the test ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Postgres creates a fresh database on the server of PG_DSN (default
// 127.0.0.1:5432, user postgres), drops it when the test ends, and returns
// its DSN.
func Postgres(t testing.TB) string {
	t.Helper()
	base := env("PG_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL at %s is not reachable: %v; %s", redact(base), err, hint)
	}
	defer admin.Close(context.Background())
	name := Name(t, "t")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: PG_DSN %q is not a URL: %v", redact(base), err)
	}
	u.Path = "/" + name
	return u.String()
}

// RabbitURL checks that RabbitMQ at AMQP_URL answers and returns the URL.
func RabbitURL(t testing.TB) string {
	t.Helper()
	u := env("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("testenv: RabbitMQ at %s is not reachable: %v; %s", redact(u), err, hint)
	}
	_ = conn.Close()
	return u
}

// RabbitMgmtURL checks that the RabbitMQ management API answers and returns
// its URL (with credentials).
func RabbitMgmtURL(t testing.TB) string {
	t.Helper()
	u := env("AMQP_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
	if err := httpOK(u + "/api/overview"); err != nil {
		t.Fatalf("testenv: RabbitMQ management API at %s: %v; %s", redact(u), err, hint)
	}
	return u
}

// InfluxDB is a fresh InfluxDB database reachable through the v2 API.
type InfluxDB struct {
	URL, Token, Org, Bucket string
	DB                      string // the 1.8 database name; Bucket is DB + "/autogen"
}

// Influx creates a fresh database on the InfluxDB of INFLUX_URL and drops
// it when the test ends.
func Influx(t testing.TB) InfluxDB {
	t.Helper()
	base := strings.TrimRight(env("INFLUX_URL", "http://127.0.0.1:8086"), "/")
	if err := httpOK(base + "/ping"); err != nil {
		t.Fatalf("testenv: InfluxDB at %s: %v; %s", base, err, hint)
	}
	name := Name(t, "t")
	if err := InfluxQL(base, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := InfluxQL(base, "DROP DATABASE "+name); err != nil {
			t.Logf("testenv: %v", err)
		}
	})
	return InfluxDB{URL: base, Token: os.Getenv("INFLUX_TOKEN"), Org: env("INFLUX_ORG", "flexipack"), Bucket: name + "/autogen", DB: name}
}

// InfluxQL runs one InfluxQL statement against an InfluxDB 1.8 /query endpoint.
func InfluxQL(base, stmt string) error {
	resp, err := clientFor(base).PostForm(strings.TrimRight(base, "/")+"/query", url.Values{"q": {stmt}})
	if err != nil {
		return fmt.Errorf("influxql %q: %w", stmt, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		return fmt.Errorf("influxql %q: %s: %s", stmt, resp.Status, body)
	}
	return nil
}

// S3Bucket is a fresh bucket on the S3-compatible store of S3_ENDPOINT.
type S3Bucket struct {
	Endpoint, Bucket, Region, AccessKey, SecretKey string
}

// Client returns an S3 client for the bucket's store (path-style addressing).
func (b S3Bucket) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(b.Endpoint),
		Region:       b.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(b.AccessKey, b.SecretKey, ""),
	})
}

// S3 creates a fresh bucket and empties and removes it when the test ends.
func S3(t testing.TB) S3Bucket {
	t.Helper()
	b := S3Bucket{
		Endpoint:  env("S3_ENDPOINT", "http://127.0.0.1:9000"),
		Region:    env("AWS_REGION", "us-east-1"),
		AccessKey: env("AWS_ACCESS_KEY_ID", "minioadmin"),
		SecretKey: env("AWS_SECRET_ACCESS_KEY", "minioadmin"),
		Bucket:    strings.ReplaceAll(Name(t, "t"), "_", "-"),
	}
	if len(b.Bucket) > 63 {
		b.Bucket = b.Bucket[len(b.Bucket)-63:]
		b.Bucket = "t" + strings.TrimLeft(b.Bucket[1:], "-")
	}
	cl := b.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Bucket)}); err != nil {
		t.Fatalf("testenv: create bucket %s at %s: %v; %s", b.Bucket, b.Endpoint, err, hint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(b.Bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Logf("testenv: list bucket %s: %v", b.Bucket, err)
				return
			}
			for _, o := range page.Contents {
				_, _ = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.Bucket), Key: o.Key})
			}
		}
		if _, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b.Bucket)}); err != nil {
			t.Logf("testenv: delete bucket %s: %v", b.Bucket, err)
		}
	})
	return b
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 50ms until it returns nil or d passes, then
// fails the test with cond's last error.
func Eventually(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpOK(u string) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if pu, err := url.Parse(u); err == nil && pu.User != nil {
		pw, _ := pu.User.Password()
		req.SetBasicAuth(pu.User.Username(), pw)
		pu.User = nil
		req.URL = pu
	}
	resp, err := clientFor(u).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s answered %s", redact(u), resp.Status)
	}
	return nil
}

// clientFor returns the HTTP client testenv's own checks use for u: a
// private HTTPS instance on loopback (StartInfluxdTLS) has a certificate
// from the test's CA, which these checks do not verify; the code under test
// does, with the CA the test gives it.
func clientFor(u string) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if strings.HasPrefix(u, "https://127.0.0.1:") {
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // readiness of a test's own instance
	}
	return c
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func pgxConnect(ctx context.Context, dsn string) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }
