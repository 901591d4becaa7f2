package kafka_test

import (
	"context"
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
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string
	}{
		{"no brokers", kafka.Config{}, "no brokers"},
		{"bad broker", kafka.Config{Brokers: []string{"localhost"}}, `broker "localhost"`},
		{"cert without key", kafka.Config{Brokers: []string{"h:1"}, TLS: kafka.TLSConfig{Enabled: true, CertFile: "c"}}, "go together"},
		{"CA without TLS", kafka.Config{Brokers: []string{"h:1"}, TLS: kafka.TLSConfig{CAFile: "ca"}}, "--kafka-tls is off"},
		{"unknown mechanism", kafka.Config{Brokers: []string{"h:1"}, SASL: kafka.SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, "want PLAIN"},
		{"no password", kafka.Config{Brokers: []string{"h:1"}, SASL: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u"}}, "needs --kafka-sasl-username"},
		{"user without mechanism", kafka.Config{Brokers: []string{"h:1"}, SASL: kafka.SASLConfig{Username: "u"}}, "no --kafka-sasl-mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-pw") {
				t.Fatal("password in the error")
			}
		})
	}
}

// publishOnce publishes one message and checks readiness; it returns the
// first error.
func publishOnce(cfg kafka.Config, topic string) error {
	cfg.DialTimeout = 2 * time.Second
	p, err := kafka.NewPublisher(cfg, topic, kafka.Options{MaxAttempts: 1}, quiet(), nil)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Check(ctx); err != nil {
		return err
	}
	if err := p.Publish(ctx, []bus.Message{{ID: "a", Key: "u", Body: []byte("x")}}); err != nil {
		return err
	}
	client, err := cfg.Client()
	if err != nil {
		return err
	}
	lag, err := kafka.GroupLag(ctx, client, topic, "g")
	if err == nil && lag.Total != 1 {
		err = &lagError{lag.Total}
	}
	return err
}

type lagError struct{ n int64 }

func (e *lagError) Error() string { return "lag is not 1" }

// SASL against kfake's SASL: each mechanism with the right password
// publishes, checks readiness and reads lag; a wrong password fails.
func TestSASLMechanisms(t *testing.T) {
	for _, mech := range []string{kafka.MechanismPlain, kafka.MechanismSCRAMSHA256, kafka.MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.EnableSASL(), kfake.Superuser(mech, "svc", "secret-pw"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cfg := kafka.Config{Brokers: c.ListenAddrs(), SASL: kafka.SASLConfig{Mechanism: mech, Username: "svc", Password: "secret-pw"}}
			if err := publishOnce(cfg, "t"); err != nil {
				t.Fatalf("right password: %v", err)
			}
			cfg.SASL.Password = "wrong-pw"
			err = publishOnce(cfg, "t")
			if err == nil {
				t.Fatal("wrong password accepted")
			}
			if strings.Contains(err.Error(), "wrong-pw") {
				t.Fatalf("the password is in the error: %v", err)
			}
			cfg.SASL = kafka.SASLConfig{}
			if err := publishOnce(cfg, "t"); err == nil {
				t.Fatal("no SASL accepted by a SASL broker")
			}
		})
	}
}

// TLS against kfake's TLS listener, which requires a client certificate
// signed by the test CA: the client with the CA file and its certificate
// connects; without the certificate, or without the CA, it does not.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	serverCert := issue(t, ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	clientCert := issue(t, ca, caKey, "svc-consumer", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientCert.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	full := kafka.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key")}
	cfg := kafka.Config{Brokers: c.ListenAddrs(), TLS: full}
	if err := publishOnce(cfg, "t"); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	noCert := full
	noCert.CertFile, noCert.KeyFile = "", ""
	if err := publishOnce(kafka.Config{Brokers: c.ListenAddrs(), TLS: noCert}, "t"); err == nil {
		t.Fatal("connected without a client certificate")
	}
	noCA := full
	noCA.CAFile = ""
	if err := publishOnce(kafka.Config{Brokers: c.ListenAddrs(), TLS: noCA}, "t"); err == nil {
		t.Fatal("trusted a broker certificate signed by an unknown CA")
	}
	if err := publishOnce(kafka.Config{Brokers: c.ListenAddrs()}, "t"); err == nil {
		t.Fatal("plaintext to a TLS listener succeeded")
	}
	bad := full
	bad.CAFile = filepath.Join(dir, "client.key")
	if _, err := kafka.NewPublisher(kafka.Config{Brokers: c.ListenAddrs(), TLS: bad}, "t", kafka.Options{}, quiet(), nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
