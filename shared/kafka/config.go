package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config is how to reach a Kafka cluster: the bootstrap brokers and, when the
// cluster asks for them, TLS and SASL. The command layer fills it from flags
// and environment variables (shared/cliapp.KafkaConfig); everything below
// takes this struct.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// TLS encrypts the connections when Enabled.
	TLS TLSConfig
	// SASL authenticates the connections when Mechanism is set.
	SASL SASLConfig
	// DialTimeout bounds one connection attempt (default 10 s).
	DialTimeout time.Duration
}

// TLSConfig is the client side of TLS to the brokers.
type TLSConfig struct {
	Enabled bool
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates
	// (default: the system pool).
	CAFile string
	// CertFile and KeyFile are the client certificate and key, PEM, for
	// brokers that require mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
}

// SASLConfig is the SASL authentication to the brokers.
type SASLConfig struct {
	// Mechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	Username  string
	// Password is a secret: it is never logged nor put in an error.
	Password string
}

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Validate reports the first thing wrong with c, naming the setting.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers (set --kafka-brokers or KAFKA_BROKERS)")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("kafka: broker %q: want host:port", b)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("kafka: --kafka-tls-cert and --kafka-tls-key go together")
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "") {
		return errors.New("kafka: a TLS CA or client certificate is set but --kafka-tls is off")
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		if c.SASL.Username != "" {
			return errors.New("kafka: --kafka-sasl-username is set but no --kafka-sasl-mechanism")
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASL.Username == "" || c.SASL.Password == "" {
			return fmt.Errorf("kafka: SASL %s needs --kafka-sasl-username and --kafka-sasl-password", c.SASL.Mechanism)
		}
	default:
		return fmt.Errorf("kafka: --kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	return nil
}

func (c Config) dialTimeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return 10 * time.Second
}

// tlsConfig builds the client TLS configuration, nil when TLS is off.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: load TLS client certificate %s: %w", c.TLS.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism, nil when SASL is off.
func (c Config) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := scram.SHA256
		if strings.ToUpper(c.SASL.Mechanism) == MechanismSCRAMSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.SASL.Username, c.SASL.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka: SASL %s: %w", c.SASL.Mechanism, err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("kafka: --kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
}

// Transport returns the kafka-go transport for writers and clients.
func (c Config) Transport() (*kafkago.Transport, error) {
	tc, m, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafkago.Transport{DialTimeout: c.dialTimeout(), TLS: tc, SASL: m, IdleTimeout: 30 * time.Second, MetadataTTL: 30 * time.Second}, nil
}

// Dialer returns the kafka-go dialer for readers.
func (c Config) Dialer() (*kafkago.Dialer, error) {
	tc, m, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafkago.Dialer{Timeout: c.dialTimeout(), DualStack: true, TLS: tc, SASLMechanism: m}, nil
}

// Client returns a kafka-go client for requests (metadata, offsets).
func (c Config) Client() (*kafkago.Client, error) {
	t, err := c.Transport()
	if err != nil {
		return nil, err
	}
	return &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Transport: t, Timeout: c.dialTimeout()}, nil
}

// security validates c and returns its TLS configuration and SASL
// mechanism (nil when unused), which writers, clients and readers share.
func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	m, err := c.mechanism()
	if err != nil {
		return nil, nil, err
	}
	return tc, m, nil
}
