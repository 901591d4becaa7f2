// Package spill de-duplicates readings of any volume in bounded memory: an
// external merge sort on (unit, time). Entries are collected in a
// fixed-size in-memory chunk; a full chunk is sorted and written to a
// temporary run file; iteration merges the runs and yields each (unit,
// time) once, so overlapping snapshots and repeated lines count one reading.
package spill

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// DefaultChunkBytes is the memory one in-memory chunk may use.
const DefaultChunkBytes = 16 << 20

// maxFanIn bounds how many runs one merge reads at a time (open files,
// read buffers); more runs are first merged into fewer.
const maxFanIn = 64

// entSize approximates the memory of one ent for the chunk budget.
const entSize = 32

// Entry is one reading as the sorter yields it. Unit and Payload are valid
// only until the iteration callback returns.
type Entry struct {
	Unit   []byte
	TimeMs int64
	// Ord orders the copies of a reading: the copy with the highest Ord
	// is the one yielded (callers pass a counter that grows with the
	// snapshot's age, so the newest snapshot wins).
	Ord uint64
	// Payload is what was added with the key (AppendRecord's form, for
	// backfill).
	Payload []byte
}

type ent struct {
	off     int
	unitLen uint32
	lineLen uint32
	timeMs  int64
	ord     uint64
}

// Sorter collects entries and yields them sorted by (unit, time), one per
// key. It is not safe for concurrent use.
type Sorter struct {
	dir        string
	chunkBytes int

	arena []byte
	ents  []ent
	runs  []string
	added int64

	finished bool
}

// New returns a sorter that spills to temporary files in dir ("" means
// os.TempDir()) and keeps chunks of chunkBytes (<= 0 means the default).
func New(dir string, chunkBytes int) *Sorter {
	if chunkBytes <= 0 {
		chunkBytes = DefaultChunkBytes
	}
	return &Sorter{dir: dir, chunkBytes: chunkBytes}
}

// Add records one reading; unit and payload are copied. The chunk's
// buffers grow by doubling but never past the chunk size: a full chunk is
// spilled instead, so memory stays at about chunkBytes.
func (s *Sorter) Add(unit []byte, timeMs int64, ord uint64, payload []byte) error {
	if s.finished {
		return errors.New("spill: add after iterate")
	}
	need := len(unit) + len(payload)
	if len(s.arena)+need > cap(s.arena) || len(s.ents) == cap(s.ents) {
		if err := s.grow(need); err != nil {
			return err
		}
	}
	off := len(s.arena)
	s.arena = append(s.arena, unit...)
	s.arena = append(s.arena, payload...)
	s.ents = append(s.ents, ent{off: off, unitLen: uint32(len(unit)), lineLen: uint32(len(payload)), timeMs: timeMs, ord: ord})
	s.added++
	return nil
}

// grow makes room for one more entry of need bytes: doubling the buffers
// while they are under budget, spilling the chunk once they are at it.
func (s *Sorter) grow(need int) error {
	arenaMax := s.chunkBytes * 4 / 5
	entsMax := max(s.chunkBytes/5/entSize, 1)
	if len(s.ents) > 0 && (len(s.arena)+need > arenaMax || len(s.ents) >= entsMax) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if len(s.arena)+need > cap(s.arena) {
		n := min(max(2*cap(s.arena), 64<<10, need), max(arenaMax, need))
		s.arena = append(make([]byte, 0, n), s.arena...)
	}
	if len(s.ents) == cap(s.ents) {
		n := min(max(2*cap(s.ents), 1024), entsMax)
		s.ents = append(make([]ent, 0, n), s.ents...)
	}
	return nil
}

// Added returns how many entries were added, duplicates included.
func (s *Sorter) Added() int64 { return s.added }

// Runs returns how many run files were spilled.
func (s *Sorter) Runs() int { return len(s.runs) }

func (s *Sorter) unit(e *ent) []byte { return s.arena[e.off : e.off+int(e.unitLen)] }
func (s *Sorter) line(e *ent) []byte {
	return s.arena[e.off+int(e.unitLen) : e.off+int(e.unitLen)+int(e.lineLen)]
}

func compareKey(ua []byte, ta int64, oa uint64, ub []byte, tb int64, ob uint64) int {
	if c := bytes.Compare(ua, ub); c != 0 {
		return c
	}
	switch {
	case ta < tb:
		return -1
	case ta > tb:
		return 1
	case oa > ob: // highest ord first
		return -1
	case oa < ob:
		return 1
	}
	return 0
}

func (s *Sorter) sortChunk() {
	slices.SortFunc(s.ents, func(a, b ent) int {
		return compareKey(s.unit(&a), a.timeMs, a.ord, s.unit(&b), b.timeMs, b.ord)
	})
}

// flush sorts the chunk and writes it, de-duplicated, to a new run file.
func (s *Sorter) flush() error {
	if len(s.ents) == 0 {
		return nil
	}
	s.sortChunk()
	w, err := newRunWriter(s.dir)
	if err != nil {
		return err
	}
	var prevUnit []byte
	var prevTime int64
	for i := range s.ents {
		e := &s.ents[i]
		u := s.unit(e)
		if i > 0 && e.timeMs == prevTime && bytes.Equal(u, prevUnit) {
			continue
		}
		prevUnit, prevTime = u, e.timeMs
		if err := w.write(u, e.timeMs, e.ord, s.line(e)); err != nil {
			w.abort()
			return err
		}
	}
	name, err := w.close()
	if err != nil {
		return err
	}
	s.runs = append(s.runs, name)
	s.arena = s.arena[:0]
	s.ents = s.ents[:0]
	return nil
}

