package cliapp

import (
	"crypto/tls"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/tlsconf"
)

// Environment variables every binary reads for the services it talks to.
// scripts/services.sh env prints them; docker-compose.yml sets them.
const (
	EnvAMQPURL      = "AMQP_URL"
	EnvAMQPMgmtURL  = "AMQP_MANAGEMENT_URL"
	EnvPGDSN        = "PG_DSN"
	EnvStateDSN     = "STATE_DSN"
	EnvInfluxURL    = "INFLUX_URL"
	EnvInfluxToken  = "INFLUX_TOKEN"
	EnvInfluxOrg    = "INFLUX_ORG"
	EnvInfluxBucket = "INFLUX_BUCKET"
	EnvS3Endpoint   = "S3_ENDPOINT"
	EnvS3Bucket     = "S3_BUCKET"
	EnvS3Prefix     = "S3_PREFIX"
	EnvS3CAFile     = "S3_CA_FILE"
	EnvAWSKeyID     = "AWS_ACCESS_KEY_ID"
	EnvAWSSecret    = "AWS_SECRET_ACCESS_KEY"
	EnvAWSRegion    = "AWS_REGION"
	EnvKafkaBrokers = "KAFKA_BROKERS"
	EnvBus          = "BUS"
	EnvHTTPAddr     = "HTTP_ADDR"
)

// Flag names, so commands read them without repeating string literals.
const (
	FlagAMQPURL      = "amqp-url"
	FlagAMQPMgmtURL  = "amqp-management-url"
	FlagAMQPCAFile   = "amqp-ca-file"
	FlagAMQPCertFile = "amqp-cert-file"
	FlagAMQPKeyFile  = "amqp-key-file"
	FlagPGDSN        = "pg-dsn"
	FlagStateDSN     = "state-dsn"
	FlagInfluxURL    = "influx-url"
	FlagInfluxToken  = "influx-token"
	FlagInfluxOrg    = "influx-org"
	FlagInfluxBucket = "influx-bucket"
	FlagS3Endpoint   = "s3-endpoint"
	FlagS3Bucket     = "s3-bucket"
	FlagS3Prefix     = "s3-prefix"
	FlagS3CAFile     = "s3-ca-file"
	FlagAWSKeyID     = "aws-access-key-id"
	FlagAWSSecret    = "aws-secret-access-key"
	FlagAWSRegion    = "aws-region"
	FlagKafkaBrokers = "kafka-brokers"
	FlagBus          = "bus"
	FlagHTTPAddr     = "http-addr"
	FlagOutput       = "output"
)

// AMQPFlags are the RabbitMQ connection flags: the URL and, for amqps://,
// the TLS files (AMQPTLS reads them).
func AMQPFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagAMQPURL, EnvVars: []string{EnvAMQPURL}, Value: "amqp://guest:guest@127.0.0.1:5672/", Usage: "RabbitMQ URL (amqps:// for TLS)", Category: "RabbitMQ"},
		&cli.StringFlag{Name: FlagAMQPCAFile, EnvVars: []string{"AMQP_CA_FILE"}, Usage: "PEM file of the CA that signs the broker's certificate (amqps://; default: system roots)", Category: "RabbitMQ"},
		&cli.StringFlag{Name: FlagAMQPCertFile, EnvVars: []string{"AMQP_CERT_FILE"}, Usage: "PEM client certificate for amqps:// (with --amqp-key-file)", Category: "RabbitMQ"},
		&cli.StringFlag{Name: FlagAMQPKeyFile, EnvVars: []string{"AMQP_KEY_FILE"}, Usage: "PEM key of --amqp-cert-file", Category: "RabbitMQ"},
	}
}

// AMQPTLS returns the TLS configuration of the --amqp-*-file flags, or nil
// when none is set.
func AMQPTLS(c *cli.Context) (*tls.Config, error) {
	f := tlsconf.Files{CAFile: c.String(FlagAMQPCAFile), CertFile: c.String(FlagAMQPCertFile), KeyFile: c.String(FlagAMQPKeyFile)}
	if f.IsZero() {
		return nil, nil
	}
	cfg, err := tlsconf.Config(f, "")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq TLS: %w", err)
	}
	return cfg, nil
}

// AMQPManagementFlag is the RabbitMQ management API URL (queue depth).
func AMQPManagementFlag() cli.Flag {
	return &cli.StringFlag{Name: FlagAMQPMgmtURL, EnvVars: []string{EnvAMQPMgmtURL}, Value: "http://guest:guest@127.0.0.1:15672", Usage: "RabbitMQ management API URL, with credentials", Category: "RabbitMQ"}
}

