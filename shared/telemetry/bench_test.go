package telemetry

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The baseline: the same mapping written the plain way, with encoding/xml
// Unmarshal into structs, encoding/json Marshal and fmt/strings for line
// protocol. It exists to measure the codec against (and is checked to give
// the same output on the benchmark inputs); it is not used by the product.

type bxMeasure struct {
	Unit  *string `xml:"unit,attr"`
	Value string  `xml:",chardata"`
}

type bxTemp struct {
	Sensor string  `xml:"sensor,attr"`
	Unit   *string `xml:"unit,attr"`
	Value  string  `xml:",chardata"`
}

type bxAlarm struct {
	Code     string `xml:"code,attr"`
	Severity string `xml:"severity,attr"`
	Text     string `xml:",chardata"`
}

type bxSample struct {
	Seq     *string    `xml:"seq,attr"`
	Time    string     `xml:"time,attr"`
	SoC     *string    `xml:"urn:flexipack:telemetry:2 SoC"`
	SoH     *string    `xml:"urn:flexipack:telemetry:2 SoH"`
	Voltage *bxMeasure `xml:"urn:flexipack:telemetry:2 Voltage"`
	Current *bxMeasure `xml:"urn:flexipack:telemetry:2 Current"`
	Power   *bxMeasure `xml:"urn:flexipack:telemetry:2 Power"`
	Temps   []bxTemp   `xml:"urn:flexipack:telemetry:2 Temperature"`
	Mode    *string    `xml:"urn:flexipack:telemetry:2 Mode"`
	Alarms  *struct {
		Alarm []bxAlarm `xml:"urn:flexipack:telemetry:2 Alarm"`
	} `xml:"urn:flexipack:telemetry:2 Alarms"`
}

type bxGen2 struct {
	SchemaVersion string `xml:"schemaVersion,attr"`
	Unit          struct {
		Serial   string `xml:"serial,attr"`
		Site     string `xml:"site,attr"`
		Model    string `xml:"model,attr"`
		Firmware string `xml:"firmware,attr"`
	} `xml:"urn:flexipack:telemetry:2 Unit"`
	Samples []bxSample `xml:"urn:flexipack:telemetry:2 Sample"`
}

type bxGen1 struct {
	Schema string `xml:"schema,attr"`
	Unit   struct {
		ID    string `xml:"id,attr"`
		Site  string `xml:"site,attr"`
		Model string `xml:"model,attr"`
	} `xml:"unit"`
	Readings []struct {
		TS      string  `xml:"ts,attr"`
		Seq     *string `xml:"seq,attr"`
		SoC     *string `xml:"soc"`
		Voltage *string `xml:"voltage"`
		Current *string `xml:"current"`
		TempMax *string `xml:"temp_max"`
		TempMin *string `xml:"temp_min"`
		State   *string `xml:"state"`
	} `xml:"reading"`
}

type bxAlarmOut struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Text     string `json:"text"`
}

type bxRecord struct {
	Unit     string             `json:"unit"`
	Site     string             `json:"site,omitempty"`
	Model    string             `json:"model,omitempty"`
	Firmware string             `json:"firmware,omitempty"`
	Schema   string             `json:"schema"`
	Seq      *int64             `json:"seq,omitempty"`
	Time     string             `json:"time"`
	SoC      *float64           `json:"soc_pct,omitempty"`
	SoH      *float64           `json:"soh_pct,omitempty"`
	Voltage  *float64           `json:"voltage_v,omitempty"`
	Current  *float64           `json:"current_a,omitempty"`
	Power    *float64           `json:"power_kw,omitempty"`
	TempC    map[string]float64 `json:"temp_c,omitempty"`
	Mode     string             `json:"mode,omitempty"`
	Alarms   []bxAlarmOut       `json:"alarms,omitempty"`
	timeMs   int64
}

func bxRound(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return r + 0
}

func bxNumber(s string, conv func(float64) float64) (*float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("bad number %q", s)
	}
	v = bxRound(conv(v))
	return &v, nil
}

func bxIdent(v float64) float64 { return v }
func bxMilli(v float64) float64 { return v / 1000 }

func bxUnit(m *bxMeasure, base, milli string) (func(float64) float64, error) {
	if m.Unit == nil || *m.Unit == base {
		return bxIdent, nil
	}
	if *m.Unit == milli {
		return bxMilli, nil
	}
	return nil, fmt.Errorf("unknown unit %q", *m.Unit)
}