// finish ends collection: a sorter that spilled writes its last chunk out
// and merges runs down to maxFanIn; one that did not keeps its chunk in
// memory, sorted.
func (s *Sorter) finish() error {
	if s.finished {
		return nil
	}
	s.finished = true
	if len(s.runs) == 0 {
		s.sortChunk()
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.arena, s.ents = nil, nil
	for len(s.runs) > maxFanIn {
		group := s.runs[:maxFanIn]
		w, err := newRunWriter(s.dir)
		if err != nil {
			return err
		}
		err = mergeRuns(group, func(e *Entry) error { return w.write(e.Unit, e.TimeMs, e.Ord, e.Payload) })
		if err != nil {
			w.abort()
			return err
		}
		name, err := w.close()
		if err != nil {
			return err
		}
		for _, r := range group {
			os.Remove(r)
		}
		s.runs = append(s.runs[maxFanIn:], name)
	}
	return nil
}

// Iterate ends collection (no Add afterwards) and calls fn for each
// distinct (unit, time) in order, with its highest-Ord copy. It may be
// called more than once. An error from fn stops it and is returned.
func (s *Sorter) Iterate(fn func(e *Entry) error) error {
	if err := s.finish(); err != nil {
		return err
	}
	if len(s.runs) == 0 {
		var e Entry
		for i := range s.ents {
			x := &s.ents[i]
			u := s.unit(x)
			if i > 0 && x.timeMs == e.TimeMs && bytes.Equal(u, e.Unit) {
				continue
			}
			e = Entry{Unit: u, TimeMs: x.timeMs, Ord: x.ord, Payload: s.line(x)}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	}
	return mergeRuns(s.runs, fn)
}

// Close removes the run files.
func (s *Sorter) Close() error {
	var errs []error
	for _, r := range s.runs {
		if err := os.Remove(r); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.runs = nil
	s.arena, s.ents = nil, nil
	return errors.Join(errs...)
}

// Run file record: uvarint unit length, unit, int64 time, uint64 ord,
// uvarint line length, line.

type runWriter struct {
	f   *os.File
	bw  *bufio.Writer
	hdr []byte
}

func newRunWriter(dir string) (*runWriter, error) {
	f, err := os.CreateTemp(dir, "backfill-spill-*.run")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	return &runWriter{f: f, bw: bufio.NewWriterSize(f, 256<<10), hdr: make([]byte, 0, 32)}, nil
}

func (w *runWriter) write(unit []byte, timeMs int64, ord uint64, line []byte) error {
	h := binary.AppendUvarint(w.hdr[:0], uint64(len(unit)))
	if _, err := w.bw.Write(h); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	if _, err := w.bw.Write(unit); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	h = binary.BigEndian.AppendUint64(w.hdr[:0], uint64(timeMs))
	h = binary.BigEndian.AppendUint64(h, ord)
	h = binary.AppendUvarint(h, uint64(len(line)))
	if _, err := w.bw.Write(h); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	if _, err := w.bw.Write(line); err != nil {
		return fmt.Errorf("spill: %w", err)
	}
	return nil
}

func (w *runWriter) close() (string, error) {
	if err := w.bw.Flush(); err != nil {
		w.abort()
		return "", fmt.Errorf("spill: %w", err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return "", fmt.Errorf("spill: %w", err)
	}
	return w.f.Name(), nil
}

func (w *runWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

type runReader struct {
	f   *os.File
	br  *bufio.Reader
	cur Entry
	buf []byte
}

func (r *runReader) next() (bool, error) {
	n, err := binary.ReadUvarint(r.br)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("spill: read %s: %w", r.f.Name(), err)
	}
	var fixed [16]byte
	r.buf = slices.Grow(r.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		return false, fmt.Errorf("spill: read %s: %w", r.f.Name(), err)
	}
	if _, err := io.ReadFull(r.br, fixed[:]); err != nil {
		return false, fmt.Errorf("spill: read %s: %w", r.f.Name(), err)
	}
	ln, err := binary.ReadUvarint(r.br)
	if err != nil {
		return false, fmt.Errorf("spill: read %s: %w", r.f.Name(), err)
	}
	r.buf = slices.Grow(r.buf, int(ln))[:int(n)+int(ln)]
	if _, err := io.ReadFull(r.br, r.buf[n:]); err != nil {
		return false, fmt.Errorf("spill: read %s: %w", r.f.Name(), err)
	}
	r.cur = Entry{Unit: r.buf[:n], TimeMs: int64(binary.BigEndian.Uint64(fixed[:8])), Ord: binary.BigEndian.Uint64(fixed[8:]), Payload: r.buf[n:]}
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	a, b := &h[i].cur, &h[j].cur
	return compareKey(a.Unit, a.TimeMs, a.Ord, b.Unit, b.TimeMs, b.Ord) < 0
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeRuns merges sorted run files and calls fn once per (unit, time),
// with its highest-ord copy.
func mergeRuns(names []string, fn func(e *Entry) error) error {
	h := make(runHeap, 0, len(names))
	defer func() {
		for _, r := range h {
			r.f.Close()
		}
	}()
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		r := &runReader{f: f, br: bufio.NewReaderSize(f, 64<<10)}
		ok, err := r.next()
		if err != nil {
			f.Close()
			return err
		}
		if !ok {
			f.Close()
			continue
		}
		h = append(h, r)
	}
	heap.Init(&h)
	var lastUnit []byte
	var lastTime int64
	have := false
	for len(h) > 0 {
		r := h[0]
		e := &r.cur
		if !have || e.TimeMs != lastTime || !bytes.Equal(e.Unit, lastUnit) {
			if err := fn(e); err != nil {
				return err
			}
			lastUnit = append(lastUnit[:0], e.Unit...)
			lastTime = e.TimeMs
			have = true
		}
		ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			r.f.Close()
			heap.Pop(&h)
		}
	}
	return nil
}
