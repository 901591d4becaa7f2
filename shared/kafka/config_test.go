package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
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
	ca := tlstest.New(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.TLS(ca.ServerConfig(true)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	full := kafka.TLSConfig{Enabled: true, CAFile: ca.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey}
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
	bad.CAFile = ca.ClientKey
	if _, err := kafka.NewPublisher(kafka.Config{Brokers: c.ListenAddrs(), TLS: bad}, "t", kafka.Options{}, quiet(), nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}