func bxTime(ms int64, now time.Time) (string, error) {
	t := time.UnixMilli(ms).UTC()
	if t.Before(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)) || t.After(now.Add(10*time.Minute)) {
		return "", errors.New("time out of range")
	}
	return t.Format("2006-01-02T15:04:05.000Z"), nil
}

// baselineDecode maps one message to records the plain way; rejected
// samples are counted, not described.
func baselineDecode(body []byte, now time.Time) ([]bxRecord, int, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var root xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	var recs []bxRecord
	rejects := 0
	switch {
	case root.Name.Space == Namespace && root.Name.Local == "Telemetry":
		var m bxGen2
		if err := dec.DecodeElement(&m, &root); err != nil {
			return nil, 0, err
		}
		schema := m.SchemaVersion
		if schema == "" {
			schema = "2.0"
		}
		for _, s := range m.Samples {
			r, err := bxSample2(&s, now)
			if err != nil {
				rejects++
				continue
			}
			r.Unit, r.Site, r.Model, r.Firmware, r.Schema = m.Unit.Serial, m.Unit.Site, m.Unit.Model, m.Unit.Firmware, schema
			recs = append(recs, r)
		}
	case root.Name.Space == "" && root.Name.Local == "telemetry":
		var m bxGen1
		if err := dec.DecodeElement(&m, &root); err != nil {
			return nil, 0, err
		}
		for _, rd := range m.Readings {
			r := bxRecord{Unit: m.Unit.ID, Site: m.Unit.Site, Model: m.Unit.Model, Schema: "1.0"}
			ms, err := strconv.ParseInt(rd.TS, 10, 64)
			if err != nil {
				rejects++
				continue
			}
			r.timeMs = ms
			if r.Time, err = bxTime(ms, now); err != nil {
				rejects++
				continue
			}
			if rd.Seq != nil {
				n, _ := strconv.ParseInt(*rd.Seq, 10, 64)
				r.Seq = &n
			}
			if rd.SoC != nil {
				r.SoC, _ = bxNumber(*rd.SoC, bxIdent)
			}
			if rd.Voltage != nil {
				r.Voltage, _ = bxNumber(*rd.Voltage, bxMilli)
			}
			if rd.Current != nil {
				r.Current, _ = bxNumber(*rd.Current, bxMilli)
			}
			for name, p := range map[string]*string{"cell_max": rd.TempMax, "cell_min": rd.TempMin} {
				if p != nil {
					if v, _ := bxNumber(*p, func(v float64) float64 { return v / 10 }); v != nil {
						if r.TempC == nil {
							r.TempC = map[string]float64{}
						}
						r.TempC[name] = *v
					}
				}
			}
			if rd.State != nil {
				r.Mode = []string{"idle", "charging", "discharging", "fault"}[int(strings.TrimSpace(*rd.State)[0]-'0')]
			}
			recs = append(recs, r)
		}
	default:
		return nil, 0, errors.New("unknown root")
	}
	return recs, rejects, nil
}

func bxSample2(s *bxSample, now time.Time) (bxRecord, error) {
	var r bxRecord
	t, err := time.Parse(time.RFC3339Nano, s.Time)
	if err != nil {
		return r, err
	}
	r.timeMs = t.Truncate(time.Millisecond).UnixMilli()
	if r.Time, err = bxTime(r.timeMs, now); err != nil {
		return r, err
	}
	if s.Seq != nil {
		n, err := strconv.ParseInt(*s.Seq, 10, 64)
		if err != nil || n < 0 {
			return r, errors.New("bad seq")
		}
		r.Seq = &n
	}
	for _, p := range []struct {
		src *string
		dst **float64
	}{{s.SoC, &r.SoC}, {s.SoH, &r.SoH}} {
		if p.src != nil {
			if *p.dst, err = bxNumber(*p.src, bxIdent); err != nil {
				return r, err
			}
			if *p.dst != nil && (**p.dst < 0 || **p.dst > 100) {
				return r, errors.New("percent out of range")
			}
		}
	}
	for _, m := range []struct {
		src         *bxMeasure
		dst         **float64
		base, milli string
	}{{s.Voltage, &r.Voltage, "V", "mV"}, {s.Current, &r.Current, "A", "mA"}, {s.Power, &r.Power, "kW", "W"}} {
		if m.src == nil || strings.TrimSpace(m.src.Value) == "" {
			continue
		}
		conv, err := bxUnit(m.src, m.base, m.milli)
		if err != nil {
			return r, err
		}
		if *m.dst, err = bxNumber(m.src.Value, conv); err != nil {
			return r, err
		}
	}
	for _, tp := range s.Temps {
		conv := bxIdent
		if tp.Unit != nil {
			switch *tp.Unit {
			case "C":
			case "F":
				conv = func(v float64) float64 { return (v - 32) / 9 * 5 }
			case "K":
				conv = func(v float64) float64 { return v - 273.15 }
			default:
				return r, errors.New("unknown unit")
			}
		}
		v, err := bxNumber(tp.Value, conv)
		if err != nil {
			return r, err
		}
		if v != nil {
			if r.TempC == nil {
				r.TempC = map[string]float64{}
			}
			if _, dup := r.TempC[tp.Sensor]; dup {
				return r, errors.New("repeated sensor")
			}
			r.TempC[tp.Sensor] = *v
		}
	}
	if s.Mode != nil {
		switch m := strings.TrimSpace(*s.Mode); m {
		case "", "idle", "charging", "discharging", "fault", "maintenance":
			r.Mode = m
		default:
			return r, errors.New("bad mode")
		}
	}
	if s.Alarms != nil {
		for _, a := range s.Alarms.Alarm {
			r.Alarms = append(r.Alarms, bxAlarmOut(a))
		}
	}
	return r, nil
}

