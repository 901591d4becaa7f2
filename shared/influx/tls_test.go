package influx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// testCA is a throw-away certificate authority for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	File string // the CA certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	ca.File = ca.write(t, "ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue signs a certificate for name (a server on 127.0.0.1, or a client)
// and returns its certificate and key files.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return ca.write(t, name+".pem", "CERTIFICATE", der), ca.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// TestTLS runs the store against a private InfluxDB 1.8.3 serving HTTPS with
// a certificate from a CA made for the test, then through a proxy that
// demands a client certificate from the same CA (1.8 cannot demand one
// itself).
func TestTLS(t *testing.T) {
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, "influxd", x509.ExtKeyUsageServerAuth)
	inst := testenv.StartInfluxdTLS(t, serverCert, serverKey)
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"FP2-000001"}, t0, time.Second, 5)
	cfg := Config{URL: inst.URL, Bucket: "telemetry/autogen", MaxRetries: -1}

	t.Run("untrusted without the CA", func(t *testing.T) {
		err := newWriter(t, cfg).Write(ctx, recs)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("got %v, want an unknown-authority failure", err)
		}
	})
	t.Run("trusted with --influx-ca-file", func(t *testing.T) {
		c := cfg
		c.CAFile = ca.File
		if err := newWriter(t, c).Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if n, err := newReader(t, c).Total(ctx, t0, t0.Add(time.Hour)); err != nil || n != 5 {
			t.Fatalf("read back %d, %v", n, err)
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		proxyURL := mutualTLSProxy(t, ca, inst.URL)
		clientCert, clientKey := ca.issue(t, "cutover-client", x509.ExtKeyUsageClientAuth)
		c := cfg
		c.URL, c.CAFile = proxyURL, ca.File
		if _, err := newReader(t, c).Total(ctx, t0, t0.Add(time.Hour)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("without a client certificate: got %v, want a refused handshake", err)
		}
		c.CertFile, c.KeyFile = clientCert, clientKey
		if n, err := newReader(t, c).Total(ctx, t0, t0.Add(time.Hour)); err != nil || n != 5 {
			t.Fatalf("with a client certificate: %d, %v", n, err)
		}
		c.KeyFile = ""
		if _, err := NewClient(c); err == nil {
			t.Fatal("a certificate without its key was accepted")
		}
	})
}

// mutualTLSProxy serves HTTPS demanding a client certificate signed by ca
// and forwards to backend (an HTTPS influxd with a certificate of ca).
func mutualTLSProxy(t *testing.T, ca *testCA, backend string) string {
	t.Helper()
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(ca.cert)
	target, _ := url.Parse(backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	srv := httptest.NewUnstartedServer(proxy)
	certFile, keyFile := ca.issue(t, "proxy", x509.ExtKeyUsageServerAuth)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(ca.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}