// KafkaFlags are the Kafka connection flags: brokers, TLS and SASL.
func KafkaFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: FlagKafkaBrokers, EnvVars: []string{EnvKafkaBrokers}, Value: cli.NewStringSlice("127.0.0.1:9092"), Usage: "Kafka bootstrap brokers, host:port (comma-separated)", Category: "Kafka"},
	}
	return append(flags, KafkaSecurityFlags()...)
}

// BusFlag selects the message bus: rabbitmq or kafka.
func BusFlag() cli.Flag {
	return &cli.StringFlag{Name: FlagBus, EnvVars: []string{EnvBus}, Value: "rabbitmq", Usage: "message bus: rabbitmq or kafka", Category: "Bus"}
}

// LegacyFlags is the legacy store (PostgreSQL) DSN.
func LegacyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagPGDSN, EnvVars: []string{EnvPGDSN}, Value: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", Usage: "legacy store PostgreSQL DSN", Category: "Legacy store"},
	}
}

// StateFlags is the cutover state store DSN.
func StateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagStateDSN, EnvVars: []string{EnvStateDSN}, Value: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", Usage: "cutover state store PostgreSQL DSN (may equal --pg-dsn)", Category: "State store"},
	}
}

// InfluxDB flag names beyond the connection four.
const (
	FlagInfluxAPI        = "influx-api"
	FlagInfluxCAFile     = "influx-ca-file"
	FlagInfluxCertFile   = "influx-cert-file"
	FlagInfluxKeyFile    = "influx-key-file"
	FlagInfluxBatchLines = "influx-batch-lines"
	FlagInfluxTimeout    = "influx-timeout"
	FlagInfluxMaxRetries = "influx-max-retries"
	FlagInfluxRetryBase  = "influx-retry-base"
	FlagInfluxGzip       = "influx-gzip"
)

// InfluxFlags are the InfluxDB flags, defined once for every command that
// talks to InfluxDB; InfluxConfig reads them into an influx.Config.
func InfluxFlags() []cli.Flag {
	const cat = "InfluxDB"
	return []cli.Flag{
		&cli.StringFlag{Name: FlagInfluxURL, EnvVars: []string{EnvInfluxURL}, Value: "http://127.0.0.1:8086", Usage: "InfluxDB URL (https:// for TLS)", Category: cat},
		&cli.StringFlag{Name: FlagInfluxToken, EnvVars: []string{EnvInfluxToken}, Usage: "InfluxDB credentials: 1.x user:password (or empty without auth); 2.x and 3.x an API token", Category: cat},
		&cli.StringFlag{Name: FlagInfluxOrg, EnvVars: []string{EnvInfluxOrg}, Value: "flexipack", Usage: "InfluxDB organisation (2.x writes; ignored by 1.x and 3.x)", Category: cat},
		&cli.StringFlag{Name: FlagInfluxBucket, EnvVars: []string{EnvInfluxBucket}, Value: "telemetry/autogen", Usage: "where readings go: 1.x database/retention-policy; 2.x bucket (InfluxQL reads need a DBRP mapping of its name); 3.x database", Category: cat},
		&cli.StringFlag{Name: FlagInfluxAPI, EnvVars: []string{"INFLUX_API"}, Value: string(influx.APIAuto), Usage: "InfluxDB HTTP API: auto (asked from /ping), v1, v2 or v3", Category: cat},
		&cli.StringFlag{Name: FlagInfluxCAFile, EnvVars: []string{"INFLUX_CA_FILE"}, Usage: "PEM file of the CA certificates that sign an https:// InfluxDB's certificate (instead of the system's)", Category: cat},
		&cli.StringFlag{Name: FlagInfluxCertFile, EnvVars: []string{"INFLUX_CERT_FILE"}, Usage: "PEM client certificate for an InfluxDB behind mutual TLS (with --influx-key-file)", Category: cat},
		&cli.StringFlag{Name: FlagInfluxKeyFile, EnvVars: []string{"INFLUX_KEY_FILE"}, Usage: "PEM private key of --influx-cert-file", Category: cat},
		&cli.IntFlag{Name: FlagInfluxBatchLines, EnvVars: []string{"INFLUX_BATCH_LINES"}, Value: influx.DefaultBatchLines, Usage: "most line-protocol lines per InfluxDB write request", Category: cat},
		&cli.DurationFlag{Name: FlagInfluxTimeout, EnvVars: []string{"INFLUX_TIMEOUT"}, Value: influx.DefaultTimeout, Usage: "time-out of one InfluxDB write, and of the wait for each part of a query's answer (retried)", Category: cat},
		&cli.IntFlag{Name: FlagInfluxMaxRetries, EnvVars: []string{"INFLUX_MAX_RETRIES"}, Value: influx.DefaultMaxRetries, Usage: "retries of a request after 429, 5xx, network errors or time-outs (0: none)", Category: cat},
		&cli.DurationFlag{Name: FlagInfluxRetryBase, EnvVars: []string{"INFLUX_RETRY_BASE"}, Value: influx.DefaultRetryBase, Usage: "first retry back-off, doubled per retry (Retry-After overrides)", Category: cat},
		&cli.BoolFlag{Name: FlagInfluxGzip, EnvVars: []string{"INFLUX_GZIP"}, Usage: "ask InfluxDB to gzip query answers: less bandwidth to a distant server, more InfluxDB CPU (off: on one machine it cost verify about 30% of InfluxDB's CPU)", Category: cat},
	}
}

