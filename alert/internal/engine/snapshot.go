package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/flexipack/cutover/alert/internal/rules"
)

// Window snapshots: a unit's aggregate windows in a compact binary form,
// so that a restart resumes a rolling aggregate where it stopped instead
// of refilling it from the stream.
//
// Layout: a version byte, then per aggregate rule with samples:
// uvarint name length, name, varint base (ms), uvarint sample count, and
// count × (int32 dt, float32 value), little-endian: 8 bytes a sample,
// as in memory. Windows are keyed by rule name, so a restart with rules
// reordered, added or removed restores the windows of the rules that kept
// their name and kind.
const snapshotVersion = 1

// appendWindows appends u's windows to dst; it returns dst unchanged when
// u holds no samples.
func (e *Engine) appendWindows(dst []byte, u *unitState) []byte {
	start := len(dst)
	for i, rule := range e.set.Rules {
		w := u.slots[i].win
		if rule.Kind != rules.KindAggregate || w == nil || len(w.s) == 0 {
			continue
		}
		if len(dst) == start {
			dst = append(dst, snapshotVersion)
		}
		dst = binary.AppendUvarint(dst, uint64(len(rule.Name)))
		dst = append(dst, rule.Name...)
		dst = binary.AppendVarint(dst, w.base)
		dst = binary.AppendUvarint(dst, uint64(len(w.s)))
		p := len(dst)
		dst = slices.Grow(dst, 8*len(w.s))[:p+8*len(w.s)]
		for _, x := range w.s {
			binary.LittleEndian.PutUint32(dst[p:], uint32(x.dt))
			binary.LittleEndian.PutUint32(dst[p+4:], math.Float32bits(x.v))
			p += 8
		}
	}
	return dst
}

// windowsSize bounds what appendWindows writes for units.
func (e *Engine) windowsSize(units []*unitState) int {
	n := 0
	for _, u := range units {
		for i, rule := range e.set.Rules {
			if w := u.slots[i].win; rule.Kind == rules.KindAggregate && w != nil && len(w.s) > 0 {
				n += 1 + binary.MaxVarintLen64*3 + len(rule.Name) + 8*len(w.s)
			}
		}
	}
	return n
}

var errTruncated = errors.New("truncated")

// restoreWindows loads a snapshot written by appendWindows into u. A
// window of a rule no longer defined (or no longer an aggregate) is
// skipped; a malformed snapshot is an error and leaves u's windows empty.
func (e *Engine) restoreWindows(u *unitState, b []byte, idx map[string]int) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != snapshotVersion {
		return fmt.Errorf("window snapshot version %d, want %d", b[0], snapshotVersion)
	}
	wins := map[int]*window{}
	for p := 1; p < len(b); {
		name, base, samples, next, err := readWindow(b, p)
		if err != nil {
			return fmt.Errorf("window snapshot at byte %d: %w", p, err)
		}
		p = next
		i, ok := idx[name]
		if !ok || e.set.Rules[i].Kind != rules.KindAggregate {
			continue
		}
		w := &window{base: base, s: samples}
		for j := 1; j < len(w.s); j++ {
			if w.s[j].dt <= w.s[j-1].dt {
				return fmt.Errorf("window snapshot of rule %s: samples out of order", name)
			}
		}
		wins[i] = w
	}
	for i, w := range wins {
		u.slots[i].win = w
	}
	return nil
}

func readWindow(b []byte, p int) (name string, base int64, s []sample, next int, err error) {
	n, k := binary.Uvarint(b[p:])
	if k <= 0 || n > uint64(len(b)-p-k) {
		return "", 0, nil, 0, fmt.Errorf("rule name: %w", errTruncated)
	}
	p += k
	name = string(b[p : p+int(n)])
	p += int(n)
	base, k = binary.Varint(b[p:])
	if k <= 0 {
		return "", 0, nil, 0, fmt.Errorf("window %s base: %w", name, errTruncated)
	}
	p += k
	cnt, k := binary.Uvarint(b[p:])
	if k <= 0 {
		return "", 0, nil, 0, fmt.Errorf("window %s sample count: %w", name, errTruncated)
	}
	p += k
	if cnt > rules.MaxWindowPoints {
		return "", 0, nil, 0, fmt.Errorf("window %s: %d samples, more than the %d a window holds", name, cnt, rules.MaxWindowPoints)
	}
	if uint64(len(b)-p) < cnt*8 {
		return "", 0, nil, 0, fmt.Errorf("window %s samples: %w", name, errTruncated)
	}
	s = make([]sample, cnt)
	for j := range s {
		s[j] = sample{dt: int32(binary.LittleEndian.Uint32(b[p:])), v: math.Float32frombits(binary.LittleEndian.Uint32(b[p+4:]))}
		p += 8
	}
	return name, base, s, p, nil
}
