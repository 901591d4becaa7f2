package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/telemetry"
)

// Endpoint names, as in metrics and shadow records.
const (
	EndpointUnits    = "units"
	EndpointLatest   = "latest"
	EndpointReadings = "readings"
	EndpointSeries   = "series"
	EndpointFleet    = "fleet"
	EndpointAlarms   = "alarms"
)

func (a *API) readRoutes() RouteGroup {
	return RouteGroup{
		Name: "telemetry",
		Routes: []Route{
			{Pattern: "GET /v1/units", Handler: a.serveJSON(EndpointUnits, a.parseUnits)},
			{Pattern: "GET /v1/units/{unit}/latest", Handler: a.serveJSON(EndpointLatest, a.parseLatest)},
			{Pattern: "GET /v1/units/{unit}/readings", Handler: http.HandlerFunc(a.serveReadings)},
			{Pattern: "GET /v1/units/{unit}/series", Handler: a.serveJSON(EndpointSeries, a.parseSeries)},
			{Pattern: "GET /v1/fleet", Handler: a.serveJSON(EndpointFleet, a.parseFleet)},
			{Pattern: "GET /v1/alarms", Handler: a.serveJSON(EndpointAlarms, a.parseAlarms)},
		},
		Paths:   telemetryPaths(),
		Schemas: telemetrySchemas(),
	}
}

// recentWithin: a range ending this close to now may still change.
const recentWithin = time.Minute

type unitJSON struct {
	Unit        string `json:"unit"`
	Site        string `json:"site,omitempty"`
	Model       string `json:"model,omitempty"`
	LastReading string `json:"last_reading"`
}

func (a *API) parseUnits(r *http.Request, now time.Time) (query, error) {
	p, err := newParams(r.URL.Query(), now, "site", "model")
	if err != nil {
		return query{}, err
	}
	var f reader.UnitFilter
	if f.Site, err = p.str("site", 256); err != nil {
		return query{}, err
	}
	if f.Model, err = p.str("model", 256); err != nil {
		return query{}, err
	}
	return query{recent: true, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
		units, err := rd.Units(ctx, f)
		if err != nil {
			return nil, err
		}
		out := struct {
			Units []unitJSON `json:"units"`
		}{Units: make([]unitJSON, len(units))}
		for i, u := range units {
			out.Units[i] = unitJSON{Unit: u.Unit, Site: u.Site, Model: u.Model, LastReading: fmtTime(u.LastReading)}
		}
		return json.Marshal(out)
	}}, nil
}

func pathUnit(r *http.Request) (string, error) {
	u := r.PathValue("unit")
	return u, checkUnit(u)
}

func (a *API) parseLatest(r *http.Request, now time.Time) (query, error) {
	if _, err := newParams(r.URL.Query(), now); err != nil {
		return query{}, err
	}
	unit, err := pathUnit(r)
	if err != nil {
		return query{}, err
	}
	return query{recent: true, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
		rec, err := rd.Latest(ctx, unit)
		if err != nil {
			return nil, err
		}
		return appendRecord(nil, rec), nil
	}}, nil
}

// appendRecord writes the normalised record, alarms in the API's order
// (code, severity, text): InfluxDB does not keep the message order.
func appendRecord(dst []byte, rec *telemetry.Record) []byte {
	if len(rec.Alarms) > 1 {
		slices.SortFunc(rec.Alarms, func(x, y telemetry.Alarm) int {
			return strings.Compare(x.Code+"\x00"+x.Severity+"\x00"+x.Text, y.Code+"\x00"+y.Severity+"\x00"+y.Text)
		})
	}
	return telemetry.AppendJSON(dst, rec)
}

// unknownUnit turns an empty answer for a unit without any reading into 404.
func unknownUnit(ctx context.Context, rd reader.Reader, unit string) error {
	_, err := rd.Latest(ctx, unit)
	return err
}

