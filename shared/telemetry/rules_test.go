package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gen2Message builds a generation-2 message with n samples, one second apart.
func gen2Message(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1">` + "\n")
	b.WriteString(`  <bsu:Unit serial="FP2-004211" site="North Yard, Bay 3" model="FlexiPack-250" firmware="2.4.1"/>` + "\n")
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&b, `  <bsu:Sample seq="%d" time="%s">
    <bsu:SoC>55.2</bsu:SoC>
    <bsu:SoH>97.1</bsu:SoH>
    <bsu:Voltage unit="V">812.1</bsu:Voltage>
    <bsu:Current unit="A">-12.30</bsu:Current>
    <bsu:Power unit="kW">-9.99</bsu:Power>
    <bsu:Temperature sensor="cell_max" unit="C">31.2</bsu:Temperature>
    <bsu:Temperature sensor="cell_min" unit="C">29.8</bsu:Temperature>
    <bsu:Temperature sensor="ambient" unit="F">70.2</bsu:Temperature>
    <bsu:Mode>discharging</bsu:Mode>
    <bsu:Alarms>
      <bsu:Alarm code="OVT-1" severity="warning"><![CDATA[Cell over-temperature > 30 °C]]></bsu:Alarm>
    </bsu:Alarms>
  </bsu:Sample>
`, 18000+i, start.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000-07:00"))
	}
	b.WriteString("</bsu:Telemetry>\n")
	return b.Bytes()
}

func messageKind(t *testing.T, err error) MessageKind {
	t.Helper()
	var me *MessageError
	if !errors.As(err, &me) {
		t.Fatalf("error %v is not a *MessageError", err)
	}
	return me.Kind
}

func TestSampleCountLimits(t *testing.T) {
	d := testDecoder()
	res, err := d.Decode(gen2Message(1000))
	if err != nil {
		t.Fatalf("1,000 samples: %v", err)
	}
	if len(res.Records) != 1000 || len(res.Rejects) != 0 {
		t.Fatalf("1,000 samples: %d records, %d rejects", len(res.Records), len(res.Rejects))
	}
	if res.Records[999].Seq != 18999 || res.Records[999].TimeMs != time.Date(2026, 11, 21, 8, 16, 39, 0, time.UTC).UnixMilli() {
		t.Errorf("last record %+v", res.Records[999])
	}
	res, err = d.Decode(gen2Message(1001))
	if err == nil || messageKind(t, err) != KindStructure || !strings.Contains(err.Error(), "1001 samples") {
		t.Fatalf("1,001 samples: err %v", err)
	}
	if len(res.Records) != 0 || len(res.Rejects) != 0 {
		t.Fatalf("rejected message still returned %d records", len(res.Records))
	}
	sum, err := Inspect(gen2Message(1001))
	if err != nil || sum.Samples != 1001 || sum.Unit != "FP2-004211" || sum.Generation != 2 {
		t.Fatalf("Inspect = %+v, %v (Inspect reports the count, does not enforce it)", sum, err)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	base := gen2Message(1)
	pad := func(total int) []byte {
		// Pad with a comment after the root so the message stays valid.
		n := total - len(base) - len("<!---->")
		return append(bytes.Clone(base), "<!--"+strings.Repeat("x", n)+"-->"...)
	}
	exact := pad(MaxMessageBytes)
	if len(exact) != MaxMessageBytes {
		t.Fatal(len(exact))
	}
	if res, err := testDecoder().Decode(exact); err != nil || len(res.Records) != 1 {
		t.Fatalf("exactly 1 MiB: %v", err)
	}
	over := pad(MaxMessageBytes + 1)
	if _, err := testDecoder().Decode(over); err == nil || messageKind(t, err) != KindTooLarge {
		t.Fatalf("1 MiB + 1: %v", err)
	}
	// Checked before parsing: an over-size body of garbage is "too large", not "not well-formed".
	if _, err := Inspect(bytes.Repeat([]byte{0xff}, MaxMessageBytes+1)); err == nil || messageKind(t, err) != KindTooLarge {
		t.Fatalf("garbage over 1 MiB: %v", err)
	}
}

func TestInspect(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Summary
		kind MessageKind
	}{
		{"gen1", `<telemetry schema="1.0"><unit id="FP1-1"/><reading ts="1763715600250"><soc>5</soc></reading></telemetry>`, Summary{1, "FP1-1", 1}, ""},
		{"gen2 bad samples still counted", `<Telemetry xmlns="urn:flexipack:telemetry:2"><Unit serial="FP2-1"/><Sample time="x"/><Sample/></Telemetry>`, Summary{2, "FP2-1", 2}, ""},
		{"not well-formed", `<Telemetry xmlns="urn:flexipack:telemetry:2"><Unit serial="FP2-1"/>`, Summary{2, "FP2-1", 0}, KindNotWellFormed},
		{"no unit", `<Telemetry xmlns="urn:flexipack:telemetry:2"><Sample/></Telemetry>`, Summary{2, "", 1}, KindNoUnit},
		{"unknown root", `<x/>`, Summary{}, KindUnknownRoot},
		{"dtd", `<!DOCTYPE x><x/>`, Summary{}, KindDTD},
		{"empty", ``, Summary{}, KindNotWellFormed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum, err := Inspect([]byte(tc.body))
			if tc.kind == "" && err != nil || tc.kind != "" && (err == nil || messageKind(t, err) != tc.kind) {
				t.Fatalf("err = %v, want kind %q", err, tc.kind)
			}
			if sum != tc.want {
				t.Errorf("summary %+v, want %+v", sum, tc.want)
			}
		})
	}
}

