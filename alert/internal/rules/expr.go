package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Expr is a compiled condition over one reading (and, for aggregate and
// share rules, the rule's computed value): comparisons joined by "and" and
// "or" ("and" binds tighter), for example
//
//	temp_cell_max_c > 55
//	mode == idle and soc_pct < 10
//	value < -20
//
// A comparison on a field the reading did not report is unknown: it is
// neither true nor false, so it can neither raise nor clear an alert.
type Expr struct {
	src string
	any [][]cmp // or of ands
}

// String returns the expression as written.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	return e.src
}

// field identifies what a comparison reads.
type field uint8

const (
	fSoC field = iota
	fSoH
	fVoltage
	fCurrent
	fPower
	fTemp // temp_<sensor>_c
	fAlarmCount
	fSeq
	fValue // the rule's aggregate or share
	fMode  // strings from here on
	fSite
	fModel
	fFirmware
	fSchema
	fUnit
)

func (f field) isString() bool { return f >= fMode }

type op uint8

const (
	opGT op = iota
	opGE
	opLT
	opLE
	opEQ
	opNE
)

var ops = []struct {
	text string
	op   op
}{{">=", opGE}, {"<=", opLE}, {"==", opEQ}, {"!=", opNE}, {">", opGT}, {"<", opLT}}

type cmp struct {
	f      field
	sensor string // fTemp
	op     op
	num    float64
	str    string
}

var namedFields = map[string]field{
	"soc_pct": fSoC, "soh_pct": fSoH, "voltage_v": fVoltage, "current_a": fCurrent, "power_kw": fPower,
	"alarm_count": fAlarmCount, "seq": fSeq, "value": fValue,
	"mode": fMode, "site": fSite, "model": fModel, "firmware": fFirmware, "schema": fSchema, "unit": fUnit,
}

// FieldNames lists the fields an expression may name, for error messages.
const FieldNames = "soc_pct, soh_pct, voltage_v, current_a, power_kw, temp_<sensor>_c, alarm_count, seq, mode, site, model, firmware, schema, unit (and value in aggregate and share rules)"

// parseField resolves a field name.
func parseField(name string) (field, string, error) {
	if f, ok := namedFields[name]; ok {
		return f, "", nil
	}
	if s, ok := strings.CutPrefix(name, "temp_"); ok {
		if s, ok = strings.CutSuffix(s, "_c"); ok && s != "" {
			return fTemp, s, nil
		}
	}
	return 0, "", fmt.Errorf("unknown field %q: want one of %s", name, FieldNames)
}

// ParseExpr compiles an expression. allowValue says whether "value" (the
// rule's aggregate or share) may appear.
func ParseExpr(src string, allowValue bool) (*Expr, error) {
	src = strings.TrimSpace(src)
	if src == "" {
		return nil, fmt.Errorf("empty expression")
	}
	e := &Expr{src: src}
	words := strings.Fields(src)
	var and []cmp
	for i := 0; i < len(words); {
		c, n, err := parseCmp(words[i:], allowValue)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", src, err)
		}
		and = append(and, c)
		i += n
		if i == len(words) {
			break
		}
		switch strings.ToLower(words[i]) {
		case "and":
		case "or":
			e.any = append(e.any, and)
			and = nil
		default:
			return nil, fmt.Errorf("%q: want \"and\" or \"or\" after a comparison, got %q", src, words[i])
		}
		i++
		if i == len(words) {
			return nil, fmt.Errorf("%q: ends with %q", src, words[i-1])
		}
	}
	e.any = append(e.any, and)
	return e, nil
}

// parseCmp reads "field op literal" from words, where the operator may be
// glued to either side ("soc_pct<10"), and returns how many words it used.
func parseCmp(words []string, allowValue bool) (cmp, int, error) {
	// Join up to three words and split at the operator.
	joined, used := "", 0
	var lhs, rhs string
	var o op
	found := false
	for used < len(words) && used < 3 && !found {
		joined += words[used]
		used++
		for _, cand := range ops {
			if l, r, ok := strings.Cut(joined, cand.text); ok {
				lhs, rhs, o, found = l, r, cand.op, true
				break
			}
		}
	}
	if !found {
		return cmp{}, 0, fmt.Errorf("want a comparison like \"soc_pct < 10\" (operators > >= < <= == !=), got %q", strings.Join(words[:used], " "))
	}
	if rhs == "" {
		if used == len(words) {
			return cmp{}, 0, fmt.Errorf("comparison %q has no right-hand side", joined)
		}
		rhs = words[used]
		used++
	}
	f, sensor, err := parseField(lhs)
	if err != nil {
		return cmp{}, 0, err
	}
	if f == fValue && !allowValue {
		return cmp{}, 0, fmt.Errorf("\"value\" exists only in aggregate and share rules")
	}
	c := cmp{f: f, sensor: sensor, op: o}
	if f.isString() {
		if o != opEQ && o != opNE {
			return cmp{}, 0, fmt.Errorf("%s is text: compare it with == or !=", lhs)
		}
		c.str = strings.Trim(rhs, `"'`)
		if f == fMode && !validMode(c.str) {
			return cmp{}, 0, fmt.Errorf("mode %q: want idle, charging, discharging, fault or maintenance", c.str)
		}
		return c, used, nil
	}
	v, err := strconv.ParseFloat(rhs, 64)
	if err != nil {
		return cmp{}, 0, fmt.Errorf("%s is a number: %q is not one", lhs, rhs)
	}
	c.num = v
	return c, used, nil
}

