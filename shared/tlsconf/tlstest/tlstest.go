// Package tlstest makes a throw-away certificate authority for tests: a CA,
// a server certificate for 127.0.0.1 and localhost, and a client
// certificate, written as PEM files to a test's temporary folder.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority and the certificates it signed.
type CA struct {
	Dir                   string // where the files are
	CAFile                string // the CA certificate
	ServerCert, ServerKey string // for 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // CN "cutover-test-client"
	Pool                  *x509.CertPool
	caCert                *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	serverTLS             tls.Certificate
}

// New makes a CA and its server and client certificates under t.TempDir().
func New(t testing.TB) *CA {
	t.Helper()
	ca := &CA{Dir: t.TempDir(), Pool: x509.NewCertPool()}
	key, cert, der := ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "cutover test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	})
	ca.caKey, ca.caCert = key, cert
	ca.Pool.AddCert(cert)
	ca.CAFile = ca.write(t, "ca.pem", "CERTIFICATE", der)
	skey, _, sder := ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	ca.ServerCert = ca.write(t, "server.pem", "CERTIFICATE", sder)
	ca.ServerKey = ca.writeKey(t, "server-key.pem", skey)
	ckey, _, cder := ca.issue(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "cutover-test-client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	ca.ClientCert = ca.write(t, "client.pem", "CERTIFICATE", cder)
	ca.ClientKey = ca.writeKey(t, "client-key.pem", ckey)
	var err error
	if ca.serverTLS, err = tls.LoadX509KeyPair(ca.ServerCert, ca.ServerKey); err != nil {
		t.Fatal(err)
	}
	return ca
}

// ServerConfig is a TLS server configuration with the server certificate;
// with requireClient, clients must present a certificate the CA signed.
func (ca *CA) ServerConfig(requireClient bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.serverTLS}, MinVersion: tls.VersionTLS12}
	if requireClient {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = ca.Pool
	}
	return cfg
}

// issue makes a key and a certificate from tmpl, signed by the CA (or by
// itself when the CA does not exist yet).
func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	parent, signer := tmpl, key
	if ca.caCert != nil {
		parent, signer = ca.caCert, ca.caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func (ca *CA) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(ca.Dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (ca *CA) writeKey(t testing.TB, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return ca.write(t, name, "EC PRIVATE KEY", der)
}
