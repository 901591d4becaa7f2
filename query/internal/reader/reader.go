// Package reader defines what the query API reads from a telemetry store,
// one Reader interface with an implementation per store (PostgreSQL over
// the legacy rows, InfluxDB through InfluxQL), and the checks every
// implementation must pass to answer the API identically.
package reader

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Store names, as in X-Served-By and the metrics' store label.
const (
	StorePostgres = "postgres"
	StoreInflux   = "influxdb"
)

// ErrNotFound reports an unknown unit.
var ErrNotFound = errors.New("not found")

// ErrUnavailable reports a store that does not answer (down, timing out);
// the API answers 503 with Retry-After.
var ErrUnavailable = errors.New("store unavailable")

// RollupStep is the width of the stores' 5-minute rollups: fleet steps are
// multiples of it, and unit series at a multiple of it may be served from
// the rollups.
const RollupStep = 5 * time.Minute

// Reader answers the API's queries from one store. Implementations are safe
// for concurrent use; every method returns ErrUnavailable (wrapped) when the
// store does not answer.
type Reader interface {
	// Name is the store's name (StorePostgres or StoreInflux).
	Name() string
	// Ping checks the store answers.
	Ping(ctx context.Context) error
	// Units lists the units with at least one reading, sorted, each with
	// the site and model of its latest reading, filtered by f.
	Units(ctx context.Context, f UnitFilter) ([]Unit, error)
	// Latest returns the unit's newest reading, ErrNotFound if it has none.
	Latest(ctx context.Context, unit string) (*telemetry.Record, error)
	// Readings calls fn with the unit's readings in q's range, in time
	// order, at most q.Limit of them (0: all). The record may be reused
	// after fn returns.
	Readings(ctx context.Context, q RangeQuery, fn func(*telemetry.Record) error) error
	// Series aggregates the unit's fields per step (see SeriesQuery).
	Series(ctx context.Context, q SeriesQuery) (Series, error)
	// Fleet aggregates every site per step (see FleetQuery).
	Fleet(ctx context.Context, q FleetQuery) (Fleet, error)
	// Alarms returns the alarms in q's range in time order (ties in any
	// order), at most q.Limit.
	Alarms(ctx context.Context, q AlarmQuery) ([]Alarm, error)
}

// UnitFilter selects units by the site and model of their latest reading
// ("" = any).
type UnitFilter struct{ Site, Model string }

// Unit is one unit as the API lists it.
type Unit struct {
	Unit        string
	Site        string
	Model       string
	LastReading time.Time
}

// Matches reports whether u passes f.
func (f UnitFilter) Matches(u Unit) bool {
	return (f.Site == "" || f.Site == u.Site) && (f.Model == "" || f.Model == u.Model)
}

// RangeQuery selects one unit's readings with time in [From, To).
type RangeQuery struct {
	Unit     string
	From, To time.Time
	Limit    int
}

// Agg is a series aggregation.
type Agg string

// Aggregations of SeriesQuery.
const (
	AggMean Agg = "mean"
	AggMin  Agg = "min"
	AggMax  Agg = "max"
	AggLast Agg = "last"
)

// ParseAgg returns the aggregation named s.
func ParseAgg(s string) (Agg, error) {
	switch a := Agg(s); a {
	case AggMean, AggMin, AggMax, AggLast:
		return a, nil
	}
	return "", fmt.Errorf("%q: want mean, min, max or last", s)
}

// SeriesQuery aggregates one unit's Fields with Agg per Step. Buckets are
// aligned to the Unix epoch; From and To are whole steps (the API widens
// them). A bucket in which none of the fields has a value is left out.
type SeriesQuery struct {
	Unit     string
	From, To time.Time
	Step     time.Duration
	Fields   []string
	Agg      Agg
}

// WeightedMean reports whether q's mean is the rollups' definition: at a
// step that is a multiple of RollupStep, the mean of a non-temperature
// field is the mean of its 5-minute means weighted by each window's
// readings (what bsu_5m holds; the plain mean whenever every reading
// carries the field). Every Reader answers such a query so.
func (q SeriesQuery) WeightedMean() bool {
	if q.Agg != AggMean || q.Step%RollupStep != 0 {
		return false
	}
	for _, f := range q.Fields {
		if s, _ := CheckField(f); s != "" {
			return false
		}
	}
	return true
}

