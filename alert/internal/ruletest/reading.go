package ruletest

import (
	"fmt"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v4"

	"github.com/flexipack/cutover/shared/telemetry"
)

// reading builds a record from a test reading: t (offset from the start;
// default: the step's wall clock) and fields named as in rule expressions.
func reading(n *yaml.Node, start, now time.Time) (telemetry.Record, error) {
	var m map[string]any
	if err := n.Load(&m); err != nil {
		return telemetry.Record{}, fmt.Errorf("line %d: %w", n.Line, err)
	}
	at := now
	if t, ok := m["t"]; ok {
		d, err := time.ParseDuration(fmt.Sprint(t))
		if err != nil {
			return telemetry.Record{}, fmt.Errorf("line %d: t %v: %v", n.Line, t, err)
		}
		at = start.Add(d)
		delete(m, "t")
	}
	r := telemetry.Record{TimeMs: at.UnixMilli(), Schema: telemetry.Schema21}
	if err := setFields(&r, m); err != nil {
		return telemetry.Record{}, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return r, nil
}

func setFields(r *telemetry.Record, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := setField(r, k, m[k]); err != nil {
			return err
		}
	}
	sort.Slice(r.Temps, func(i, j int) bool { return r.Temps[i].Sensor < r.Temps[j].Sensor })
	return nil
}

func setField(r *telemetry.Record, k string, v any) error {
	if k == "mode" {
		r.Mode = fmt.Sprint(v)
		return nil
	}
	if k == "alarms" {
		return setAlarms(r, v)
	}
	x, ok := num(v)
	if !ok {
		return fmt.Errorf("field %s: %v is not a number", k, v)
	}
	switch k {
	case "soc_pct":
		r.SoC, r.Has = x, r.Has|telemetry.HasSoC
	case "soh_pct":
		r.SoH, r.Has = x, r.Has|telemetry.HasSoH
	case "voltage_v":
		r.Voltage, r.Has = x, r.Has|telemetry.HasVoltage
	case "current_a":
		r.Current, r.Has = x, r.Has|telemetry.HasCurrent
	case "power_kw":
		r.Power, r.Has = x, r.Has|telemetry.HasPower
	default:
		s, ok := strings.CutPrefix(k, "temp_")
		if s, ok2 := strings.CutSuffix(s, "_c"); ok && ok2 && s != "" {
			r.Temps = append(r.Temps, telemetry.Temp{Sensor: s, C: x})
			return nil
		}
		return fmt.Errorf("unknown field %q in a test reading", k)
	}
	return nil
}

func setAlarms(r *telemetry.Record, v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("alarms: want a list of {code, severity, text}")
	}
	for _, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("alarms: want a list of {code, severity, text}")
		}
		a := telemetry.Alarm{Code: fmt.Sprint(m["code"]), Severity: fmt.Sprint(m["severity"])}
		if t, ok := m["text"]; ok {
			a.Text = fmt.Sprint(t)
		}
		r.Alarms = append(r.Alarms, a)
	}
	return nil
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// series expands a series step into readings every `every` from `from` to
// `to` (inclusive) with fixed fields and linear ramps.
func series(s *seriesYAML, start time.Time) ([]telemetry.Record, error) {
	from, err1 := time.ParseDuration(orZero(s.From))
	to, err2 := time.ParseDuration(orZero(s.To))
	every, err3 := time.ParseDuration(orZero(s.Every))
	if err1 != nil || err2 != nil || err3 != nil || every <= 0 || to < from {
		return nil, fmt.Errorf("series: want from <= to and every > 0 as durations (got %q, %q, %q)", s.From, s.To, s.Every)
	}
	if (to-from)/every > 100000 {
		return nil, fmt.Errorf("series: more than 100000 readings")
	}
	var out []telemetry.Record
	for at := from; at <= to; at += every {
		m := make(map[string]any, len(s.Fields)+len(s.Ramp))
		for k, v := range s.Fields {
			m[k] = v
		}
		for k, ab := range s.Ramp {
			frac := 0.0
			if to > from {
				frac = float64(at-from) / float64(to-from)
			}
			m[k] = ab[0] + (ab[1]-ab[0])*frac
		}
		r := telemetry.Record{TimeMs: start.Add(at).UnixMilli(), Schema: telemetry.Schema21}
		if err := setFields(&r, m); err != nil {
			return nil, fmt.Errorf("series: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
