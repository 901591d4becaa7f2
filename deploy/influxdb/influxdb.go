// Package influxdb holds the reference of the fleet dashboards' 5-minute
// rollups: the InfluxDB 1.8 continuous queries (continuous_queries.influxql)
// the project deployed before the rollup job (shared/rollup) replaced them
// on every InfluxDB version. They are no longer deployed: the rollup job's
// test checks it writes exactly what they wrote, and `make bench` measures
// the job next to them.
package influxdb

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ContinuousQueriesText is continuous_queries.influxql: one CREATE
// CONTINUOUS QUERY statement a line, "--" comment lines.
//
//go:embed continuous_queries.influxql
var ContinuousQueriesText string

// Measurements written by the downsampling.
const (
	// MeasurementUnit5m holds one point per unit per Interval.
	MeasurementUnit5m = "bsu_5m"
	// MeasurementSite5m holds one point per site per Interval.
	MeasurementSite5m = "bsu_site_5m"
)

// Names of the continuous queries in continuous_queries.influxql.
const (
	// CQUnit5m writes MeasurementUnit5m from bsu.
	CQUnit5m = "bsu_5m"
	// CQSite5m writes MeasurementSite5m's SoC, temperature, reading and
	// alarm fields from bsu.
	CQSite5m = "bsu_site_5m"
	// CQSitePower writes MeasurementSite5m's power_kw and units from
	// MeasurementUnit5m, so it runs after CQUnit5m.
	CQSitePower = "bsu_site_5m_power"
)

// Interval is the width of a downsampled window; points are stamped at the
// window's start.
const Interval = 5 * time.Minute

// Database is the database the continuous queries are defined ON.
const Database = "telemetry"

// CQ is one continuous query of ContinuousQueriesText.
type CQ struct {
	Name     string // the CQ's name
	Database string // the database it is defined ON
	Select   string // its SELECT ... INTO ... GROUP BY time(...) statement
	Create   string // the whole CREATE CONTINUOUS QUERY statement
	Line     int    // 1-based line in continuous_queries.influxql
}

var cqRE = regexp.MustCompile(`^CREATE CONTINUOUS QUERY "([^"]+)" ON "([^"]+)" RESAMPLE EVERY \S+ FOR \S+ BEGIN (SELECT .+ GROUP BY time\([^)]+\).*) END$`)

// ContinuousQueries parses text (normally ContinuousQueriesText) into its
// continuous queries, in file order, which is the order they must run in.
func ContinuousQueries(text string) ([]CQ, error) {
	var cqs []CQ
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		m := cqRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("continuous_queries.influxql line %d: not a one-line CREATE CONTINUOUS QUERY \"name\" ON \"db\" RESAMPLE EVERY .. FOR .. BEGIN SELECT .. GROUP BY time(..) .. END: %.60q", i+1, line)
		}
		cqs = append(cqs, CQ{Name: m[1], Database: m[2], Select: m[3], Create: line, Line: i + 1})
	}
	if len(cqs) == 0 {
		return nil, fmt.Errorf("continuous_queries.influxql: no continuous query")
	}
	return cqs, nil
}

// OnDatabase returns the CREATE statement defined ON db instead.
func (q CQ) OnDatabase(db string) string {
	return strings.Replace(q.Create, fmt.Sprintf(" ON %q ", q.Database), fmt.Sprintf(" ON %q ", db), 1)
}

// Resample returns the CQ's SELECT restricted to [from, to), which must be
// aligned to Interval (else the first and last windows would be computed
// from part of their readings and overwrite complete ones). Run it with the
// database as the query's db parameter; it is how history older than the
// CQ's RESAMPLE FOR reach (backfilled ranges) gets downsampled.
func (q CQ) Resample(from, to time.Time) (string, error) {
	if !from.Equal(from.Truncate(Interval)) || !to.Equal(to.Truncate(Interval)) || !from.Before(to) {
		return "", fmt.Errorf("resample %s: range [%s, %s) must be non-empty and aligned to %s", q.Name, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), Interval)
	}
	i := strings.Index(q.Select, " GROUP BY ")
	if i < 0 || strings.Contains(q.Select, " WHERE ") {
		return "", fmt.Errorf("resample %s: SELECT has no GROUP BY or already has a WHERE: %q", q.Name, q.Select)
	}
	where := fmt.Sprintf(" WHERE time >= '%s' AND time < '%s'", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	return q.Select[:i] + where + q.Select[i:], nil
}

// ResampleStatements returns the statements that downsample [from, to)
// (widened to Interval boundaries) in chunks of at most chunk (a multiple of
// Interval; 0 means one day), every CQ's statement for a chunk before the
// next chunk, CQs in file order.
func ResampleStatements(cqs []CQ, from, to time.Time, chunk time.Duration) ([]string, error) {
	if chunk == 0 {
		chunk = 24 * time.Hour
	}
	if chunk < Interval || chunk%Interval != 0 {
		return nil, fmt.Errorf("resample chunk %s: want a positive multiple of %s", chunk, Interval)
	}
	from, to = from.UTC().Truncate(Interval), to.UTC()
	if t := to.Truncate(Interval); t.Before(to) {
		to = t.Add(Interval)
	}
	var out []string
	for s := from; s.Before(to); s = s.Add(chunk) {
		e := s.Add(chunk)
		if e.After(to) {
			e = to
		}
		for _, q := range cqs {
			stmt, err := q.Resample(s, e)
			if err != nil {
				return nil, err
			}
			out = append(out, stmt)
		}
	}
	return out, nil
}
