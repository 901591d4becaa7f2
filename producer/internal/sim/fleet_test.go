package sim

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/telemetry"
)

// decodeAll decodes every message with the codec and checks it against
// what the simulator says a decoder must make of it.
func decodeAll(t *testing.T, msgs []Message, now time.Time) (records, rejects, bad int) {
	t.Helper()
	dec := telemetry.NewDecoder()
	dec.Now = func() time.Time { return now }
	seen := map[telemetry.Key]bool{}
	for _, m := range msgs {
		res, err := dec.Decode(m.Body)
		if m.Bad != "" {
			if err == nil {
				t.Fatalf("%s (%s): decoded, want a whole-message rejection:\n%s", m.ID, m.Bad, m.Body)
			}
			bad++
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", m.ID, err, m.Body)
		}
		if len(res.Records) != m.Valid || len(res.Rejects) != m.Rejected {
			t.Fatalf("%s: %d records and %d rejects (%v), want %d and %d\n%s", m.ID, len(res.Records), len(res.Rejects), res.Rejects, m.Valid, m.Rejected, m.Body)
		}
		if len(res.Records)+len(res.Rejects) != m.Samples || m.Headers[bus.HeaderSamples] != strconv.Itoa(m.Samples) {
			t.Fatalf("%s: samples header %s, %d samples", m.ID, m.Headers[bus.HeaderSamples], m.Samples)
		}
		sum, err := telemetry.Inspect(m.Body)
		if err != nil || sum.Unit != m.Key || strconv.Itoa(sum.Generation) != m.Headers[bus.HeaderGeneration] || sum.Samples != m.Samples {
			t.Fatalf("%s: Inspect = %+v, %v; headers %v", m.ID, sum, err, m.Headers)
		}
		for i := range res.Records {
			r := &res.Records[i]
			// Records alias the decoder's memory: keep a copy of the key.
			key := telemetry.Key{Unit: strings.Clone(r.Unit), TimeMs: r.TimeMs}
			if seen[key] {
				t.Fatalf("%s: reading %v produced twice", m.ID, key)
			}
			seen[key] = true
			if r.TimeMs > now.UnixMilli() {
				t.Fatalf("%s: reading at %v is after now %v", m.ID, r.Time(), now)
			}
		}
		records += len(res.Records)
		rejects += len(res.Rejects)
	}
	return records, rejects, bad
}

func TestFleetDecodesWithoutRejections(t *testing.T) {
	f, err := NewFleet(Config{Units: 60, Gen1Share: 0.3, Seed: 7, OfflineProb: 0.02, Cadence: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Ten hours from 10:00: midday charge, idle, evening discharge.
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var msgs []Message
	ticks := 600
	for i := 0; i < ticks; i++ {
		msgs = f.Tick(start.Add(time.Duration(i)*time.Minute), msgs)
	}
	now := start.Add(time.Duration(ticks) * time.Minute)
	records, rejects, bad := decodeAll(t, msgs, now)
	if rejects != 0 || bad != 0 {
		t.Fatalf("%d rejects, %d bad messages with --bad-ratio 0", rejects, bad)
	}
	if want := 60*ticks - f.Buffered(); records != want {
		t.Fatalf("%d records, want %d (units × ticks − still buffered)", records, want)
	}
	var gen1, flush, prefixes, modes = 0, 0, map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		if m.Generation == 1 {
			gen1++
		}
		if m.Flush {
			flush++
		}
		switch {
		case bytes.Contains(m.Body, []byte("<bsu:Telemetry")):
			prefixes["bsu"] = true
		case bytes.Contains(m.Body, []byte("<t:Telemetry")):
			prefixes["t"] = true
		case bytes.Contains(m.Body, []byte("<Telemetry")):
			prefixes["default"] = true
		}
		for _, mode := range []string{"charging", "discharging", "idle"} {
			if bytes.Contains(m.Body, []byte(">"+mode+"<")) {
				modes[mode] = true
			}
		}
	}
	if gen1 != 18*ticks {
		t.Errorf("%d gen-1 messages, want %d", gen1, 18*ticks)
	}
	if flush == 0 || len(prefixes) != 3 || len(modes) != 3 {
		t.Errorf("fleet lacks variety: %d flushes, prefixes %v, modes %v", flush, prefixes, modes)
	}
	t.Logf("%d messages, %d readings, %d flushes", len(msgs), records, flush)
}

func TestFleetBadRatio(t *testing.T) {
	f, err := NewFleet(Config{Units: 40, Gen1Share: 0.3, Seed: 3, BadRatio: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var msgs []Message
	for i := 0; i < 100; i++ {
		msgs = f.Tick(start.Add(time.Duration(i)*10*time.Second), msgs)
	}
	var wantValid, wantRejected, wantBad int
	kinds := map[string]bool{}
	for _, m := range msgs {
		wantValid += m.Valid
		wantRejected += m.Rejected
		if m.Bad != "" {
			wantBad++
			kinds[m.Bad] = true
		}
	}
	records, rejects, bad := decodeAll(t, msgs, start.Add(time.Hour))
	if records != wantValid || rejects != wantRejected || bad != wantBad {
		t.Fatalf("decoded %d/%d/%d, simulator said %d/%d/%d", records, rejects, bad, wantValid, wantRejected, wantBad)
	}
	if len(kinds) < 5 || rejects == 0 {
		t.Fatalf("bad kinds %v, %d rejected samples", kinds, rejects)
	}
	t.Logf("%d messages: %d readings, %d rejected samples, %d bad messages", len(msgs), records, rejects, bad)
}

func TestFleetDeterministic(t *testing.T) {
	gen := func() []Message {
		f, err := NewFleet(Config{Units: 10, Gen1Share: 0.5, Seed: 42, BadRatio: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []Message
		for i := 0; i < 50; i++ {
			msgs = f.Tick(time.Unix(1763700000, 0).Add(time.Duration(i)*10*time.Second), msgs)
		}
		return msgs
	}
	a, b := gen(), gen()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d messages", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Body, b[i].Body) {
			t.Fatalf("message %d differs between runs with the same seed", i)
		}
	}
}

func TestFleetConfigErrors(t *testing.T) {
	for _, c := range []Config{{Units: 0}, {Units: 1, Gen1Share: 2}, {Units: 1, BadRatio: -1}, {Units: 1, Cadence: 1500 * time.Millisecond}} {
		if _, err := NewFleet(c); err == nil {
			t.Errorf("NewFleet(%+v): want an error", c)
		}
	}
}

func BenchmarkFleetTick(b *testing.B) {
	f, err := NewFleet(Config{Units: 1000, Gen1Share: 0.3, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	var msgs []Message
	n, bytesOut := 0, 0
	for i := 0; i < b.N; i++ {
		msgs = f.Tick(start.Add(time.Duration(i)*10*time.Second), msgs[:0])
		n += len(msgs)
		for _, m := range msgs {
			bytesOut += len(m.Body)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytesOut)/float64(max(n, 1)), "bytes/msg")
}