func validMode(s string) bool {
	switch s {
	case telemetry.ModeIdle, telemetry.ModeCharging, telemetry.ModeDischarging, telemetry.ModeFault, telemetry.ModeMaintenance:
		return true
	}
	return false
}

// Eval evaluates the expression on r with the rule's value v (ignored when
// hasV is false). known is false when a field it needs was not reported.
func (e *Expr) Eval(r *telemetry.Record, v float64, hasV bool) (result, known bool) {
	allFalse := true
	for _, and := range e.any {
		clause := 1 // 1 true, 0 false, -1 unknown
		for i := range and {
			ok, k := and[i].eval(r, v, hasV)
			if k && !ok {
				clause = 0
				break
			}
			if !k {
				clause = -1
			}
		}
		switch clause {
		case 1:
			return true, true
		case -1:
			allFalse = false
		}
	}
	return false, allFalse
}

func (c *cmp) eval(r *telemetry.Record, v float64, hasV bool) (bool, bool) {
	if c.f.isString() {
		s, ok := stringField(r, c.f)
		if !ok {
			return false, false
		}
		return (s == c.str) == (c.op == opEQ), true
	}
	x, ok := NumField(r, c.f, c.sensor, v, hasV)
	if !ok {
		return false, false
	}
	switch c.op {
	case opGT:
		return x > c.num, true
	case opGE:
		return x >= c.num, true
	case opLT:
		return x < c.num, true
	case opLE:
		return x <= c.num, true
	case opEQ:
		return x == c.num, true
	default:
		return x != c.num, true
	}
}

func stringField(r *telemetry.Record, f field) (string, bool) {
	var s string
	switch f {
	case fMode:
		s = r.Mode
	case fSite:
		s = r.Site
	case fModel:
		s = r.Model
	case fFirmware:
		s = r.Firmware
	case fSchema:
		s = r.Schema
	case fUnit:
		s = r.Unit
	}
	return s, s != ""
}

// NumField reads a numeric field of r; ok is false when it was not reported.
func NumField(r *telemetry.Record, f field, sensor string, v float64, hasV bool) (float64, bool) {
	switch f {
	case fSoC:
		return r.SoC, r.Has&telemetry.HasSoC != 0
	case fSoH:
		return r.SoH, r.Has&telemetry.HasSoH != 0
	case fVoltage:
		return r.Voltage, r.Has&telemetry.HasVoltage != 0
	case fCurrent:
		return r.Current, r.Has&telemetry.HasCurrent != 0
	case fPower:
		return r.Power, r.Has&telemetry.HasPower != 0
	case fTemp:
		for i := range r.Temps {
			if r.Temps[i].Sensor == sensor {
				return r.Temps[i].C, true
			}
		}
		return 0, false
	case fAlarmCount:
		return float64(len(r.Alarms)), true
	case fSeq:
		return float64(r.Seq), r.HasSeq
	case fValue:
		return v, hasV
	}
	return 0, false
}

// Field is a numeric field an aggregate rule reads.
type Field struct {
	Name   string
	f      field
	sensor string
}

// Read returns the field's value in r, if reported.
func (fd Field) Read(r *telemetry.Record) (float64, bool) {
	return NumField(r, fd.f, fd.sensor, 0, false)
}

// ParseNumField resolves a numeric field name for aggregate rules.
func ParseNumField(name string) (Field, error) {
	f, sensor, err := parseField(name)
	if err != nil {
		return Field{}, err
	}
	if f.isString() || f == fValue {
		return Field{}, fmt.Errorf("field %q: an aggregate needs a numeric reading field", name)
	}
	return Field{Name: name, f: f, sensor: sensor}, nil
}

// Subject returns the value of the first numeric field the expression
// compares, the "value" a threshold alert reports.
func (e *Expr) Subject(r *telemetry.Record) (float64, bool) {
	for _, and := range e.any {
		for i := range and {
			if c := &and[i]; !c.f.isString() && c.f != fValue {
				return NumField(r, c.f, c.sensor, 0, false)
			}
		}
	}
	return 0, false
}
