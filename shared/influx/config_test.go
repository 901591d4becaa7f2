package influx

import (
	"os"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

func TestConfigFromCLI(t *testing.T) {
	cases := []struct {
		name  string
		flags []cli.Flag
		args  []string
		env   map[string]string
		want  Config
	}{
		{"defaults, without the tuning flags", cliapp.InfluxFlags(), nil, nil, Config{
			URL: "http://127.0.0.1:8086", Org: "flexipack", Bucket: "telemetry/autogen",
			BatchLines: DefaultBatchLines, Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries,
			RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax, StreamWindow: DefaultStreamWindow,
		}},
		{"flags and environment", cliapp.Merge(cliapp.InfluxFlags(), Flags()),
			[]string{"--influx-url", "http://influx:8086/", "--influx-batch-lines", "1000", "--influx-max-retries", "0"},
			map[string]string{"INFLUX_BUCKET": "db/rp", "INFLUX_TOKEN": "u:p", "INFLUX_TIMEOUT": "3s"},
			Config{
				URL: "http://influx:8086", Token: "u:p", Org: "flexipack", Bucket: "db/rp",
				BatchLines: 1000, Timeout: 3 * time.Second, MaxRetries: 0, // an explicit 0: no retries
				RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax, StreamWindow: DefaultStreamWindow,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Start from a clean environment; t.Setenv restores it afterwards.
			for _, k := range []string{"INFLUX_URL", "INFLUX_TOKEN", "INFLUX_ORG", "INFLUX_BUCKET", "INFLUX_BATCH_LINES", "INFLUX_TIMEOUT", "INFLUX_MAX_RETRIES", "INFLUX_RETRY_BASE"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var got Config
			app := &cli.App{Flags: c.flags, Action: func(ctx *cli.Context) error { got = ConfigFromCLI(ctx); return nil }}
			if err := app.Run(append([]string{"x"}, c.args...)); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}
