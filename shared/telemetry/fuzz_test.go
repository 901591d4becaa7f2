package telemetry

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// seedBodies returns every XML body the tests know: the contract's samples
// and the golden cases.
func seedBodies(f *testing.F) [][]byte {
	var paths []string
	for _, glob := range []string{filepath.Join(contractDir, "*.xml"), filepath.Join("testdata", "cases", "*", "input.xml")} {
		m, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 40 {
		f.Fatalf("only %d seeds", len(paths))
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, gen2Message(3))
}

// encodingXMLAccepts runs encoding/xml's strict token loop over body.
func encodingXMLAccepts(body []byte) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// FuzzDecode: Decode never panics; never accepts a body encoding/xml finds
// not well-formed; every record validates, re-encodes to line protocol that
// line-protocol/v2 parses back to the record's values, and to JSON that
// DecodeJSON reads back to the same record.
func FuzzDecode(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add(b)
	}
	d := testDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		sum, inspectErr := Inspect(body)
		res, err := d.Decode(body)
		if err == nil {
			if xerr := encodingXMLAccepts(body); xerr != nil {
				t.Fatalf("Decode accepted a body encoding/xml rejects (%v):\n%q", xerr, body)
			}
			if inspectErr != nil || sum.Generation != res.Generation || sum.Unit != res.Unit {
				t.Fatalf("Decode accepted, Inspect says %+v, %v", sum, inspectErr)
			}
			if len(res.Records)+len(res.Rejects) != sum.Samples {
				t.Fatalf("%d records + %d rejects, Inspect counted %d samples", len(res.Records), len(res.Rejects), sum.Samples)
			}
		} else {
			var me *MessageError
			if !errors.As(err, &me) || me.Reason == "" || me.Kind == "" {
				t.Fatalf("error %v (%T) is not a complete *MessageError", err, err)
			}
			if len(res.Records) != 0 || len(res.Rejects) != 0 {
				t.Fatal("a rejected message returned records or rejects")
			}
		}
		if inspectErr == nil {
			if xerr := encodingXMLAccepts(body); xerr != nil {
				t.Fatalf("Inspect accepted a body encoding/xml rejects (%v):\n%q", xerr, body)
			}
		}
		for _, rj := range res.Rejects {
			if rj.Reason == "" || rj.Field == "" {
				t.Fatalf("incomplete rejection %+v", rj)
			}
		}
		for i := range res.Records {
			checkRecord(t, d, &res.Records[i])
		}
	})
}

// FuzzDecodeJSON: DecodeJSON never panics, accepts only valid JSON, and what
// it accepts round-trips through AppendJSON and line protocol.
func FuzzDecodeJSON(f *testing.F) {
	d := testDecoder()
	for _, b := range seedBodies(f) {
		res, err := d.Decode(b)
		if err != nil {
			continue
		}
		for i := range res.Records {
			f.Add(AppendJSON(nil, &res.Records[i]))
		}
	}
	for _, l := range []string{
		`{"unit":"U","schema":"2.1","time":"2026-11-21T09:00:00.1239+01:00","seq":0,"temp_c":{},"alarms":[]}`,
		`{"unit":"\u0055\ud83d\ude00","schema":"1.0","time":"2026-11-21T08:00:00Z","alarms":[{"text":"a\nb\\\""}]}`,
	} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := d.DecodeJSON(line)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Reason == "" {
				t.Fatalf("error %v (%T) is not a complete *FieldError", err, err)
			}
			return
		}
		if !json.Valid(line) {
			t.Fatalf("DecodeJSON accepted invalid JSON %q", line)
		}
		checkRecord(t, d, &r)
	})
}