func (a *API) parseSeries(r *http.Request, now time.Time) (query, error) {
	p, err := newParams(r.URL.Query(), now, "from", "to", "step", "fields", "agg")
	if err != nil {
		return query{}, err
	}
	q := reader.SeriesQuery{Agg: reader.AggMean}
	if q.Unit, err = pathUnit(r); err != nil {
		return query{}, err
	}
	if q.From, q.To, err = p.timeRange(a.cfg.MaxRange); err != nil {
		return query{}, err
	}
	if q.Step, err = p.step(reader.RollupStep, time.Second, 0); err != nil {
		return query{}, err
	}
	if q.Fields, err = p.fields(); err != nil {
		return query{}, err
	}
	if s := p.q.Get("agg"); s != "" {
		if q.Agg, err = reader.ParseAgg(s); err != nil {
			return query{}, BadParam("agg", "%v", err)
		}
	}
	if q.From, q.To, err = alignRange(q.From, q.To, q.Step, a.cfg.MaxPoints); err != nil {
		return query{}, err
	}
	return query{recent: now.Sub(q.To) < recentWithin, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
		s, err := rd.Series(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(s.Points) == 0 {
			if err := unknownUnit(ctx, rd, q.Unit); err != nil {
				return nil, err
			}
		}
		return appendSeriesJSON(make([]byte, 0, 256+len(s.Points)*(40+24*len(q.Fields))), q, s.Points), nil
	}}, nil
}