// TestRecordsAliasAndClone pins the aliasing contract: records change with
// the next Decode, clones do not.
func TestRecordsAliasAndClone(t *testing.T) {
	d := testDecoder()
	msg := func(unit, sensor, text string) []byte {
		return []byte(`<Telemetry xmlns="urn:flexipack:telemetry:2"><Unit serial="` + unit + `"/><Sample time="2026-11-21T08:00:00Z"><Temperature sensor="` + sensor + `">1</Temperature><Alarms><Alarm code="c">` + text + `</Alarm></Alarms></Sample></Telemetry>`)
	}
	res, err := d.Decode(msg("AAAA", "aaaa", "first"))
	if err != nil {
		t.Fatal(err)
	}
	kept := res.Records[0].Clone()
	aliased := res.Records[0]
	if !recordsEqual(&kept, &aliased) {
		t.Fatalf("clone differs: %+v vs %+v", kept, aliased)
	}
	if _, err := d.Decode(msg("BBBB", "bbbb", "later")); err != nil {
		t.Fatal(err)
	}
	if kept.Unit != "AAAA" || kept.Temps[0].Sensor != "aaaa" || kept.Alarms[0].Text != "first" {
		t.Errorf("clone changed: %+v", kept)
	}
	if aliased.Unit != "BBBB" {
		t.Errorf("records are documented to alias the decoder; got %q (update the doc if this changed)", aliased.Unit)
	}
	var empty Record
	if c := empty.Clone(); !recordsEqual(&c, &empty) {
		t.Errorf("clone of empty record %+v", c)
	}
}

