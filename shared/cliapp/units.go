package cliapp

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Flag names of the unit selection UnitFlags declares.
const (
	FlagUnits     = "units"
	FlagUnit      = "unit"
	FlagUnitsFile = "units-file"
)

// maxUnitsFile bounds a --units-file.
const maxUnitsFile = 16 << 20

// literalList is a repeatable flag value kept exactly as given: no comma
// splitting, no trimming, so a unit id holding a comma can be chosen.
type literalList struct{ v []string }

func (l *literalList) Set(s string) error { l.v = append(l.v, s); return nil }
func (l *literalList) String() string     { return strings.Join(l.v, "\n") }

// UnitFlags select units three ways, all combinable: --units (comma-separated,
// repeatable), --unit (repeatable, one id each, taken literally: for ids
// holding commas) and --units-file (one id per line, # comments and blank
// lines ignored, the line taken literally).
func UnitFlags(category, usage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: FlagUnits, Usage: usage + " (comma-separated or repeated)", Category: category},
		&cli.GenericFlag{Name: FlagUnit, Value: &literalList{}, Usage: "one unit id, taken literally (repeat it; for ids holding a comma)", Category: category},
		&cli.StringFlag{Name: FlagUnitsFile, Usage: "file with one unit id per line, taken literally (# comments and blank lines ignored)", Category: category},
	}
}

// Units returns the units UnitFlags selected, in order, without duplicates;
// nil means every unit.
func Units(c *cli.Context) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, v := range c.StringSlice(FlagUnits) {
		for _, u := range strings.Split(v, ",") {
			add(strings.TrimSpace(u))
		}
	}
	if l, ok := c.Generic(FlagUnit).(*literalList); ok {
		for _, u := range l.v {
			add(u)
		}
	}
	if path := c.String(FlagUnitsFile); path != "" {
		us, err := readUnitsFile(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", FlagUnitsFile, err)
		}
		for _, u := range us {
			add(u)
		}
	}
	return out, nil
}

func readUnitsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxUnitsFile+1))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var out []string
	read := 0
	for n := 1; sc.Scan(); n++ {
		read += len(sc.Bytes()) + 1
		if read > maxUnitsFile {
			return nil, fmt.Errorf("%s: larger than %d MiB", path, maxUnitsFile>>20)
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
