package legacy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flexipack/cutover/shared/telemetry"
)

// The consumer issue asks which bulk path Write should use. Write is the
// multi-row INSERT … SELECT FROM unnest(arrays) … ON CONFLICT (one round
// trip, one cached prepared statement). The alternatives measured against it:
//
//   - writeCopy: COPY into a session temp table, then INSERT … SELECT … ON
//     CONFLICT from it, in one transaction;
//   - writeValues: INSERT … VALUES ($1,$2,$3,$4),(…) … ON CONFLICT, one
//     statement text per batch size.
//
// Run: go test ./shared/legacy -run '^$' -bench BenchmarkWrite -benchtime 20x

const stageSQL = `CREATE TEMP TABLE IF NOT EXISTS readings_stage (unit text, ts timestamptz, site text, record jsonb) ON COMMIT DELETE ROWS`

const fromStageSQL = `INSERT INTO legacy.readings AS r (unit, ts, site, record)
SELECT unit, ts, NULLIF(site, ''), record FROM readings_stage
ON CONFLICT (unit, ts) DO UPDATE
SET site = EXCLUDED.site, record = EXCLUDED.record, written_at = now()
WHERE r.record IS DISTINCT FROM EXCLUDED.record`

// writeCopy is the COPY + INSERT … SELECT alternative to Write.
func (s *Store) writeCopy(ctx context.Context, recs []telemetry.Record) error {
	b, err := newBatch(recs)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stageSQL); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"readings_stage"}, []string{"unit", "ts", "site", "record"},
			pgx.CopyFromSlice(len(b.units), func(i int) ([]any, error) {
				return []any{b.units[i], b.times[i], b.sites[i], b.recs[i]}, nil
			}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, fromStageSQL)
		return err
	})
}

// writeValues is the multi-row VALUES alternative to Write.
func (s *Store) writeValues(ctx context.Context, recs []telemetry.Record) error {
	b, err := newBatch(recs)
	if err != nil {
		return err
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO legacy.readings AS r (unit, ts, site, record) VALUES `)
	args := make([]any, 0, 4*len(b.units))
	for i := range b.units {
		if i > 0 {
			q.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, NULLIF($%d, ''), $%d::jsonb)", n+1, n+2, n+3, n+4)
		args = append(args, b.units[i], b.times[i], b.sites[i], b.recs[i])
	}
	q.WriteString(` ON CONFLICT (unit, ts) DO UPDATE SET site = EXCLUDED.site, record = EXCLUDED.record, written_at = now() WHERE r.record IS DISTINCT FROM EXCLUDED.record`)
	_, err = s.pool.Exec(ctx, q.String(), args...)
	return err
}

// TestWriteAlternativesAgree keeps the benchmarked alternatives honest: each
// stores the same rows as Write, idempotently.
func TestWriteAlternativesAgree(t *testing.T) {
	ctx := context.Background()
	for name, write := range map[string]func(*Store) func(context.Context, []telemetry.Record) error{
		"copy":   func(s *Store) func(context.Context, []telemetry.Record) error { return s.writeCopy },
		"values": func(s *Store) func(context.Context, []telemetry.Record) error { return s.writeValues },
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			recs := series([]string{"FP2-000001", "FP2-000002"}, t0, time.Second, 30)
			for range 2 {
				if err := write(s)(ctx, append(recs, recs[3])); err != nil {
					t.Fatal(err)
				}
			}
			equalRecords(t, streamAll(t, s, t0, t0.Add(time.Hour), nil), recs)
		})
	}
}

// oneSample returns n one-sample records (gen-1 shaped, the common case),
// all with fresh keys at offset.
func oneSample(n int, offset time.Duration) []telemetry.Record {
	out := make([]telemetry.Record, n)
	for i := range out {
		out[i] = telemetry.Record{
			Unit: fmt.Sprintf("FP1-%06d", i%200), Site: "north-yard", Model: "FlexiPack-100", Schema: "1.0",
			Seq: int64(i), HasSeq: true, TimeMs: t0.Add(offset + time.Duration(i/200)*time.Second).UnixMilli(),
			Has: telemetry.HasSoC | telemetry.HasVoltage | telemetry.HasCurrent,
			SoC: 64.5, Voltage: 798.4, Current: -12.3,
			Temps: []telemetry.Temp{{Sensor: "cell_max", C: 31.2}, {Sensor: "cell_min", C: 29.8}},
			Mode:  "discharging",
		}
	}
	return out
}

func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{500, 5000} {
		for _, impl := range []struct {
			name  string
			write func(*Store) func(context.Context, []telemetry.Record) error
		}{
			{"unnest", func(s *Store) func(context.Context, []telemetry.Record) error { return s.Write }},
			{"copy", func(s *Store) func(context.Context, []telemetry.Record) error { return s.writeCopy }},
			{"values", func(s *Store) func(context.Context, []telemetry.Record) error { return s.writeValues }},
		} {
			b.Run(fmt.Sprintf("%s/batch=%d", impl.name, size), func(b *testing.B) {
				s := openStore(b)
				write := impl.write(s)
				// Warm the connection (prepared statements, temp table).
				if err := write(ctx, oneSample(size, -time.Hour)); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					recs := oneSample(size, time.Duration(i)*time.Hour)
					b.StartTimer()
					if err := write(ctx, recs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkRedelivery measures Write when every record is already stored
// (a redelivered batch): the conflict path.
func BenchmarkRedelivery(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	recs := oneSample(5000, 0)
	if err := s.Write(ctx, recs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(5000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWriteInterleaved runs the three write paths in turn in every
// iteration (each into its own fresh database, rotating who goes first) and
// reports each one's throughput and its ratio to unnest, so that load from
// other processes on a shared machine hits all three alike.
//
// Run: go test ./shared/legacy -run '^$' -bench BenchmarkWriteInterleaved -benchtime 20x
func BenchmarkWriteInterleaved(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{500, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			type path struct {
				name  string
				write func(context.Context, []telemetry.Record) error
				took  time.Duration
			}
			u, c, v := openStore(b), openStore(b), openStore(b)
			paths := []*path{{name: "unnest", write: u.Write}, {name: "copy", write: c.writeCopy}, {name: "values", write: v.writeValues}}
			for _, p := range paths {
				if err := p.write(ctx, oneSample(size, -time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				recs := oneSample(size, time.Duration(i)*time.Hour)
				for j := range paths {
					p := paths[(i+j)%len(paths)]
					start := time.Now()
					if err := p.write(ctx, recs); err != nil {
						b.Fatal(err)
					}
					p.took += time.Since(start)
				}
			}
			for _, p := range paths {
				b.ReportMetric(float64(size)*float64(b.N)/p.took.Seconds(), p.name+"-records/s")
				if p.name != "unnest" {
					b.ReportMetric(paths[0].took.Seconds()/p.took.Seconds(), p.name+"/unnest")
				}
			}
		})
	}
}
