package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// DefaultAnswerTolerance is the relative difference two numbers of an API
// answer may have: the same as Shadow's default for averages (float sums
// in another order). Raw values are rounded to 6 significant digits by the
// codec, so they agree exactly or differ by far more.
const DefaultAnswerTolerance = 1e-9

// AnswerDiff is where two JSON answers to the same request first differ:
// the JSON path of the differing value (e.g. "readings[3].soc_pct"), and
// the smallest enclosing record of each answer (the list element it is
// in, or the whole value), as JSON; "" where one answer has none.
type AnswerDiff struct {
	Path   string `json:"path"`
	First  string `json:"first"`
	Second string `json:"second"`
}

// CompareAnswers compares two JSON documents with the normalisation verify
// uses: object keys in any order, numbers equal within tol relative
// difference (-0 equals 0), lists in order. It returns the first difference
// in document order, or nil when they agree.
func CompareAnswers(first, second []byte, tol float64) (*AnswerDiff, error) {
	a, err := decodeAnswer(first)
	if err != nil {
		return nil, fmt.Errorf("compare answers: first: %w", err)
	}
	b, err := decodeAnswer(second)
	if err != nil {
		return nil, fmt.Errorf("compare answers: second: %w", err)
	}
	var d *AnswerDiff
	walkAnswer("", a, b, a, b, tol, &d)
	return d, nil
}

func decodeAnswer(p []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// walkAnswer compares a and b at path; ra and rb are the innermost list
// elements (records) enclosing them.
func walkAnswer(path string, a, b, ra, rb any, tol float64, d **AnswerDiff) {
	if *d != nil {
		return
	}
	differ := func() { *d = &AnswerDiff{Path: path, First: render(ra), Second: render(rb)} }
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			differ()
			return
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			x, xok := av[k]
			y, yok := bv[k]
			if xok != yok {
				*d = &AnswerDiff{Path: join(path, k), First: render(ra), Second: render(rb)}
				return
			}
			walkAnswer(join(path, k), x, y, ra, rb, tol, d)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			differ()
			return
		}
		for i := 0; i < max(len(av), len(bv)); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			if i >= len(av) || i >= len(bv) {
				var x, y any
				if i < len(av) {
					x = av[i]
				}
				if i < len(bv) {
					y = bv[i]
				}
				*d = &AnswerDiff{Path: p, First: render(x), Second: render(y)}
				return
			}
			walkAnswer(p, av[i], bv[i], av[i], bv[i], tol, d)
		}
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok || !numbersAgree(av, bv, tol) {
			differ()
		}
	default:
		if a != b {
			differ()
		}
	}
}

func numbersAgree(a, b json.Number, tol float64) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(string(a), 64)
	y, err2 := strconv.ParseFloat(string(b), 64)
	return err1 == nil && err2 == nil && near(x, y, tol)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// render returns v as compact JSON, "" for nil (no such element).
func render(v any) string {
	if v == nil {
		return ""
	}
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(p)
}