func allTemps(fields []string) bool {
	for _, f := range fields {
		if s, _ := CheckField(f); s == "" {
			return false
		}
	}
	return true
}

// SeriesPoint is one bucket: Values[i] is Fields[i]'s aggregate, nil when
// the field had no value in the bucket.
type SeriesPoint struct {
	Time   time.Time
	Values []*float64
}

// Series is a SeriesQuery's answer; Source says whether the store read its
// rollups or raw readings ("rollup", "raw", or "rollup+raw").
type Series struct {
	Points []SeriesPoint
	Source string
}

// FleetQuery aggregates every site (or one) per Step, a multiple of
// RollupStep, over [From, To) (whole steps). The definitions are those of
// the fleet dashboard's rollups: per 5-minute window, a site's power is the
// sum of its units' mean power and its units reporting the units with a
// reading; per step, SoC is the mean of every reading's SoC, power the mean
// of the 5-minute powers, units the most in any 5-minute window, alarms the
// sum of the readings' alarm counts.
type FleetQuery struct {
	From, To time.Time
	Step     time.Duration
	Site     string
}

// FleetPoint is one site's step as sums and counts, so that partial steps
// (rollup and raw halves) add up; FleetPoint.Add merges two.
type FleetPoint struct {
	Site       string
	Time       time.Time
	SoCSum     float64
	SoCCount   int64
	PowerSum   float64 // sum of the 5-minute site powers
	PowerCount int64   // how many 5-minute windows had a power
	Units      int64
	Alarms     int64
}

// Add merges o (same site and step) into p.
func (p *FleetPoint) Add(o FleetPoint) {
	p.SoCSum += o.SoCSum
	p.SoCCount += o.SoCCount
	p.PowerSum += o.PowerSum
	p.PowerCount += o.PowerCount
	p.Units = max(p.Units, o.Units)
	p.Alarms += o.Alarms
}

// Fleet is a FleetQuery's answer, ordered by time then site.
type Fleet struct {
	Points []FleetPoint
	Source string
}

// SortFleet orders points by time then site.
func SortFleet(ps []FleetPoint) {
	if slices.IsSortedFunc(ps, func(a, b FleetPoint) int { return compareFleet(&a, &b) }) {
		return
	}
	slices.SortFunc(ps, func(a, b FleetPoint) int { return compareFleet(&a, &b) })
}

// compareFleet orders fleet points by time, then site.
func compareFleet(a, b *FleetPoint) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Site, b.Site)
}

// AlarmQuery selects alarms with time in [From, To), by unit, site and
// severity ("" = any).
type AlarmQuery struct {
	From, To             time.Time
	Unit, Site, Severity string
	Limit                int
}

// Alarm is one alarm raised with a reading.
type Alarm struct {
	Time     time.Time
	Unit     string
	Site     string
	Code     string
	Severity string
	Text     string
}

// Compare orders alarms by time, unit, code, severity, text: the order the
// API lists them in, whatever order a store returned them.
func (a Alarm) Compare(b Alarm) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	for _, p := range [][2]string{{a.Unit, b.Unit}, {a.Code, b.Code}, {a.Severity, b.Severity}, {a.Text, b.Text}, {a.Site, b.Site}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// Float fields of a reading the series endpoint serves, besides
// temp_<sensor>_c.
var FloatFields = []string{"soc_pct", "soh_pct", "voltage_v", "current_a", "power_kw"}

var tempField = regexp.MustCompile(`^temp_([a-z0-9_]{1,32})_c$`)

// CheckField validates a series field name: one of FloatFields or
// temp_<sensor>_c. sensor is the temperature sensor, "" otherwise.
func CheckField(f string) (sensor string, err error) {
	if slices.Contains(FloatFields, f) {
		return "", nil
	}
	if m := tempField.FindStringSubmatch(f); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("%q: want one of %s or temp_<sensor>_c", f, strings.Join(FloatFields, ", "))
}

// Unavailable wraps err as ErrUnavailable unless ctx ended (the client went
// away or the request timed out: the API answers that itself).
func Unavailable(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}
