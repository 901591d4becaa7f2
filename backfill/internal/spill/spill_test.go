package spill

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
)

type key struct {
	unit string
	t    int64
}

// TestSorterDedupesAndOrders checks, in memory and spilled (several runs,
// and more runs than one merge reads), that every (unit, time) comes out
// once, in order, with the copy of highest ord.
func TestSorterDedupesAndOrders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		chunkBytes int
		n          int
		wantRuns   bool
	}{
		{"in memory", 0, 5000, false},
		{"spilled", 4 << 10, 5000, true},
		{"more runs than fan-in", 1 << 10, 20000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := New(dir, tc.chunkBytes)
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[key]uint64{}
			for i := 0; i < tc.n; i++ {
				k := key{fmt.Sprintf("U%03d", rng.IntN(40)), int64(rng.IntN(300))}
				ord := uint64(i + 1)
				if ord > want[k] {
					want[k] = ord
				}
				if err := s.Add([]byte(k.unit), k.t, ord, []byte(fmt.Sprintf("line-%d", ord))); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.Runs() > 0; got != tc.wantRuns {
				t.Fatalf("spilled = %v, want %v", got, tc.wantRuns)
			}
			for pass := 0; pass < 2; pass++ {
				var got []key
				err := s.Iterate(func(e *Entry) error {
					k := key{string(e.Unit), e.TimeMs}
					if e.Ord != want[k] {
						return fmt.Errorf("%v: ord %d, want the highest %d", k, e.Ord, want[k])
					}
					if string(e.Payload) != fmt.Sprintf("line-%d", e.Ord) {
						return fmt.Errorf("%v: line %q does not belong to ord %d", k, e.Payload, e.Ord)
					}
					got = append(got, k)
					return nil
				})
				if err != nil {
					t.Fatalf("pass %d: %v", pass, err)
				}
				if len(got) != len(want) {
					t.Fatalf("pass %d: %d entries, want %d distinct", pass, len(got), len(want))
				}
				if !sort.SliceIsSorted(got, func(i, j int) bool {
					return got[i].unit < got[j].unit || got[i].unit == got[j].unit && got[i].t < got[j].t
				}) {
					t.Fatalf("pass %d: not sorted by (unit, time)", pass)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "*"))
			if len(left) != 0 {
				t.Fatalf("files left after Close: %v", left)
			}
		})
	}
}

func TestAddAfterIterateFails(t *testing.T) {
	s := New(t.TempDir(), 0)
	_ = s.Iterate(func(*Entry) error { return nil })
	if err := s.Add([]byte("u"), 1, 1, nil); err == nil {
		t.Fatal("Add after Iterate succeeded")
	}
}

func BenchmarkSorter(b *testing.B) {
	line := make([]byte, 300)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := New(b.TempDir(), 1<<20)
		for j := 0; j < 20000; j++ {
			if err := s.Add([]byte(fmt.Sprintf("U%03d", j%50)), int64(j), uint64(j), line); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Iterate(func(*Entry) error { return nil }); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