// appendSeriesJSON writes the series answer exactly as json.Marshal writes
// a seriesJSON with a map per point (keys in sorted order, points without
// a value left out), without reflection or a map per point.
func appendSeriesJSON(b []byte, q reader.SeriesQuery, pts []reader.SeriesPoint) []byte {
	b = append(b, `{"unit":`...)
	b = appendJSONString(b, q.Unit)
	b = append(b, `,"from":`...)
	b = appendJSONString(b, fmtTime(q.From))
	b = append(b, `,"to":`...)
	b = appendJSONString(b, fmtTime(q.To))
	b = append(b, `,"step":`...)
	b = appendJSONString(b, q.Step.String())
	b = append(b, `,"agg":`...)
	b = appendJSONString(b, string(q.Agg))
	b = append(b, `,"fields":`...)
	fields, _ := json.Marshal(q.Fields) // strings always marshal
	b = append(b, fields...)
	b = append(b, `,"points":[`...)
	// Each point's keys in json.Marshal's order for a map: sorted, "time"
	// among the fields (index -1).
	key := func(i int) string {
		if i < 0 {
			return "time"
		}
		return q.Fields[i]
	}
	order := make([]int, len(q.Fields)+1)
	keys := make([][]byte, len(q.Fields)+1)
	for i := range order {
		order[i] = i - 1
		keys[i] = append(appendJSONString(nil, key(i-1)), ':')
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(key(x), key(y)) })
	first := true
	for _, pt := range pts {
		if !slices.ContainsFunc(pt.Values, func(v *float64) bool { return v != nil }) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		sep := byte('{')
		for _, i := range order {
			if i >= 0 && pt.Values[i] == nil {
				continue
			}
			b = append(b, sep)
			sep = ','
			b = append(b, keys[i+1]...)
			if i < 0 {
				b = appendJSONString(b, fmtTime(pt.Time))
			} else {
				b = appendRound6(b, *pt.Values[i])
			}
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendFleetJSON writes the fleet answer exactly as json.Marshal writes a
// fleetAnswer, without reflection: a 30-day answer has some 15,000 points,
// and encoding them was a fifth of the endpoint's CPU. Times repeat once
// per site (the points come ordered by time), so each is formatted once.
func appendFleetJSON(b []byte, q reader.FleetQuery, pts []reader.FleetPoint) []byte {
	b = append(b, `{"from":`...)
	b = appendJSONString(b, fmtTime(q.From))
	b = append(b, `,"to":`...)
	b = appendJSONString(b, fmtTime(q.To))
	b = append(b, `,"step":`...)
	b = appendJSONString(b, q.Step.String())
	b = append(b, `,"points":[`...)
	var lastTime time.Time
	var timeJSON []byte
	sites := map[string][]byte{}
	for i := range pts {
		pt := &pts[i]
		if i > 0 {
			b = append(b, ',')
		}
		if i == 0 || !pt.Time.Equal(lastTime) {
			lastTime, timeJSON = pt.Time, appendJSONString(timeJSON[:0], fmtTime(pt.Time))
		}
		site, ok := sites[pt.Site]
		if !ok {
			site = appendJSONString(nil, pt.Site)
			sites[pt.Site] = site
		}
		b = append(b, `{"time":`...)
		b = append(b, timeJSON...)
		b = append(b, `,"site":`...)
		b = append(b, site...)
		if pt.SoCCount > 0 {
			b = append(b, `,"soc_pct_mean":`...)
			b = appendRound6(b, pt.SoCSum/float64(pt.SoCCount))
		}
		if pt.PowerCount > 0 {
			b = append(b, `,"power_kw":`...)
			b = appendRound6(b, pt.PowerSum/float64(pt.PowerCount))
		}
		b = append(b, `,"units":`...)
		b = strconv.AppendInt(b, pt.Units, 10)
		b = append(b, `,"alarms":`...)
		b = strconv.AppendInt(b, pt.Alarms, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as json.Marshal writes a string (HTML-safe
// escapes included).
func appendJSONString(b []byte, s string) []byte {
	j, _ := json.Marshal(s) // a string always marshals
	return append(b, j...)
}

type fleetPointJSON struct {
	Time       string   `json:"time"`
	Site       string   `json:"site"`
	SoCMean    *float64 `json:"soc_pct_mean,omitempty"`
	PowerKW    *float64 `json:"power_kw,omitempty"`
	Units      int64    `json:"units"`
	AlarmCount int64    `json:"alarms"`
}

// fleetAnswer is the fleet endpoint's answer; To is where the answer ends
// (the request's to, or the fleet horizon when that is earlier).
type fleetAnswer struct {
	From   string           `json:"from"`
	To     string           `json:"to"`
	Step   string           `json:"step"`
	Points []fleetPointJSON `json:"points"`
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (a *API) parseFleet(r *http.Request, now time.Time) (query, error) {
	p, err := newParams(r.URL.Query(), now, "from", "to", "step", "site")
	if err != nil {
		return query{}, err
	}
	var q reader.FleetQuery
	if q.From, q.To, err = p.timeRange(a.cfg.MaxRange); err != nil {
		return query{}, err
	}
	if q.Step, err = p.step(time.Hour, reader.RollupStep, reader.RollupStep); err != nil {
		return query{}, err
	}
	if q.Site, err = p.str("site", 256); err != nil {
		return query{}, err
	}
	if q.From, q.To, err = alignRange(q.From, q.To, q.Step, a.cfg.MaxPoints); err != nil {
		return query{}, err
	}
	if a.cfg.FleetLag > 0 {
		if horizon := now.Add(-a.cfg.FleetLag).Truncate(reader.RollupStep); horizon.Before(q.To) {
			q.To = maxTime(horizon, q.From)
		}
	}
	return query{recent: now.Sub(q.To) < recentWithin, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
		if !q.From.Before(q.To) {
			return json.Marshal(fleetAnswer{From: fmtTime(q.From), To: fmtTime(q.To), Step: q.Step.String(), Points: []fleetPointJSON{}})
		}
		f, err := rd.Fleet(ctx, q)
		if err != nil {
			return nil, err
		}
		reader.SortFleet(f.Points)
		return appendFleetJSON(make([]byte, 0, 64+len(f.Points)*120), q, f.Points), nil
	}}, nil
}

type alarmJSON struct {
	Time     string `json:"time"`
	Unit     string `json:"unit"`
	Site     string `json:"site,omitempty"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Text     string `json:"text"`
}

// maxAlarmsAtOnce bounds the alarms at one instant a page may need to read
// whole to order them.
const maxAlarmsAtOnce = 100000

func (a *API) parseAlarms(r *http.Request, now time.Time) (query, error) {
	p, err := newParams(r.URL.Query(), now, "from", "to", "unit", "site", "severity", "limit", "cursor")
	if err != nil {
		return query{}, err
	}
	var q reader.AlarmQuery
	if q.From, q.To, err = p.timeRange(a.cfg.MaxRange); err != nil {
		return query{}, err
	}
	for name, dst := range map[string]*string{"unit": &q.Unit, "site": &q.Site, "severity": &q.Severity} {
		if *dst, err = p.str(name, 256); err != nil {
			return query{}, err
		}
	}
	if q.Limit, err = p.intParam("limit", a.cfg.DefaultPage, 1, a.cfg.MaxPage); err != nil {
		return query{}, err
	}
	c, err := p.cursorParam(q.From, q.To)
	if err != nil {
		return query{}, err
	}
	return query{recent: now.Sub(q.To) < recentWithin, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
		return alarmPage(ctx, rd, q, c)
	}}, nil
}

// alarmPage reads one page. Alarms are ordered by time, unit, code,
// severity, text; a store returns ties in any order, so the alarms of the
// page's last instant are read whole and ordered before the page is cut.
// The cursor is that instant and how many of its alarms were sent.
func alarmPage(ctx context.Context, rd reader.Reader, q reader.AlarmQuery, c *cursor) ([]byte, error) {
	skip, limit := 0, q.Limit
	if c != nil {
		q.From, skip = time.UnixMilli(c.T).UTC(), c.N
	}
	q.Limit = skip + limit + 1
	got, err := rd.Alarms(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(got) == q.Limit { // the last instant may be cut: read it whole
		last := got[len(got)-1].Time
		at := q
		at.From, at.To, at.Limit = last, last.Add(time.Millisecond), maxAlarmsAtOnce
		whole, err := rd.Alarms(ctx, at)
		if err != nil {
			return nil, err
		}
		got = slices.DeleteFunc(got, func(x reader.Alarm) bool { return x.Time.Equal(last) })
		got = append(got, whole...)
	}
	slices.SortFunc(got, reader.Alarm.Compare)
	if skip > len(got) {
		return nil, BadParam("cursor", "stale: the alarms it points into changed; start again without a cursor")
	}
	got = got[skip:]
	out := struct {
		Alarms     []alarmJSON `json:"alarms"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Alarms: []alarmJSON{}}
	n := min(limit, len(got))
	for _, x := range got[:n] {
		out.Alarms = append(out.Alarms, alarmJSON{Time: fmtTime(x.Time), Unit: x.Unit, Site: x.Site, Code: x.Code, Severity: x.Severity, Text: x.Text})
	}
	if len(got) > n {
		lastT := got[n-1].Time
		k := 0
		for _, x := range got[:n] {
			if x.Time.Equal(lastT) {
				k++
			}
		}
		if c != nil && time.UnixMilli(c.T).Equal(lastT) {
			k += skip
		}
		out.NextCursor = cursor{T: lastT.UnixMilli(), N: k}.encode()
	}
	return json.Marshal(out)
}

// errStop ends a Readings walk early (the page is full).
var errStop = errors.New("stop")

func (a *API) parseReadings(r *http.Request, now time.Time) (reader.RangeQuery, bool, error) {
	p, err := newParams(r.URL.Query(), now, "from", "to", "limit", "cursor")
	if err != nil {
		return reader.RangeQuery{}, false, err
	}
	var q reader.RangeQuery
	if q.Unit, err = pathUnit(r); err != nil {
		return q, false, err
	}
	if q.From, q.To, err = p.timeRange(a.cfg.MaxRange); err != nil {
		return q, false, err
	}
	hasLimit := p.q.Get("limit") != ""
	if q.Limit, err = p.intParam("limit", a.cfg.DefaultPage, 1, a.cfg.MaxPage); err != nil {
		return q, false, err
	}
	c, err := p.cursorParam(q.From, q.To)
	if err != nil {
		return q, false, err
	}
	if c != nil {
		q.From = time.UnixMilli(c.T + 1).UTC()
	}
	return q, hasLimit, nil
}

// readingsPage answers one page of readings as JSON.
func readingsPage(ctx context.Context, rd reader.Reader, q reader.RangeQuery) ([]byte, error) {
	limit := q.Limit
	q.Limit++
	buf := []byte(`{"unit":`)
	unit, _ := json.Marshal(q.Unit)
	buf = append(append(buf, unit...), `,"readings":[`...)
	n := 0
	var lastT int64
	more := false
	err := rd.Readings(ctx, q, func(rec *telemetry.Record) error {
		if n == limit {
			more = true
			return errStop
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = appendRecord(buf, rec)
		lastT = rec.TimeMs
		n++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if n == 0 {
		if err := unknownUnit(ctx, rd, q.Unit); err != nil {
			return nil, err
		}
	}
	buf = append(buf, ']')
	if more {
		buf = fmt.Appendf(buf, `,"next_cursor":%q`, cursor{T: lastT}.encode())
	}
	return append(buf, '}'), nil
}
