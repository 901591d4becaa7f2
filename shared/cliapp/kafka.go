package cliapp

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/kafka"
)

// Kafka flag names beyond the brokers.
const (
	FlagKafkaTopic         = "kafka-topic"
	FlagKafkaTLS           = "kafka-tls"
	FlagKafkaTLSCA         = "kafka-tls-ca"
	FlagKafkaTLSCert       = "kafka-tls-cert"
	FlagKafkaTLSKey        = "kafka-tls-key"
	FlagKafkaTLSServerName = "kafka-tls-server-name"
	FlagKafkaSASLMechanism = "kafka-sasl-mechanism"
	FlagKafkaSASLUsername  = "kafka-sasl-username"
	FlagKafkaSASLPassword  = "kafka-sasl-password"
)

// KafkaSecurityFlags are TLS and SASL to the Kafka brokers.
func KafkaSecurityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: FlagKafkaTLS, EnvVars: []string{"KAFKA_TLS"}, Category: "Kafka", Usage: "connect to the brokers over TLS"},
		&cli.StringFlag{Name: FlagKafkaTLSCA, EnvVars: []string{"KAFKA_TLS_CA"}, Category: "Kafka", Usage: "PEM file of the CAs that sign the brokers' certificates (default: the system's)"},
		&cli.StringFlag{Name: FlagKafkaTLSCert, EnvVars: []string{"KAFKA_TLS_CERT"}, Category: "Kafka", Usage: "PEM client certificate, for brokers that require mutual TLS"},
		&cli.StringFlag{Name: FlagKafkaTLSKey, EnvVars: []string{"KAFKA_TLS_KEY"}, Category: "Kafka", Usage: "PEM private key of --kafka-tls-cert"},
		&cli.StringFlag{Name: FlagKafkaTLSServerName, EnvVars: []string{"KAFKA_TLS_SERVER_NAME"}, Category: "Kafka", Usage: "name to verify in the brokers' certificates (default: the broker host)"},
		&cli.StringFlag{Name: FlagKafkaSASLMechanism, EnvVars: []string{"KAFKA_SASL_MECHANISM"}, Category: "Kafka", Usage: "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)"},
		&cli.StringFlag{Name: FlagKafkaSASLUsername, EnvVars: []string{"KAFKA_SASL_USERNAME"}, Category: "Kafka", Usage: "SASL user name"},
		&cli.StringFlag{Name: FlagKafkaSASLPassword, EnvVars: []string{"KAFKA_SASL_PASSWORD"}, Category: "Kafka", Usage: "SASL password (prefer KAFKA_SASL_PASSWORD or --kafka-sasl-password-file to the flag)"},
	}
}

// KafkaTopicFlag is the Kafka topic telemetry is published to and consumed from.
func KafkaTopicFlag() cli.Flag {
	return &cli.StringFlag{Name: FlagKafkaTopic, EnvVars: []string{"KAFKA_TOPIC"}, Value: "telemetry", Category: "Kafka",
		Usage: "Kafka topic of the telemetry (messages keyed by unit)"}
}

// KafkaConfig reads the Kafka connection flags (KafkaFlags and
// KafkaSecurityFlags) into the typed configuration shared/kafka takes.
func KafkaConfig(c *cli.Context) kafka.Config {
	return kafka.Config{
		Brokers: c.StringSlice(FlagKafkaBrokers),
		TLS: kafka.TLSConfig{
			Enabled:    c.Bool(FlagKafkaTLS),
			CAFile:     c.String(FlagKafkaTLSCA),
			CertFile:   c.String(FlagKafkaTLSCert),
			KeyFile:    c.String(FlagKafkaTLSKey),
			ServerName: c.String(FlagKafkaTLSServerName),
		},
		SASL: kafka.SASLConfig{
			Mechanism: c.String(FlagKafkaSASLMechanism),
			Username:  c.String(FlagKafkaSASLUsername),
			Password:  c.String(FlagKafkaSASLPassword),
		},
	}
}

// FlagKafkaCreateTopics is whether a binary creates its missing topics.
const FlagKafkaCreateTopics = "kafka-create-topics"

// KafkaCreateTopicsFlag lets a binary create the topics it needs at start.
func KafkaCreateTopicsFlag() cli.Flag {
	return &cli.BoolFlag{Name: FlagKafkaCreateTopics, EnvVars: []string{"KAFKA_CREATE_TOPICS"}, Value: true, Category: "Kafka",
		Usage: "create the topic (and the dead-letter topic) at start when missing, with the broker's default partitions and replication; turn off where topics are managed elsewhere"}
}
