package influx

import "github.com/flexipack/cutover/shared/telemetry"

// RecordColumns turns the rows of a `SELECT * FROM bsu` answer into
// Records, for readers that run their own queries through Client (the
// query service).
type RecordColumns struct{ c columns }

// NewRecordColumns maps the answer's column names to Record fields.
func NewRecordColumns(names []string) RecordColumns { return RecordColumns{c: columnsOf(names)} }

// Record fills rec from one row; tags are the series' tags when the query
// grouped by them (nil when unit, site and model are columns). Alarms are
// left empty: they are points of bsu_alarm.
func (rc RecordColumns) Record(rec *telemetry.Record, tags map[string]string, row []any) error {
	return rc.c.record(rec, tags, row)
}