// InfluxConfig reads the InfluxFlags into an influx.Config; the influx
// package validates it (NewWriter, NewClient).
func InfluxConfig(c *cli.Context) influx.Config {
	retries := c.Int(FlagInfluxMaxRetries)
	if retries == 0 && c.IsSet(FlagInfluxMaxRetries) {
		retries = -1 // an explicit 0 means no retries, not the default
	}
	return influx.Config{
		URL:        c.String(FlagInfluxURL),
		Token:      c.String(FlagInfluxToken),
		Org:        c.String(FlagInfluxOrg),
		Bucket:     c.String(FlagInfluxBucket),
		API:        influx.API(c.String(FlagInfluxAPI)),
		CAFile:     c.String(FlagInfluxCAFile),
		CertFile:   c.String(FlagInfluxCertFile),
		KeyFile:    c.String(FlagInfluxKeyFile),
		BatchLines: c.Int(FlagInfluxBatchLines),
		Timeout:    c.Duration(FlagInfluxTimeout),
		MaxRetries: retries,
		RetryBase:  c.Duration(FlagInfluxRetryBase),

		GzipQueries: c.Bool(FlagInfluxGzip),
	}
}

// S3Flags are the snapshot store flags. Credentials are the access key
// flags when given, the standard AWS chain (profiles, SSO, instance roles)
// otherwise.
func S3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagS3Endpoint, EnvVars: []string{EnvS3Endpoint}, Usage: "S3 endpoint override for MinIO and other S3-compatible stores (path-style addressing); empty for AWS", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagS3Bucket, EnvVars: []string{EnvS3Bucket}, Usage: "S3 bucket holding the legacy snapshots", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagS3Prefix, EnvVars: []string{EnvS3Prefix}, Value: "snapshots", Usage: "key prefix of the snapshots in the bucket", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagS3CAFile, EnvVars: []string{EnvS3CAFile}, Usage: "PEM file of the CA that signs the S3 endpoint's certificate (https endpoints with a private CA; default: system roots)", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagAWSKeyID, EnvVars: []string{EnvAWSKeyID}, Usage: "S3 access key (default: AWS credential chain)", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagAWSSecret, EnvVars: []string{EnvAWSSecret}, Usage: "S3 secret key (default: AWS credential chain)", Category: "Snapshots"},
		&cli.StringFlag{Name: FlagAWSRegion, EnvVars: []string{EnvAWSRegion}, Value: "us-east-1", Usage: "S3 region", Category: "Snapshots"},
	}
}

// HTTPAddrFlag is where a long-running command serves /metrics, /-/healthy and /-/ready.
func HTTPAddrFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: FlagHTTPAddr, EnvVars: []string{EnvHTTPAddr}, Value: def, Usage: "address for /metrics, /-/healthy and /-/ready (empty disables)"}
}

// OutputFlag selects table or JSON output.
func OutputFlag() cli.Flag {
	return &cli.StringFlag{Name: FlagOutput, Aliases: []string{"o"}, Value: "table", Usage: "output format: table or json"}
}

// Output returns the validated --output value.
func Output(c *cli.Context) (string, error) {
	switch o := c.String(FlagOutput); o {
	case "table", "json":
		return o, nil
	default:
		return "", Exitf(ExitFailure, "--output %q: want table or json", o)
	}
}

// Merge concatenates flag lists.
func Merge(lists ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