func TestRejectError(t *testing.T) {
	for _, tc := range []struct {
		r    Reject
		want string
	}{
		{Reject{Index: 3, Seq: "10", Field: "SoC", Reason: "140 outside 0..100"}, "sample 3 (seq 10): SoC: 140 outside 0..100"},
		{Reject{Index: 0, Field: "time", Reason: "missing"}, "sample 0: time: missing"},
	} {
		if got := tc.r.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestParseRFC3339MatchesTime cross-checks the hand-written parser with
// time.Parse on valid inputs.
func TestParseRFC3339MatchesTime(t *testing.T) {
	for _, s := range []string{
		"2026-11-21T10:00:00.250+01:00", "2026-11-20T18:59:48.125-05:00", "2015-01-01T00:00:00Z",
		"2024-02-29T23:59:59.999999999Z", "2000-03-01T00:00:00+14:00", "1999-12-31T23:59:59-12:00",
		"2100-02-28T12:00:00.5Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00.0001Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, why := parseRFC3339([]byte(s))
		wantMs := want.UnixMilli()
		if want.UnixNano()%1e6 < 0 { // UnixMilli truncates toward zero; we floor
			wantMs--
		}
		if why != "" || got != want.Truncate(time.Millisecond).UnixMilli() {
			t.Errorf("%s: got %d %q, want %d", s, got, why, want.Truncate(time.Millisecond).UnixMilli())
		}
	}
}

func TestRound6(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{21.222222222, 21.2222}, {801.25, 801.25}, {304.35 - 273.15, 31.2}, {-12.3, -12.3},
		{123456.5, 123456}, {0.0000012345678, 1.23457e-6}, {1e25, 1e25}, {math.Copysign(0, -1), 0},
		{99.99995, 99.9999}, {-99.999951, -100},
	} {
		got := round6(tc.in)
		if got != tc.want || math.Signbit(got) != math.Signbit(tc.want) {
			t.Errorf("round6(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if s := strconv.FormatFloat(tc.in, 'g', 6, 64); tc.in != 0 {
			want, _ := strconv.ParseFloat(s, 64)
			if got != want {
				t.Errorf("round6(%v) = %v, strconv says %v", tc.in, got, want)
			}
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	const ok = `{"unit":"U","schema":"2.1","time":"2026-11-21T08:00:00.000Z"`
	for _, tc := range []struct {
		name, line, field string // field "" with wantErr: a syntax error
		wantErr           bool
	}{
		{"minimal", ok + `}`, "", false},
		{"any RFC 3339 time", `{"unit":"U","schema":"2.0","time":"2026-11-21T09:00:00.1239+01:00"}`, "", false},
		{"surrounding white space and newline", " \t" + ok + "}\r\n", "", false},
		{"unicode escapes", `{"unit":"\u0055\ud83d\ude00","schema":"1.0","time":"2026-11-21T08:00:00Z","alarms":[{"text":"a\nb"}]}`, "", false},
		{"missing unit", `{"schema":"2.1","time":"2026-11-21T08:00:00Z"}`, "unit", true},
		{"empty unit", `{"unit":"","schema":"2.1","time":"2026-11-21T08:00:00Z"}`, "unit", true},
		{"missing time", `{"unit":"U","schema":"2.1"}`, "time", true},
		{"missing schema", `{"unit":"U","time":"2026-11-21T08:00:00Z"}`, "schema", true},
		{"bad schema", `{"unit":"U","schema":"3.0","time":"2026-11-21T08:00:00Z"}`, "schema", true},
		{"bad time", ok[:len(ok)-len(`2026-11-21T08:00:00.000Z"`)] + `2026-11-21"}`, "time", true},
		{"time before 2015", `{"unit":"U","schema":"2.1","time":"2014-12-31T23:59:59.999Z"}`, "time", true},
		{"time in the future", `{"unit":"U","schema":"2.1","time":"2026-11-21T12:10:00.001Z"}`, "time", true},
		{"time at the future bound", `{"unit":"U","schema":"2.1","time":"2026-11-21T12:10:00.000Z"}`, "", false},
		{"soc out of range", ok + `,"soc_pct":100.5}`, "soc_pct", true},
		{"soh negative", ok + `,"soh_pct":-1}`, "soh_pct", true},
		{"soc over 100 before rounding", ok + `,"soc_pct":100.0000001}`, "soc_pct", true},
		{"bad mode", ok + `,"mode":"sleeping"}`, "mode", true},
		{"empty mode", ok + `,"mode":""}`, "mode", true},
		{"bad sensor", ok + `,"temp_c":{"Bad":1}}`, "temp_c", true},
		{"repeated sensor", ok + `,"temp_c":{"a":1,"a":2}}`, "a", true},
		{"seq fraction", ok + `,"seq":1.5}`, "seq", true},
		{"seq negative", ok + `,"seq":-1}`, "seq", true},
		{"null", ok + `,"site":null}`, "", true},
		{"unknown key", ok + `,"colour":"red"}`, "colour", true},
		{"repeated key", ok + `,"unit":"V"}`, "unit", true},
		{"unknown alarm key", ok + `,"alarms":[{"code":"c","level":"x"}]}`, "alarms[0].level", true},
		{"tag with tab", `{"unit":"U\t1","schema":"2.1","time":"2026-11-21T08:00:00Z"}`, "unit", true},
		{"tag with trailing backslash", ok + `,"site":"a\\"}`, "site", true},
		{"alarm code with newline", ok + `,"alarms":[{"code":"a\nb"}]}`, "alarms[0].code", true},
		{"number overflow", ok + `,"voltage_v":1e999}`, "voltage_v", true},
		{"leading zero", ok + `,"voltage_v":01}`, "", true},
		{"trailing garbage", ok + `}x`, "", true},
		{"two records", ok + `}` + ok + `}`, "", true},
		{"truncated", ok, "", true},
		{"invalid UTF-8", `{"unit":"U` + "\xff" + `","schema":"2.1","time":"2026-11-21T08:00:00Z"}`, "", true},
		{"lone surrogate", `{"unit":"\ud800","schema":"2.1","time":"2026-11-21T08:00:00Z"}`, "", true},
		{"raw control character", "{\"unit\":\"U\x01\",\"schema\":\"2.1\",\"time\":\"2026-11-21T08:00:00Z\"}", "", true},
		{"not an object", `[1]`, "", true},
		{"empty", ``, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := testDecoder().DecodeJSON([]byte(tc.line))
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				checkRoundTrips(t, []Record{r})
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want a *FieldError", err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", fe.Field, tc.field, err)
			}
		})
	}
}

func TestDecodeJSONRoundsAndSorts(t *testing.T) {
	r, err := testDecoder().DecodeJSON([]byte(`{"unit":"U","schema":"2.1","time":"2026-11-21T08:00:00.1239Z","voltage_v":812.12345678,"current_a":-0,"temp_c":{"z":1,"a":21.22222222}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Voltage != 812.123 || r.Current != 0 || math.Signbit(r.Current) || r.TimeMs%1000 != 123 {
		t.Errorf("%+v", r)
	}
	if len(r.Temps) != 2 || r.Temps[0] != (Temp{"a", 21.2222}) || r.Temps[1] != (Temp{"z", 1}) {
		t.Errorf("temps %+v", r.Temps)
	}
}

func TestValidate(t *testing.T) {
	good := Record{Unit: "U", Schema: "1.0", TimeMs: MinTimeMs}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Record){
		"no unit":       func(r *Record) { r.Unit = "" },
		"old":           func(r *Record) { r.TimeMs = MinTimeMs - 1 },
		"NaN":           func(r *Record) { r.Voltage, r.Has = math.NaN(), HasVoltage },
		"unsorted":      func(r *Record) { r.Temps = []Temp{{"b", 1}, {"a", 1}} },
		"soc":           func(r *Record) { r.SoC, r.Has = 101, HasSoC },
		"schema":        func(r *Record) { r.Schema = "" },
		"negative seq":  func(r *Record) { r.Seq, r.HasSeq = -1, true },
		"newline model": func(r *Record) { r.Model = "a\nb" },
	} {
		r := good
		mut(&r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, r)
		}
	}
}

// TestLineProtocolStaysOneLinePerPoint feeds records that fail Validate to
// AppendLineProtocol: even then every point is one line.
func TestLineProtocolStaysOneLinePerPoint(t *testing.T) {
	r := Record{Unit: "U\n1\\", Site: "a\rb", Schema: "2.1", TimeMs: MinTimeMs, Has: HasSoC | HasVoltage, SoC: math.NaN(), Voltage: 1,
		Temps: []Temp{{"x\ny", 1}, {"inf", math.Inf(1)}}, Alarms: []Alarm{{Code: "\n", Text: "a\nb\r\n"}}}
	lp := AppendLineProtocol(nil, &r)
	if n := bytes.Count(lp, []byte{'\n'}); n != 2 {
		t.Fatalf("%d lines for 2 points:\n%s", n, lp)
	}
	checkLineProtocolParses(t, lp, 2)
}

// TestFastFormattingMatchesStdlib pins the hand-written fast paths to the
// standard library: numbers as encoding/json and strconv 'g' -1 write them,
// times as time.Format does.
func TestFastFormattingMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []float64
	for range 200000 {
		m := rng.Int64N(1999999) - 999999
		e := rng.IntN(30) - 15
		v, _ := strconv.ParseFloat(strconv.FormatInt(m, 10)+"e"+strconv.Itoa(e), 64)
		vals = append(vals, v, round6(v*rng.Float64()), rng.NormFloat64()*math.Pow(10, float64(rng.IntN(20)-10)))
	}
	vals = append(vals, 0, 1e-4, -1e-4, 9.99999e-5, 999999, 1e6, 999999.5, 0.000123457, 5e-324, math.MaxFloat64, -273.15, 21.2222)
	for _, v := range vals {
		want, _ := json.Marshal(v)
		if got := appendJSONFloat(nil, "", v); string(got) != string(want) {
			t.Fatalf("JSON %v: got %s, encoding/json %s", v, got, want)
		}
		if got, want := appendFloatField(nil, "", v), strconv.FormatFloat(v, 'g', -1, 64); string(got) != want {
			t.Fatalf("LP %v: got %s, strconv %s", v, got, want)
		}
	}
	for range 200000 {
		ms := rng.Int64N(400*365*86400000) - 100*365*86400000
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		if got := appendTimeMs(nil, ms); string(got) != want {
			t.Fatalf("time %d: got %s, want %s", ms, got, want)
		}
	}
}

// TestConvertShortcutIsExact: the no-rounding shortcut for integers divided
// by 10 or 1000 gives what rounding would.
func TestConvertShortcutIsExact(t *testing.T) {
	for n := -999999.0; n <= 999999; n += 7 {
		for _, c := range []struct {
			u   unitConv
			div float64
		}{{convMilli, 1000}, {convTenth, 10}} {
			if got, want := convert(n, 0, c.u), round6(n/c.div); got != want || got == 0 && math.Signbit(got) {
				t.Fatalf("convert(%v, %v) = %v, want %v", n, c.u, got, want)
			}
		}
	}
}