var bxTagEscaper = strings.NewReplacer(",", `\,`, " ", `\ `, "=", `\=`)
var bxStringEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`, "\n", `\n`, "\r", `\r`)

func baselineLineProtocol(w *strings.Builder, r *bxRecord) {
	w.WriteString("bsu")
	for _, t := range [][2]string{{"model", r.Model}, {"site", r.Site}, {"unit", r.Unit}} {
		if t[1] != "" {
			fmt.Fprintf(w, ",%s=%s", t[0], bxTagEscaper.Replace(t[1]))
		}
	}
	fmt.Fprintf(w, ` schema="%s"`, bxStringEscaper.Replace(r.Schema))
	for _, f := range []struct {
		k string
		v *float64
	}{{"soc_pct", r.SoC}, {"soh_pct", r.SoH}, {"voltage_v", r.Voltage}, {"current_a", r.Current}, {"power_kw", r.Power}} {
		if f.v != nil {
			fmt.Fprintf(w, ",%s=%s", f.k, strconv.FormatFloat(*f.v, 'g', -1, 64))
		}
	}
	sensors := make([]string, 0, len(r.TempC))
	for s := range r.TempC {
		sensors = append(sensors, s)
	}
	sort.Strings(sensors)
	for _, s := range sensors {
		fmt.Fprintf(w, ",temp_%s_c=%s", s, strconv.FormatFloat(r.TempC[s], 'g', -1, 64))
	}
	if r.Mode != "" {
		fmt.Fprintf(w, `,mode="%s"`, r.Mode)
	}
	if r.Firmware != "" {
		fmt.Fprintf(w, `,firmware="%s"`, bxStringEscaper.Replace(r.Firmware))
	}
	if r.Seq != nil {
		fmt.Fprintf(w, ",seq=%di", *r.Seq)
	}
	fmt.Fprintf(w, ",alarm_count=%di %d\n", len(r.Alarms), r.timeMs)
	for _, a := range r.Alarms {
		w.WriteString("bsu_alarm")
		for _, t := range [][2]string{{"code", a.Code}, {"severity", a.Severity}, {"site", r.Site}, {"unit", r.Unit}} {
			if t[1] != "" {
				fmt.Fprintf(w, ",%s=%s", t[0], bxTagEscaper.Replace(t[1]))
			}
		}
		fmt.Fprintf(w, ` text="%s" %d`+"\n", bxStringEscaper.Replace(a.Text), r.timeMs)
	}
}

// baseline runs the whole baseline pipeline: decode, JSON lines, line protocol.
func baseline(body []byte, now time.Time) (jsonl []byte, lp string, err error) {
	recs, _, err := baselineDecode(body, now)
	if err != nil {
		return nil, "", err
	}
	var w strings.Builder
	for i := range recs {
		b, err := json.Marshal(&recs[i])
		if err != nil {
			return nil, "", err
		}
		jsonl = append(append(jsonl, b...), '\n')
		baselineLineProtocol(&w, &recs[i])
	}
	return jsonl, w.String(), nil
}

type benchInput struct {
	name    string
	body    []byte
	samples int
}

func benchInputs(tb testing.TB) []benchInput {
	gen1, err := os.ReadFile(filepath.Join(contractDir, "gen1-basic.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	return []benchInput{
		{"gen2-1", gen2Message(1), 1},
		{"gen2-100", gen2Message(100), 100},
		{"gen1", gen1, 1},
	}
}

// fastPipeline is the codec's path for one message: Decode, then AppendJSON
// and AppendLineProtocol into reused buffers.
type fastPipeline struct {
	d       *Decoder
	js, lp  []byte
	records int
}

func (p *fastPipeline) run(body []byte) error {
	res, err := p.d.Decode(body)
	if err != nil {
		return err
	}
	p.js, p.lp = p.js[:0], p.lp[:0]
	for i := range res.Records {
		p.js = AppendJSON(p.js, &res.Records[i])
		p.js = append(p.js, '\n')
		p.lp = AppendLineProtocol(p.lp, &res.Records[i])
	}
	p.records = len(res.Records)
	return nil
}

// TestBaselineMatchesCodec makes the benchmark honest: on the benchmark
// inputs the baseline produces the same JSON (as values) and the same line
// protocol as the codec.
func TestBaselineMatchesCodec(t *testing.T) {
	for _, in := range benchInputs(t) {
		t.Run(in.name, func(t *testing.T) {
			p := fastPipeline{d: testDecoder()}
			if err := p.run(in.body); err != nil || p.records != in.samples {
				t.Fatalf("codec: %v, %d records", err, p.records)
			}
			js, lp, err := baseline(in.body, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if lp != string(p.lp) {
				t.Errorf("line protocol differs:\n%s\n%s", lp, p.lp)
			}
			got, want := bytes.Split(bytes.TrimSpace(js), []byte{'\n'}), bytes.Split(bytes.TrimSpace(p.js), []byte{'\n'})
			if len(got) != len(want) {
				t.Fatalf("%d vs %d JSON lines", len(got), len(want))
			}
			for i := range got {
				if !jsonEqual(t, got[i], want[i]) {
					t.Errorf("JSON line %d:\n%s\n%s", i, got[i], want[i])
				}
			}
		})
	}
}

// BenchmarkCodec measures XML → JSON + line protocol for each input with the
// codec (fast, also reporting allocations per sample) and the encoding/xml
// baseline; "ratio" runs both in the same loop and reports how many times
// faster the codec is (x-vs-encoding/xml) and each side's CPU ns/op.
func BenchmarkCodec(b *testing.B) {
	for _, in := range benchInputs(b) {
		b.Run(in.name+"/fast", func(b *testing.B) {
			p := fastPipeline{d: testDecoder()}
			if err := p.run(in.body); err != nil { // warm the buffers
				b.Fatal(err)
			}
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for range b.N {
				if err := p.run(in.body); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N)/float64(in.samples), "allocs/sample")
		})
		b.Run(in.name+"/baseline", func(b *testing.B) {
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			for range b.N {
				if _, _, err := baseline(in.body, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/ratio", func(b *testing.B) {
			// Both sides alternate in batches on one locked OS thread and are
			// timed with that thread's CPU clock, so load from other processes
			// on a shared machine does not skew the ratio. GC work done on
			// other threads is not counted; only the baseline allocates, so
			// this can only understate the codec's advantage.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			p := fastPipeline{d: testDecoder()}
			if err := p.run(in.body); err != nil {
				b.Fatal(err)
			}
			const batch = 16
			var fast, base int64
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				t0 := threadCPU()
				for range n {
					if err := p.run(in.body); err != nil {
						b.Fatal(err)
					}
				}
				t1 := threadCPU()
				for range n {
					if _, _, err := baseline(in.body, testNow); err != nil {
						b.Fatal(err)
					}
				}
				t2 := threadCPU()
				fast += t1 - t0
				base += t2 - t1
			}
			b.ReportMetric(float64(fast)/float64(b.N), "fast-cpu-ns/op")
			b.ReportMetric(float64(base)/float64(b.N), "baseline-cpu-ns/op")
			b.ReportMetric(float64(base)/float64(fast), "x-vs-encoding/xml")
		})
	}
}

// BenchmarkDecodeJSON measures the snapshot path: one JSON record to a Record.
func BenchmarkDecodeJSON(b *testing.B) {
	d := testDecoder()
	res, err := d.Decode(gen2Message(1))
	if err != nil {
		b.Fatal(err)
	}
	line := AppendJSON(nil, &res.Records[0])
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for range b.N {
		if _, err := d.DecodeJSON(line); err != nil {
			b.Fatal(err)
		}
	}
}
