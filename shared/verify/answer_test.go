package verify

import "testing"

func TestCompareAnswers(t *testing.T) {
	cases := []struct {
		name, a, b string
		path       string // "" = agree
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, ""},
		{"within tolerance", `{"m":0.30000000000000004}`, `{"m":0.3}`, ""},
		{"negative zero", `{"m":-0}`, `{"m":0}`, ""},
		{"value differs", `{"readings":[{"t":1,"soc":50},{"t":2,"soc":51}]}`, `{"readings":[{"t":1,"soc":50},{"t":2,"soc":52}]}`, "readings[1].soc"},
		{"missing record", `{"r":[1,2,3]}`, `{"r":[1,2]}`, "r[2]"},
		{"missing key", `{"r":[{"a":1,"b":2}]}`, `{"r":[{"a":1}]}`, "r[0].b"},
		{"type differs", `{"a":"1"}`, `{"a":1}`, "a"},
		{"string differs", `{"a":"x"}`, `{"a":"y"}`, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := CompareAnswers([]byte(c.a), []byte(c.b), DefaultAnswerTolerance)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.path == "" && d != nil:
				t.Fatalf("want agreement, got %+v", d)
			case c.path != "" && d == nil:
				t.Fatalf("want a difference at %s, got agreement", c.path)
			case c.path != "" && d.Path != c.path:
				t.Fatalf("difference at %s, want %s (%+v)", d.Path, c.path, d)
			}
		})
	}
	d, _ := CompareAnswers([]byte(`{"readings":[{"t":2,"soc":51}]}`), []byte(`{"readings":[{"t":2,"soc":52}]}`), 0)
	if d == nil || d.First != `{"soc":51,"t":2}` || d.Second != `{"soc":52,"t":2}` {
		t.Fatalf("want the enclosing records, got %+v", d)
	}
	if _, err := CompareAnswers([]byte(`{`), []byte(`{}`), 0); err == nil {
		t.Fatal("want an error for invalid JSON")
	}
}
