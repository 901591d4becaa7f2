package api

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/flexipack/cutover/shared/telemetry"
)

// TestRound6MatchesText: the arithmetic round6 gives the double its
// definition gives, on values of every magnitude, means of small integers
// and decimals (which land on halfway points), halfway points and their
// neighbours, powers of ten and the edges of the fast range.
func TestRound6MatchesText(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v float64) {
		t.Helper()
		want := round6Text(v)
		if got := round6(v); math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("round6(%v) = %v, want %v", v, got, want)
		}
		if got, want := appendRound6(nil, v), telemetry.AppendJSONNumber(nil, want); !bytes.Equal(got, want) {
			t.Fatalf("appendRound6(%v) = %s, want %s", v, got, want)
		}
	}
	neighbours := func(v float64) {
		t.Helper()
		check(v)
		check(-v)
		lo, hi := v, v
		for range 3 {
			lo, hi = math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1))
			check(lo)
			check(hi)
		}
	}
	for _, v := range []float64{0, math.Copysign(0, -1), 1e-4, 1e15, 1e-5, 9.99999e-5, 999999.5, 55.23455, 123.4567891, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN()} {
		neighbours(v)
	}
	for e := -8; e <= 18; e++ {
		neighbours(math.Pow(10, float64(e)))
	}
	fast := 0
	for range 2_000_000 {
		var v float64
		switch rng.IntN(5) {
		case 0: // any magnitude
			v = math.Pow(10, rng.Float64()*26-8) * (rng.Float64() + 0.5)
		case 1: // a mean of readings with one decimal
			n := 1 + rng.IntN(200)
			v = float64(rng.IntN(1_000_000*n)) / 10 / float64(n)
		case 2: // a halfway point of 6 digits, scaled (and its neighbours below)
			d := float64(100000+rng.IntN(900000)) + 0.5
			v, _ = strconv.ParseFloat(strconv.FormatFloat(d, 'f', 1, 64)+"e"+strconv.Itoa(rng.IntN(20)-12), 64)
		case 3: // within the 12-digit snap of a halfway point, either side
			d := float64(100000+rng.IntN(900000)) + 0.5 + (rng.Float64()-0.5)*2e-6
			v = d * math.Pow(10, float64(rng.IntN(20)-12))
		default: // a sum of readings with three decimals
			v = float64(rng.Int64N(1e12)-5e11) / 1000
		}
		if _, _, ok := round6Digits(v); ok {
			fast++
		}
		neighbours(v)
	}
	if fast < 1_000_000 {
		t.Fatalf("only %d of 2,000,000 values took the fast path", fast)
	}
}

func FuzzRound6(f *testing.F) {
	for _, v := range []float64{0, 55.23455, 1e-4, 999999.5, 123.4567891, -9.99} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		want := round6Text(v)
		if got := round6(v); math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("round6(%v) = %v, want %v", v, got, want)
		}
		if got, want := appendRound6(nil, v), telemetry.AppendJSONNumber(nil, want); !bytes.Equal(got, want) {
			t.Fatalf("appendRound6(%v) = %s, want %s", v, got, want)
		}
	})
}

func BenchmarkRound6(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	vs := make([]float64, 4096)
	for i := range vs {
		n := 1 + rng.IntN(60)
		vs[i] = float64(rng.IntN(1000*n)) / 10 / float64(n)
	}
	for _, c := range []struct {
		name string
		fn   func(float64) float64
	}{{"text", round6Text}, {"fast", round6}} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				c.fn(vs[i%len(vs)])
			}
		})
	}
	buf := make([]byte, 0, 64)
	b.Run("json/text", func(b *testing.B) {
		for i := range b.N {
			buf = telemetry.AppendJSONNumber(buf[:0], round6Text(vs[i%len(vs)]))
		}
	})
	b.Run("json/fast", func(b *testing.B) {
		for i := range b.N {
			buf = appendRound6(buf[:0], vs[i%len(vs)])
		}
	})
}
