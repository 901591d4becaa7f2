package spill

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/flexipack/cutover/shared/telemetry"
)

func TestRecordRoundTrip(t *testing.T) {
	for name, r := range map[string]telemetry.Record{
		"minimal": {Unit: "U", Schema: "1.0", TimeMs: 1763683198000},
		"full": {Unit: "FP2-004211", Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
			Seq: 18234, HasSeq: true, TimeMs: 1763715600250, Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
			SoC: 55.2, SoH: 97.1, Voltage: 812.1, Current: -12.3, Power: -9.99,
			Temps: []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}}, Mode: "discharging",
			Alarms: []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"}, {Code: "GND", Severity: "critical"}}},
		"some floats": {Unit: "U", Schema: "2.0", TimeMs: -5, Has: telemetry.HasVoltage | telemetry.HasPower, Voltage: 1, Power: -0.5},
	} {
		t.Run(name, func(t *testing.T) {
			b := AppendRecord(nil, &r)
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
			}
			if !bytes.Equal(telemetry.AppendJSON(nil, &got), telemetry.AppendJSON(nil, &r)) {
				t.Fatal("JSON differs after the round trip")
			}
			for i := 0; i < len(b); i++ {
				if _, err := DecodeRecord(b[:i]); err == nil {
					t.Fatalf("payload cut at %d of %d bytes decoded without error", i, len(b))
				}
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, &telemetry.Record{Unit: "U", TimeMs: 1, Alarms: []telemetry.Alarm{{Code: "x"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if again, err := DecodeRecord(AppendRecord(nil, &r)); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding a decoded payload does not round-trip: %v", err)
		}
	})
}

func BenchmarkDecodeRecordVsJSON(b *testing.B) {
	r := telemetry.Record{Unit: "FP2-004211", Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
		Seq: 18234, HasSeq: true, TimeMs: 1763715600250, Has: telemetry.HasSoC | telemetry.HasVoltage, SoC: 55.2, Voltage: 812.1,
		Temps: []telemetry.Temp{{Sensor: "cell_max", C: 31.2}}, Mode: "discharging"}
	bin := AppendRecord(nil, &r)
	js := telemetry.AppendJSON(nil, &r)
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := DecodeRecord(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-baseline", func(b *testing.B) {
		b.ReportAllocs()
		dec := telemetry.NewDecoder()
		for i := 0; i < b.N; i++ {
			if _, err := dec.DecodeJSON(js); err != nil {
				b.Fatal(err)
			}
		}
	})
}
