package influx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// The backfill must reach 80% of a raw line-protocol write. BenchmarkWrite
// compares, for batches of 5000 one-sample records into a fresh database:
//
//   - raw: POST pre-encoded line protocol to /api/v2/write in a loop (the
//     ceiling: no encoding, no client library);
//   - raw+encode: the same, encoding the records each time;
//   - writer: Writer.Write (encoding, the client's blocking write API,
//     retry and split bookkeeping).
//
// Run: go test ./shared/influx -run '^$' -bench BenchmarkWrite -benchtime 20x -count 3

const benchBatches = 40 // distinct batches, so up to 40 iterations write new points

// benchRecords returns benchBatches batches of n gen-2 one-sample records,
// 200 units, every batch at other times; every 10th record has an alarm.
func benchRecords(n int) [][]telemetry.Record {
	out := make([][]telemetry.Record, benchBatches)
	for b := range out {
		recs := make([]telemetry.Record, n)
		for i := range recs {
			recs[i] = telemetry.Record{
				Unit: fmt.Sprintf("FP2-%06d", i%200), Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
				Seq: int64(b*n + i), HasSeq: true,
				TimeMs: t0.Add(time.Duration(b)*time.Hour + time.Duration(i/200)*time.Second).UnixMilli(),
				Has:    telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
				SoC:    55.2, SoH: 97.1, Voltage: 812.1, Current: -12.3, Power: -9.99,
				Temps: []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}, {Sensor: "cell_min", C: 29.8}},
				Mode:  "discharging",
			}
			if i%10 == 0 {
				recs[i].Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"}}
			}
		}
		out[b] = recs
	}
	return out
}

func rawPost(ctx context.Context, c *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return nil
}

func BenchmarkWrite(b *testing.B) {
	const size = 5000
	batches := benchRecords(size)
	bodies := make([][]byte, len(batches))
	lines := 0
	for i, recs := range batches {
		for j := range recs {
			bodies[i] = telemetry.AppendLineProtocol(bodies[i], &recs[j])
		}
		lines = bytes.Count(bodies[i], []byte{'\n'})
	}
	ctx := context.Background()
	for _, impl := range []string{"raw", "raw+encode", "writer"} {
		b.Run(fmt.Sprintf("%s/batch=%d", impl, size), func(b *testing.B) {
			cfg, _ := freshDB(b)
			cfg.BatchLines = lines // one request per batch, as raw does
			u := fmt.Sprintf("%s/api/v2/write?bucket=%s&precision=ms", cfg.URL, url.QueryEscape(cfg.Bucket))
			client := &http.Client{Timeout: time.Minute}
			w := newWriter(b, cfg)
			var write func(i int) error
			switch impl {
			case "raw":
				write = func(i int) error { return rawPost(ctx, client, u, bodies[i%len(bodies)]) }
			case "raw+encode":
				var buf []byte
				write = func(i int) error {
					buf = buf[:0]
					recs := batches[i%len(batches)]
					for j := range recs {
						buf = telemetry.AppendLineProtocol(buf, &recs[j])
					}
					return rawPost(ctx, client, u, buf)
				}
			case "writer":
				write = func(i int) error { return w.Write(ctx, batches[i%len(batches)]) }
			}
			// The first write creates the series; warm it outside the timer.
			if err := rawPost(ctx, client, u, bodies[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 1; b.Loop(); i++ {
				if err := write(i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkWriterVsRaw interleaves a raw write and a Writer.Write of the same
// batch (into two fresh databases) in every iteration and reports each one's
// throughput and their ratio, so that load from other processes on a shared
// machine hits both alike.
//
// Run: go test ./shared/influx -run '^$' -bench BenchmarkWriterVsRaw -benchtime 40x
func BenchmarkWriterVsRaw(b *testing.B) {
	const size = 5000
	batches := benchRecords(size)
	bodies := make([][]byte, len(batches))
	for i, recs := range batches {
		for j := range recs {
			bodies[i] = telemetry.AppendLineProtocol(bodies[i], &recs[j])
		}
	}
	ctx := context.Background()
	rawCfg, _ := freshDB(b)
	wCfg, _ := freshDB(b)
	wCfg.BatchLines = bytes.Count(bodies[0], []byte{'\n'})
	u := fmt.Sprintf("%s/api/v2/write?bucket=%s&precision=ms", rawCfg.URL, url.QueryEscape(rawCfg.Bucket))
	client := &http.Client{Timeout: time.Minute}
	w := newWriter(b, wCfg)
	if err := rawPost(ctx, client, u, bodies[0]); err != nil {
		b.Fatal(err)
	}
	if err := w.Write(ctx, batches[0]); err != nil {
		b.Fatal(err)
	}
	var raw, writer time.Duration
	for i := 1; b.Loop(); i++ {
		k := i % len(batches)
		timeIt := func(f func() error, acc *time.Duration) {
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			*acc += time.Since(start)
		}
		first, second := func() { timeIt(func() error { return rawPost(ctx, client, u, bodies[k]) }, &raw) },
			func() { timeIt(func() error { return w.Write(ctx, batches[k]) }, &writer) }
		if i%2 == 1 {
			first, second = second, first
		}
		first()
		second()
	}
	n := float64(b.N)
	b.ReportMetric(size*n/raw.Seconds(), "raw-records/s")
	b.ReportMetric(size*n/writer.Seconds(), "writer-records/s")
	b.ReportMetric(raw.Seconds()/writer.Seconds(), "writer/raw")
}
