package cliapp

import (
	"os"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/influx"
)

func TestInfluxConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want influx.Config
	}{
		{"defaults", nil, nil, influx.Config{
			URL: "http://127.0.0.1:8086", Org: "flexipack", Bucket: "telemetry/autogen", API: influx.APIAuto,
			BatchLines: influx.DefaultBatchLines, Timeout: influx.DefaultTimeout, MaxRetries: influx.DefaultMaxRetries,
			RetryBase: influx.DefaultRetryBase,
		}},
		{"flags and environment",
			[]string{"--influx-url", "https://influx:8086/", "--influx-batch-lines", "1000", "--influx-max-retries", "0", "--influx-api", "v3", "--influx-ca-file", "ca.pem"},
			map[string]string{"INFLUX_BUCKET": "db/rp", "INFLUX_TOKEN": "u:p", "INFLUX_TIMEOUT": "3s", "INFLUX_CERT_FILE": "c.pem", "INFLUX_KEY_FILE": "k.pem"},
			influx.Config{
				URL: "https://influx:8086/", Token: "u:p", Org: "flexipack", Bucket: "db/rp", API: influx.APIV3,
				CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem",
				BatchLines: 1000, Timeout: 3 * time.Second, MaxRetries: -1, // an explicit 0: no retries
				RetryBase: influx.DefaultRetryBase,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range InfluxFlags() {
				for _, k := range f.(interface{ GetEnvVars() []string }).GetEnvVars() {
					t.Setenv(k, "")
					os.Unsetenv(k)
				}
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var got influx.Config
			app := &cli.App{Flags: InfluxFlags(), Action: func(ctx *cli.Context) error { got = InfluxConfig(ctx); return nil }}
			if err := app.Run(append([]string{"x"}, c.args...)); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}
