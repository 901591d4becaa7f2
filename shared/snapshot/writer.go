package snapshot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// DefaultPartRecords is how many records a part holds before the writer
// starts the next one.
const DefaultPartRecords = 500_000

// WriterOptions tune a Writer. Zero values mean the defaults.
type WriterOptions struct {
	// PartRecords is the most records per part (default DefaultPartRecords).
	PartRecords int64
	// TempDir holds the part being written (default os.TempDir()).
	TempDir string
	// Now is the clock for the manifest's created_at (default time.Now).
	Now func() time.Time
}

// Writer writes one snapshot: records go, gzip'd, into a part spooled to a
// temporary file while its size and sha256 are computed; a full part is
// uploaded (multipart when large) and the next begins; Close uploads the
// last part and then the manifest, so the snapshot becomes visible to
// readers only once complete. Memory stays bounded whatever the size.
type Writer struct {
	store  Store
	prefix string
	m      Manifest
	opts   WriterOptions

	cur    *partFile
	line   []byte
	closed bool
}

type partFile struct {
	f       *os.File
	counter *countingWriter
	sum     hash.Hash
	gz      *gzip.Writer
	bw      *bufio.Writer
	records int64
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewWriter starts snapshot id under prefix in store, covering [from, to).
func NewWriter(store Store, prefix, id string, from, to time.Time, opts WriterOptions) (*Writer, error) {
	if opts.PartRecords <= 0 {
		opts.PartRecords = DefaultPartRecords
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := Manifest{SnapshotID: id, From: from.UTC(), To: to.UTC(), Format: Format, Parts: []Part{}}
	// Validate everything but the parts up front: a bad id or range is
	// better refused before hours of export.
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("new snapshot: %w", err)
	}
	return &Writer{store: store, prefix: prefix, m: m, opts: opts}, nil
}

// ID returns the snapshot's id.
func (w *Writer) ID() string { return w.m.SnapshotID }

// Add appends a record. A record outside the snapshot's [from, to) is
// refused: readers would report and skip it.
func (w *Writer) Add(ctx context.Context, rec *telemetry.Record) error {
	if !w.m.Contains(rec.Time()) {
		return fmt.Errorf("snapshot %s: record (%s, %s) lies outside [%s, %s)", w.m.SnapshotID, rec.Unit,
			rec.Time().Format(time.RFC3339Nano), w.m.From.Format(time.RFC3339), w.m.To.Format(time.RFC3339))
	}
	w.line = telemetry.AppendJSON(w.line[:0], rec)
	return w.AddLine(ctx, w.line)
}

// AddLine appends one line as is (without its newline). It is for tools and
// tests that need lines Add would refuse; Add is the normal way in.
func (w *Writer) AddLine(ctx context.Context, line []byte) error {
	if w.closed {
		return errors.New("snapshot writer: closed")
	}
	if w.cur == nil {
		if err := w.startPart(); err != nil {
			return err
		}
	}
	if _, err := w.cur.bw.Write(line); err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	if err := w.cur.bw.WriteByte('\n'); err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	w.cur.records++
	if w.cur.records >= w.opts.PartRecords {
		return w.finishPart(ctx)
	}
	return nil
}

func (w *Writer) startPart() error {
	f, err := os.CreateTemp(w.opts.TempDir, "snapshot-part-*.jsonl.gz")
	if err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	p := &partFile{f: f, sum: sha256.New()}
	p.counter = &countingWriter{w: io.MultiWriter(f, p.sum)}
	p.gz = gzip.NewWriter(p.counter)
	p.bw = bufio.NewWriterSize(p.gz, 256<<10)
	w.cur = p
	return nil
}

func (w *Writer) finishPart(ctx context.Context) error {
	p := w.cur
	w.cur = nil
	defer func() {
		p.f.Close()
		os.Remove(p.f.Name())
	}()
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	if err := p.gz.Close(); err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("snapshot %s: spool part: %w", w.m.SnapshotID, err)
	}
	part := Part{
		Key:     fmt.Sprintf("part-%05d.jsonl.gz", len(w.m.Parts)),
		Records: p.records,
		Bytes:   p.counter.n,
		SHA256:  hex.EncodeToString(p.sum.Sum(nil)),
	}
	if err := w.store.Put(ctx, PartKey(w.prefix, w.m.SnapshotID, part.Key), p.f); err != nil {
		return fmt.Errorf("snapshot %s: upload %s: %w", w.m.SnapshotID, part.Key, err)
	}
	w.m.Parts = append(w.m.Parts, part)
	w.m.Records += part.Records
	return nil
}

// Close uploads the last part and then the manifest, and returns the
// manifest. A snapshot with no records has a manifest with no parts.
func (w *Writer) Close(ctx context.Context) (Manifest, error) {
	if w.closed {
		return Manifest{}, errors.New("snapshot writer: closed twice")
	}
	if w.cur != nil && w.cur.records > 0 {
		if err := w.finishPart(ctx); err != nil {
			w.Abort()
			return Manifest{}, err
		}
	}
	w.closed = true
	w.m.CreatedAt = w.opts.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("snapshot %s: manifest: %w", w.m.SnapshotID, err)
	}
	if err := w.store.Put(ctx, ManifestKey(w.prefix, w.m.SnapshotID), bytes.NewReader(data)); err != nil {
		return Manifest{}, fmt.Errorf("snapshot %s: upload manifest: %w", w.m.SnapshotID, err)
	}
	return w.m, nil
}

// Abort drops the part being written; uploaded parts stay, and without a
// manifest readers ignore them as an incomplete snapshot.
func (w *Writer) Abort() {
	if w.cur != nil {
		w.cur.f.Close()
		os.Remove(w.cur.f.Name())
		w.cur = nil
	}
	w.closed = true
}
