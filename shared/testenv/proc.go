package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// Proc is a private service instance a test can stop and start again, for
// fault-injection tests that must not disturb the shared services.
type Proc struct {
	t     testing.TB
	name  string
	start func() (*exec.Cmd, error)
	ready func() error
	// gone, if set, reports nil once every trace of the stopped instance
	// is gone (e.g. PostgreSQL's postmaster.pid), so Start can follow Stop.
	gone func() error
	// stopSignal asks the instance to stop; 0 means SIGTERM. PostgreSQL
	// needs SIGINT (fast shutdown): its SIGTERM is a smart shutdown that
	// waits for every connected client, so a server with clients never
	// stops and is SIGKILLed, leaving its postmaster.pid behind.
	stopSignal syscall.Signal
	cmd        *exec.Cmd
	log        string
}

// Stop stops the instance (SIGTERM to its process group, then SIGKILL after
// 10 s) and waits until it has exited and, where known, released its files.
func (p *Proc) Stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	pgid := p.cmd.Process.Pid // started with Setpgid: the group id is its pid
	sig := p.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = syscall.Kill(-pgid, sig)
	done := make(chan struct{})
	go func() { _, _ = p.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
	// A wrapper such as runuser may exit before the server it started.
	deadline := time.Now().Add(20 * time.Second)
	for {
		alive := syscall.Kill(-pgid, 0) == nil
		var goneErr error
		if p.gone != nil {
			goneErr = p.gone()
		}
		if !alive && goneErr == nil {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			p.t.Fatalf("testenv: %s still running 20s after Stop (group alive: %v, %v)", p.name, alive, goneErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start starts the instance again and waits until it answers.
func (p *Proc) Start() {
	p.t.Helper()
	if p.cmd != nil {
		return
	}
	cmd, err := p.start()
	if err != nil {
		p.t.Fatalf("testenv: start %s: %v", p.name, err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := p.ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			logTail, _ := os.ReadFile(p.log)
			if len(logTail) > 4000 {
				logTail = logTail[len(logTail)-4000:]
			}
			p.t.Fatalf("testenv: %s did not become ready in 60s: %v\n--- log %s:\n%s", p.name, err, p.log, logTail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found on PATH or in %s; %s", name, filepath.Dir(p), hint)
}

// PrivateInflux is a private InfluxDB 1.8 instance with Flux enabled.
type PrivateInflux struct {
	*Proc
	URL string
}

// StartInfluxd starts a private influxd on free loopback ports, with its data
// in a temporary folder, and stops it when the test ends. The database
// "telemetry" exists; Bucket for the v2 API is "telemetry/autogen".
func StartInfluxd(t testing.TB) *PrivateInflux { return StartInfluxdTLS(t, "", "") }

// StartInfluxdTLS is StartInfluxd serving HTTPS with the PEM certificate
// and key given (plain HTTP when both are empty); URL is then https://.
// The test trusts the certificate's CA itself: the readiness checks here do
// not verify it.
func StartInfluxdTLS(t testing.TB, certFile, keyFile string) *PrivateInflux {
	t.Helper()
	bin, err := lookBinary("influxd")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	httpPort, rpcPort := FreePort(t), FreePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  max-series-per-database = 0
  max-values-per-tag = 0
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false
  https-enabled = %t
  https-certificate = %q
  https-private-key = %q
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort, certFile != "", certFile, keyFile)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	base := fmt.Sprintf("%s://127.0.0.1:%d", scheme, httpPort)
	logPath := filepath.Join(dir, "influxd.log")
	p := &PrivateInflux{URL: base}
	p.Proc = &Proc{t: t, name: "private influxd", log: logPath,
		start: func() (*exec.Cmd, error) {
			f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return nil, err
			}
			cmd := exec.Command(bin, "-config", confPath)
			cmd.Stdout, cmd.Stderr = f, f
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			return cmd, cmd.Start()
		},
		ready: func() error { return httpOK(base + "/ping") },
	}
	p.Start()
	t.Cleanup(p.Stop)
	if err := InfluxQL(base, "CREATE DATABASE telemetry"); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// PrivatePostgres is a private PostgreSQL cluster.
type PrivatePostgres struct {
	*Proc
	DSN string
}

// StartPostgres initialises and starts a private PostgreSQL cluster (trust
// auth, loopback, a free port) in a temporary folder, and stops it when the
// test ends. It runs the server as the postgres OS user when run as root.
func StartPostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	return startPostgres(t, nil)
}

// StartPostgresTLS is StartPostgres with TLS on (ssl=on, the server
// certificate and key of ca); plain connections are still accepted. DSN
// stays sslmode=disable; VerifyFullDSN connects with sslmode=verify-full.
func StartPostgresTLS(t testing.TB, ca *tlstest.CA) *PrivatePostgres {
	t.Helper()
	return startPostgres(t, ca)
}

// VerifyFullDSN is the DSN of a StartPostgresTLS cluster with
// sslmode=verify-full and caFile as the root certificate.
func (p *PrivatePostgres) VerifyFullDSN(caFile string) string {
	return strings.Replace(p.DSN, "sslmode=disable", "sslmode=verify-full&sslrootcert="+url.QueryEscape(caFile), 1)
}

func startPostgres(t testing.TB, ca *tlstest.CA) *PrivatePostgres {
	t.Helper()
	binDir, err := pgBinDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	asPG := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		return exec.Command(args[0], args[1:]...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("testenv: chown %s: %v: %s", dir, err, out)
		}
		_ = os.Chmod(dir, 0o755)
	}
	if out, err := asPG(filepath.Join(binDir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("testenv: initdb: %v: %s", err, out)
	}
	var sslArgs []string
	if ca != nil {
		sslArgs = pgTLSFiles(t, ca, data)
	}
	port := FreePort(t)
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	logPath := filepath.Join(dir, "postgres.log")
	p := &PrivatePostgres{DSN: dsn}
	p.Proc = &Proc{t: t, name: "private postgres", log: logPath,
		start: func() (*exec.Cmd, error) {
			cmd := asPG(filepath.Join(binDir, "postgres"), "-D", data, "-p", fmt.Sprint(port), "-c", "listen_addresses=127.0.0.1",
				"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=200")
			cmd.Args = append(cmd.Args, sslArgs...)
			f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
			if err != nil {
				return nil, err
			}
			cmd.Stdout, cmd.Stderr = f, f
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			return cmd, cmd.Start()
		},
		ready: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return pingPG(ctx, dsn)
		},
		stopSignal: syscall.SIGINT,
		gone: func() error {
			if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
				return fmt.Errorf("%s/postmaster.pid still exists", data)
			}
			return nil
		},
	}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// pgTLSFiles copies ca's server certificate and key into the data folder
// (owned by the server's user, mode 0600 as PostgreSQL demands) and returns
// the server flags that turn TLS on.
func pgTLSFiles(t testing.TB, ca *tlstest.CA, data string) []string {
	t.Helper()
	cert, key := filepath.Join(data, "server.crt"), filepath.Join(data, "server.key")
	for src, dst := range map[string]string{ca.ServerCert: cert, ca.ServerKey: key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if os.Geteuid() == 0 {
			if out, err := exec.Command("chown", "postgres:postgres", dst).CombinedOutput(); err != nil {
				t.Fatalf("testenv: chown %s: %v: %s", dst, err, out)
			}
		}
	}
	return []string{"-c", "ssl=on", "-c", "ssl_cert_file=" + cert, "-c", "ssl_key_file=" + key}
}

func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("initdb not found (install Debian's postgresql); %s", hint)
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func pingPG(ctx context.Context, dsn string) error {
	c, err := pgxConnect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("select 1 returned %d", one)
	}
	return nil
}
