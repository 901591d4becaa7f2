package engine

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// benchRules is 20 rules of every kind: 10 thresholds, 4 aggregates, 2
// absences, 2 alarms, 2 shares.
func benchRules(tb testing.TB) *rules.Set {
	var b strings.Builder
	b.WriteString("settings:\n  allowed_lateness: 2m\nrules:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "  - {name: T%d, kind: threshold, expr: temp_cell_max_c > %d, clear: temp_cell_max_c < %d, for: 2m, severity: warning, annotations: {summary: '{{ .Unit }} {{ .Value }}'}}\n", i, 40+i, 38+i)
	}
	for i, f := range []string{"mean", "min", "max", "delta"} {
		fmt.Fprintf(&b, "  - {name: A%d, kind: aggregate, field: soc_pct, func: %s, window: 10m, when: mode != fault, expr: value < %d, severity: warning}\n", i, f, 5-20*boolInt(f == "delta"))
	}
	b.WriteString("  - {name: S0, kind: absence, for: 15m, severity: warning}\n  - {name: S1, kind: absence, for: 1h, severity: critical}\n")
	b.WriteString("  - {name: L0, kind: alarm, alarm_severity: critical, severity: critical}\n  - {name: L1, kind: alarm, alarm_severity: warning, alarm_code: 'OVT-.*', severity: warning}\n")
	b.WriteString("  - {name: F0, kind: share, scope: site, match: mode == fault, expr: value > 0.1, min_units: 5, for: 2m, severity: critical}\n")
	b.WriteString("  - {name: F1, kind: share, scope: fleet, match: soc_pct < 5, expr: value > 0.2, min_units: 5, severity: warning}\n")
	set, err := rules.Parse("bench.yml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if len(set.Rules) != 20 {
		tb.Fatalf("%d rules", len(set.Rules))
	}
	return set
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fleetMessages returns n generation-1 messages from units reporting every
// 10 s in turn, with temperatures that cross the thresholds now and then.
func fleetMessages(units, n int) [][]byte { return fleetMessagesFrom(units, 0, n) }

// fleetMessagesFrom returns messages from..from+n of the same sequence.
func fleetMessagesFrom(units, from, n int) [][]byte {
	msgs := make([][]byte, n)
	for j := range msgs {
		i := from + j
		u, tick := i%units, i/units
		ts := benchStart.Add(time.Duration(tick)*10*time.Second + time.Duration(u)*time.Millisecond)
		temp := 300 + (i*7)%200 // 30.0 .. 49.9 °C
		state := 0
		if i%997 == 0 {
			state = 3
		}
		msgs[j] = fmt.Appendf(nil, `<telemetry schema="1.0"><unit id="FP1-%06d" site="site-%d" model="FlexiPack-100"/><reading ts="%d" seq="%d">`+
			`<soc>%d.5</soc><voltage>798400</voltage><current>-12300</current><temp_max>%d</temp_max><temp_min>298</temp_min><state>%d</state></reading></telemetry>`,
			u, u%20, ts.UnixMilli(), tick, 20+(i%60), temp, state)
	}
	return msgs
}

func benchDecoder(msgs [][]byte, units int) *telemetry.Decoder {
	end := benchStart.Add(time.Duration(len(msgs)/units+1) * 10 * time.Second)
	return &telemetry.Decoder{Now: func() time.Time { return end }}
}

// BenchmarkEvaluate20Rules1000Units decodes and evaluates 20 rules over
// 1,000 units (state warmed: windows full), next to its baseline measured
// in the same run on the same messages: decoding alone. Rates are readings
// per CPU second of the process (per core; the target is 50,000).
func BenchmarkEvaluate20Rules1000Units(b *testing.B) {
	warm := fleetMessages(1000, 100000)
	end := benchStart.Add(time.Hour * 24 * 365)
	e := New(benchRules(b), Options{Now: func() time.Time { return end }})
	dec := benchDecoder(warm, 1000)
	for i := range warm {
		res, _ := dec.Decode(warm[i])
		e.Observe(res.Records)
	}
	e.Drain()
	e.TakeDirty()
	if b.N > 300000 {
		b.Fatalf("b.N %d: use -benchtime 300000x or less (later readings would repeat and be ignored as duplicates)", b.N)
	}
	msgs := fleetMessagesFrom(1000, len(warm), b.N)
	dec = benchDecoder(make([][]byte, len(warm)+len(msgs)), 1000)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testenv.CPUTime()
	readings := 0
	for i := range msgs {
		res, err := dec.Decode(msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		readings += len(res.Records)
	}
	decodeCPU := testenv.CPUTime() - cpu0
	cpu1 := testenv.CPUTime()
	for i := range msgs {
		res, err := dec.Decode(msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		e.Observe(res.Records)
		if i%1000 == 999 {
			e.Tick()
			e.Drain()
			e.TakeDirty()
		}
	}
	evalCPU := testenv.CPUTime() - cpu1
	b.StopTimer()
	if decodeCPU <= 0 || evalCPU <= 0 {
		b.Fatal("no CPU time measured")
	}
	rate, base := float64(readings)/evalCPU.Seconds(), float64(readings)/decodeCPU.Seconds()
	b.ReportMetric(rate, "readings/cpu-s")
	b.ReportMetric(base, "decode-readings/cpu-s")
	b.ReportMetric(rate/base, "ratio")
	b.ReportMetric(evalCPU.Seconds()*1e6/float64(readings), "cpu-us/reading")
}

// BenchmarkStateBytes measures the heap the engine holds per unit × rule
// with 20 rules at 1,000 and at 100,000 units, after every unit reported
// every 10 s for 10 minutes (the aggregate windows are full).
func BenchmarkStateBytes(b *testing.B) {
	for i := 0; i < b.N; i++ {
		small, large := stateBytes(b, 1000), stateBytes(b, 100000)
		b.ReportMetric(small, "1k-B/unit-rule")
		b.ReportMetric(large, "100k-B/unit-rule")
		b.ReportMetric(large/small, "ratio")
	}
}

func stateBytes(tb testing.TB, units int) float64 {
	set := benchRules(tb)
	end := benchStart.Add(time.Hour * 24 * 365)
	recs := make([]telemetry.Record, 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := New(set, Options{Now: func() time.Time { return end }})
	ids := make([]string, units)
	for u := range ids {
		ids[u] = fmt.Sprintf("FP2-%06d", u)
	}
	for tick := 0; tick <= 60; tick++ {
		for u := 0; u < units; u++ {
			recs[0] = telemetry.Record{Unit: ids[u], Site: "site", TimeMs: benchStart.Add(time.Duration(tick) * 10 * time.Second).UnixMilli(),
				Has: telemetry.HasSoC, SoC: 50 - float64(tick)/10, Temps: []telemetry.Temp{{Sensor: "cell_max", C: 30}}, Mode: telemetry.ModeIdle}
			e.Observe(recs)
		}
		e.Drain()
		e.TakeDirty()
	}
	ids, recs = nil, nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(units*len(set.Rules))
}

// BenchmarkCheckpoint1000Units measures TakeCheckpoint (the periodic write
// of changed units with their windows) over 1,000 units whose 4 aggregate
// windows of 10 minutes are full (a reading every 10 s), next to its
// baseline in the same run: TakeDirty of the same units (frontiers only,
// what every batch with an alert change writes). One op is one unit.
func BenchmarkCheckpoint1000Units(b *testing.B) {
	const units = 1000
	set := benchRules(b)
	end := benchStart.Add(time.Hour * 24 * 365)
	e := New(set, Options{Now: func() time.Time { return end }})
	recs := make([]telemetry.Record, 1)
	tick := 0
	touch := func() {
		for u := 0; u < units; u++ {
			recs[0] = telemetry.Record{Unit: fmt.Sprintf("FP2-%06d", u), Site: "site", TimeMs: benchStart.Add(time.Duration(tick) * 10 * time.Second).UnixMilli(),
				Has: telemetry.HasSoC, SoC: 50 - float64(tick%100)/10, Mode: telemetry.ModeIdle}
			e.Observe(recs)
		}
		tick++
	}
	for tick <= 60 {
		touch()
	}
	e.Drain()
	var dirtyNs, ckptNs time.Duration
	var bytesOut int
	b.ResetTimer()
	for done := 0; done < b.N; done += units {
		b.StopTimer()
		touch()
		e.Drain()
		b.StartTimer()
		t0 := time.Now()
		d := e.TakeDirty()
		t1 := time.Now()
		b.StopTimer()
		touch()
		e.Drain()
		e.TakeDirty()
		b.StartTimer()
		t2 := time.Now()
		c := e.TakeCheckpoint()
		t3 := time.Now()
		if len(d) != units || len(c) != units {
			b.Fatalf("%d dirty, %d checkpointed units; want %d", len(d), len(c), units)
		}
		for i := range c {
			bytesOut += len(c[i].Windows)
		}
		dirtyNs += t1.Sub(t0)
		ckptNs += t3.Sub(t2)
	}
	n := float64((b.N + units - 1) / units * units)
	b.ReportMetric(float64(ckptNs.Nanoseconds())/n, "ckpt-ns/unit")
	b.ReportMetric(float64(dirtyNs.Nanoseconds())/n, "dirty-ns/unit")
	b.ReportMetric(float64(ckptNs)/float64(dirtyNs), "ratio")
	b.ReportMetric(float64(bytesOut)/n, "window-B/unit")
}
