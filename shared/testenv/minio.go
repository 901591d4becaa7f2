package testenv

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// PrivateMinio is a private MinIO serving HTTPS with a test CA's server
// certificate.
type PrivateMinio struct {
	*Proc
	Endpoint             string // https://127.0.0.1:PORT
	AccessKey, SecretKey string
}

// StartMinioTLS starts a private MinIO on a free loopback port with its data
// in a temporary folder, serving TLS with ca's server certificate, and stops
// it when the test ends.
func StartMinioTLS(t testing.TB, ca *tlstest.CA) *PrivateMinio {
	t.Helper()
	bin, err := lookBinary("minio")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{ca.ServerCert: "public.crt", ca.ServerKey: "private.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certs, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port, console := FreePort(t), FreePort(t)
	m := &PrivateMinio{Endpoint: fmt.Sprintf("https://127.0.0.1:%d", port), AccessKey: "tlsadmin", SecretKey: "tlsadmin-secret"}
	logPath := filepath.Join(dir, "minio.log")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	m.Proc = &Proc{t: t, name: "private minio", log: logPath,
		start: func() (*exec.Cmd, error) {
			f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return nil, err
			}
			cmd := exec.Command(bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
				"--console-address", fmt.Sprintf("127.0.0.1:%d", console), "--certs-dir", certs, filepath.Join(dir, "data"))
			cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_BROWSER=off")
			cmd.Stdout, cmd.Stderr = f, f
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			return cmd, cmd.Start()
		},
		ready: func() error {
			resp, err := client.Get(m.Endpoint + "/minio/health/live")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s", resp.Status)
			}
			return nil
		},
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}
