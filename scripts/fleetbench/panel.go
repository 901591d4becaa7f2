package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Panel titles of deploy/grafana/dashboards/fleet.json the benchmark runs.
const (
	panelFleetSoC = "Fleet-average SoC by site"
	panelUnitSoC  = "State of charge and health — $unit"
)

// dashboard is the part of a Grafana dashboard JSON the benchmark reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Query string `json:"query"`
		} `json:"targets"`
	} `json:"panels"`
}

// panelQueries returns the InfluxQL queries of the panel titled title in
// the dashboard file at path: its raw target, then its 5-minute one.
func panelQueries(path, title string) (raw, rollup string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read dashboard: %w", err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return "", "", fmt.Errorf("dashboard %s: %w", path, err)
	}
	for _, p := range d.Panels {
		if p.Title == title {
			if len(p.Targets) != 2 || p.Targets[0].Query == "" || p.Targets[1].Query == "" {
				return "", "", fmt.Errorf("dashboard %s: panel %q: want two InfluxQL targets (raw, 5m), have %d", path, title, len(p.Targets))
			}
			return p.Targets[0].Query, p.Targets[1].Query, nil
		}
	}
	return "", "", fmt.Errorf("dashboard %s: no panel titled %q", path, title)
}

// sources are the measurements the dashboard's resolution variables select.
var sources = map[string]map[string]string{
	"raw": {"fleet_source": "bsu", "unit_source": "bsu"},
	"5m":  {"fleet_source": "bsu_site_5m", "unit_source": "bsu_5m"},
}

// interpolate replaces what Grafana's InfluxQL data source replaces (its
// macros $timeFilter and $__interval) and the dashboard's variables, with
// the resolution variables set for res ("raw" or "5m").
func interpolate(q string, from, to time.Time, every time.Duration, res string, vars map[string]string) string {
	pairs := []string{
		"$timeFilter", fmt.Sprintf("time >= '%s' AND time < '%s'", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)),
		"$__interval", strconv.FormatInt(every.Milliseconds(), 10) + "ms",
	}
	all := map[string]string{}
	for k, v := range sources[res] {
		all[k] = v
	}
	for k, v := range vars {
		all[k] = v
	}
	for k, v := range all {
		pairs = append(pairs, "${"+k+"}", v, "$"+k, v)
	}
	return strings.NewReplacer(pairs...).Replace(q)
}

// grafanaInterval is the panel interval Grafana picks for a time range drawn
// with at most maxPoints points (its roundInterval steps, the common part).
func grafanaInterval(span time.Duration, maxPoints int) time.Duration {
	raw := span / time.Duration(maxPoints)
	steps := []struct{ below, is time.Duration }{
		{1500 * time.Millisecond, time.Second}, {3500 * time.Millisecond, 2 * time.Second},
		{7500 * time.Millisecond, 5 * time.Second}, {12500 * time.Millisecond, 10 * time.Second},
		{17500 * time.Millisecond, 15 * time.Second}, {25 * time.Second, 20 * time.Second},
		{45 * time.Second, 30 * time.Second}, {90 * time.Second, time.Minute},
		{210 * time.Second, 2 * time.Minute}, {450 * time.Second, 5 * time.Minute},
		{750 * time.Second, 10 * time.Minute}, {1050 * time.Second, 15 * time.Minute},
		{1500 * time.Second, 20 * time.Minute}, {2700 * time.Second, 30 * time.Minute},
		{5400 * time.Second, time.Hour}, {9000 * time.Second, 2 * time.Hour},
		{16200 * time.Second, 3 * time.Hour}, {32400 * time.Second, 6 * time.Hour},
	}
	for _, s := range steps {
		if raw < s.below {
			return s.is
		}
	}
	return 12 * time.Hour
}
