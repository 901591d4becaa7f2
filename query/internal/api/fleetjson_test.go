package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
)

// TestFleetJSONMatchesMarshal: the hand-written fleet encoder writes the
// bytes json.Marshal writes for the same answer.
func TestFleetJSONMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sites := []string{"North Yard, Bay 3", `a"b\c`, "<&>", "ü 日本", "\u2028", ""}
	floats := []float64{0, -0.5, 1e-7, 1.5e21, 123456.7, -9.99, 55.23455, math.SmallestNonzeroFloat64 * 1e300}
	q := reader.FleetQuery{From: time.UnixMilli(1795251600000).UTC(), To: time.UnixMilli(1795255200123).UTC(), Step: time.Hour}
	var pts []reader.FleetPoint
	for i := range 500 {
		p := reader.FleetPoint{Site: sites[rng.IntN(len(sites))], Time: q.From.Add(time.Duration(i/7) * time.Minute), Units: rng.Int64N(1000), Alarms: rng.Int64N(5)}
		if rng.IntN(4) > 0 {
			p.SoCSum, p.SoCCount = floats[rng.IntN(len(floats))]*float64(1+rng.IntN(3)), int64(1+rng.IntN(3))
		}
		if rng.IntN(4) > 0 {
			p.PowerSum, p.PowerCount = floats[rng.IntN(len(floats))]+rng.Float64(), int64(1+rng.IntN(2))
		}
		pts = append(pts, p)
	}
	for _, n := range []int{0, 1, len(pts)} {
		out := fleetAnswer{From: fmtTime(q.From), To: fmtTime(q.To), Step: q.Step.String(), Points: []fleetPointJSON{}}
		for _, pt := range pts[:n] {
			j := fleetPointJSON{Time: fmtTime(pt.Time), Site: pt.Site, Units: pt.Units, AlarmCount: pt.Alarms}
			if pt.SoCCount > 0 {
				v := round6(pt.SoCSum / float64(pt.SoCCount))
				j.SoCMean = &v
			}
			if pt.PowerCount > 0 {
				v := round6(pt.PowerSum / float64(pt.PowerCount))
				j.PowerKW = &v
			}
			out.Points = append(out.Points, j)
		}
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFleetJSON(nil, q, pts[:n]); !bytes.Equal(got, want) {
			t.Fatalf("%d points:\n got %s\nwant %s", n, got, want)
		}
	}
}

// seriesJSON is the series answer as json.Marshal writes it: the
// reference appendSeriesJSON is checked against.
type seriesJSON struct {
	Unit   string           `json:"unit"`
	From   string           `json:"from"`
	To     string           `json:"to"`
	Step   string           `json:"step"`
	Agg    reader.Agg       `json:"agg"`
	Fields []string         `json:"fields"`
	Points []map[string]any `json:"points"`
}

// TestSeriesJSONMatchesMarshal: the hand-written series encoder writes
// the bytes json.Marshal writes for a map per point, whatever the fields'
// order and whichever values are missing.
func TestSeriesJSONMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	floats := []float64{0, -0.5, 1e-7, 1.5e21, 123456.7, -9.99, 55.23455, 1e300}
	from := time.UnixMilli(1795251600000).UTC()
	for _, fields := range [][]string{reader.FloatFields, {"voltage_v"}, {"temp_max_c", "soc_pct", "power_kw"}} {
		q := reader.SeriesQuery{Unit: `unit "7" <ü>`, From: from, To: from.Add(24 * time.Hour), Step: time.Hour, Fields: fields, Agg: reader.AggMax}
		var pts []reader.SeriesPoint
		for i := range 300 {
			p := reader.SeriesPoint{Time: from.Add(time.Duration(i) * time.Minute), Values: make([]*float64, len(fields))}
			for j := range fields {
				if rng.IntN(3) > 0 {
					v := floats[rng.IntN(len(floats))] * (1 + rng.Float64())
					p.Values[j] = &v
				}
			}
			pts = append(pts, p)
		}
		for _, n := range []int{0, 1, len(pts)} {
			out := seriesJSON{Unit: q.Unit, From: fmtTime(q.From), To: fmtTime(q.To), Step: q.Step.String(), Agg: q.Agg, Fields: q.Fields, Points: []map[string]any{}}
			for _, pt := range pts[:n] {
				m := map[string]any{}
				for i, v := range pt.Values {
					if v != nil {
						m[q.Fields[i]] = round6(*v)
					}
				}
				if len(m) == 0 {
					continue
				}
				m["time"] = fmtTime(pt.Time)
				out.Points = append(out.Points, m)
			}
			want, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendSeriesJSON(nil, q, pts[:n]); !bytes.Equal(got, want) {
				t.Fatalf("fields %v, %d points:\n got %s\nwant %s", fields, n, got, want)
			}
		}
	}
}
