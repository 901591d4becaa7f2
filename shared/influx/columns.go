package influx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flexipack/cutover/shared/telemetry"
)

// colKind says which Record field a bsu column fills.
type colKind uint8

const (
	colIgnore colKind = iota // alarm_count, anything not part of a Record
	colTime
	colUnit
	colSite
	colModel
	colFirmware
	colSchema
	colMode
	colSeq
	colSoC
	colSoH
	colVoltage
	colCurrent
	colPower
	colTemp
)

var colKinds = map[string]colKind{
	"time": colTime, "unit": colUnit, "site": colSite, "model": colModel, "firmware": colFirmware,
	"schema": colSchema, "mode": colMode, "seq": colSeq, "soc_pct": colSoC, "soh_pct": colSoH,
	"voltage_v": colVoltage, "current_a": colCurrent, "power_kw": colPower,
}

// columns maps the columns of a SELECT * FROM bsu answer to Record fields.
type columns struct {
	names   []string
	kinds   []colKind
	sensors []string // for colTemp: the sensor name
}

func columnsOf(names []string) columns {
	c := columns{names: names, kinds: make([]colKind, len(names)), sensors: make([]string, len(names))}
	for i, n := range names {
		if k, ok := colKinds[n]; ok {
			c.kinds[i] = k
			continue
		}
		if sensor, ok := strings.CutPrefix(n, "temp_"); ok && strings.HasSuffix(sensor, "_c") && len(sensor) > 2 {
			c.kinds[i], c.sensors[i] = colTemp, strings.TrimSuffix(sensor, "_c")
		}
	}
	return c
}

// record fills rec from one row and the tags of its series (those the
// query grouped by). Temps get a fresh slice, so a caller that copies the
// Record keeps its own temperatures.
func (c columns) record(rec *telemetry.Record, tags map[string]string, row []any) error {
	var temps []telemetry.Temp
	*rec = telemetry.Record{Unit: tags["unit"], Site: tags["site"], Model: tags["model"]}
	for i, v := range row {
		k := colIgnore
		if i < len(c.kinds) {
			k = c.kinds[i]
		}
		if v == nil || k == colIgnore {
			continue // a field this point does not have
		}
		if err := c.set(rec, k, i, v, &temps); err != nil {
			return fmt.Errorf("column %s: %w", c.names[i], err)
		}
	}
	if rec.Unit == "" {
		return fmt.Errorf("no unit tag")
	}
	if len(temps) > 1 {
		slices.SortFunc(temps, func(a, b telemetry.Temp) int { return strings.Compare(a.Sensor, b.Sensor) })
	}
	if len(temps) > 0 {
		rec.Temps = temps
	}
	return nil
}

func (c columns) set(rec *telemetry.Record, k colKind, i int, v any, temps *[]telemetry.Temp) error {
	var err error
	switch k {
	case colTime:
		rec.TimeMs, err = Int64(v)
	case colUnit:
		rec.Unit, err = String(v)
	case colSite:
		rec.Site, err = String(v)
	case colModel:
		rec.Model, err = String(v)
	case colFirmware:
		rec.Firmware, err = String(v)
	case colSchema:
		rec.Schema, err = String(v)
	case colMode:
		rec.Mode, err = String(v)
	case colSeq:
		rec.Seq, err = Int64(v)
		rec.HasSeq = err == nil
	case colSoC:
		rec.SoC, err = Float64(v)
		rec.Has |= telemetry.HasSoC
	case colSoH:
		rec.SoH, err = Float64(v)
		rec.Has |= telemetry.HasSoH
	case colVoltage:
		rec.Voltage, err = Float64(v)
		rec.Has |= telemetry.HasVoltage
	case colCurrent:
		rec.Current, err = Float64(v)
		rec.Has |= telemetry.HasCurrent
	case colPower:
		rec.Power, err = Float64(v)
		rec.Has |= telemetry.HasPower
	case colTemp:
		var f float64
		f, err = Float64(v)
		*temps = append(*temps, telemetry.Temp{Sensor: c.sensors[i], C: f})
	}
	return err
}
