package sim

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// A fleet with FaultProb negative never reports fault mode or a critical
// alarm; the default fleet does (the alert service's e2e relies on both).
func TestFaultProb(t *testing.T) {
	count := func(prob float64) (faults, critical int) {
		f, err := NewFleet(Config{Units: 50, Seed: 7, FaultProb: prob, OfflineProb: -1})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		dec := &telemetry.Decoder{Now: func() time.Time { return start.Add(365 * 24 * time.Hour) }}
		var msgs []Message
		for tick := 0; tick < 2000; tick++ {
			msgs = f.Tick(start.Add(time.Duration(tick)*10*time.Second), msgs[:0])
			for _, m := range msgs {
				res, err := dec.Decode(m.Body)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res.Records {
					if r.Mode == telemetry.ModeFault {
						faults++
					}
					for _, a := range r.Alarms {
						if a.Severity == "critical" {
							critical++
						}
					}
				}
			}
		}
		return faults, critical
	}
	if f, c := count(-1); f != 0 || c != 0 {
		t.Fatalf("FaultProb -1: %d fault readings, %d critical alarms; want none", f, c)
	}
	if f, c := count(0); f == 0 || c == 0 {
		t.Fatalf("default FaultProb: %d fault readings, %d critical alarms; want some", f, c)
	}
}
