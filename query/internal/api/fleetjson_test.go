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