func checkRecord(t *testing.T, d *Decoder, r *Record) {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("record fails Validate: %v\n%+v", err, *r)
	}
	js := AppendJSON(nil, r)
	back, err := d.DecodeJSON(js)
	if err != nil {
		t.Fatalf("DecodeJSON(AppendJSON(r)) = %v\n%s", err, js)
	}
	if !recordsEqual(r, &back) {
		t.Fatalf("JSON round trip changed the record:\n got %+v\nwant %+v\n%s", back, *r, js)
	}
	lp := AppendLineProtocol(nil, r)
	if !bytes.Equal(lp, AppendLineProtocol(nil, &back)) {
		t.Fatal("line protocol differs between XML and JSON paths")
	}
	got := checkLineProtocolParses(t, lp, 1+len(r.Alarms))
	if want := expectedPoints(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("line protocol parses to\n%+v\nwant\n%+v\n%s", got, want, lp)
	}
}

type point struct {
	Measurement string
	Tags        map[string]string
	Fields      map[string]any
	TimeMs      int64
}

// checkLineProtocolParses parses lp with line-protocol/v2, checking there is
// one point per line and n points in all.
func checkLineProtocolParses(t *testing.T, lp []byte, n int) []point {
	t.Helper()
	if bytes.Count(lp, []byte{'\n'}) != n || len(lp) == 0 || lp[len(lp)-1] != '\n' {
		t.Fatalf("want %d points, one per line:\n%s", n, lp)
	}
	dec := lineprotocol.NewDecoderWithBytes(lp)
	var pts []point
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatalf("measurement: %v\n%s", err, lp)
		}
		p := point{Measurement: string(m), Tags: map[string]string{}, Fields: map[string]any{}}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatalf("tag: %v\n%s", err, lp)
			}
			if k == nil {
				break
			}
			p.Tags[string(k)] = string(v)
		}
		for {
			k, v, err := dec.NextField()
			if err != nil {
				t.Fatalf("field: %v\n%s", err, lp)
			}
			if k == nil {
				break
			}
			switch v.Kind() {
			case lineprotocol.Float:
				p.Fields[string(k)] = v.FloatV()
			case lineprotocol.Int:
				p.Fields[string(k)] = v.IntV()
			case lineprotocol.String:
				p.Fields[string(k)] = v.StringV()
			default:
				t.Fatalf("field %s has kind %v", k, v.Kind())
			}
		}
		ts, err := dec.Time(lineprotocol.Millisecond, time.Time{})
		if err != nil {
			t.Fatalf("time: %v\n%s", err, lp)
		}
		p.TimeMs = ts.UnixMilli()
		pts = append(pts, p)
	}
	if len(pts) != n {
		t.Fatalf("parsed %d points, want %d:\n%s", len(pts), n, lp)
	}
	return pts
}

// expectedPoints is the contract's InfluxDB schema applied to a record,
// written independently of AppendLineProtocol.
func expectedPoints(r *Record) []point {
	tags := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] != "" {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	f := map[string]any{"schema": r.Schema, "alarm_count": int64(len(r.Alarms))}
	for _, x := range []struct {
		bit Presence
		k   string
		v   float64
	}{{HasSoC, "soc_pct", r.SoC}, {HasSoH, "soh_pct", r.SoH}, {HasVoltage, "voltage_v", r.Voltage}, {HasCurrent, "current_a", r.Current}, {HasPower, "power_kw", r.Power}} {
		if r.Has&x.bit != 0 && !math.IsNaN(x.v) {
			f[x.k] = x.v
		}
	}
	for _, tc := range r.Temps {
		f["temp_"+tc.Sensor+"_c"] = tc.C
	}
	if r.Mode != "" {
		f["mode"] = r.Mode
	}
	if r.Firmware != "" {
		f["firmware"] = r.Firmware
	}
	if r.HasSeq {
		f["seq"] = r.Seq
	}
	pts := []point{{"bsu", tags("model", r.Model, "site", r.Site, "unit", r.Unit), f, r.TimeMs}}
	for _, a := range r.Alarms {
		pts = append(pts, point{"bsu_alarm", tags("code", a.Code, "severity", a.Severity, "site", r.Site, "unit", r.Unit), map[string]any{"text": a.Text}, r.TimeMs})
	}
	return pts
}
