package snapshot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Damage kinds, as the contract names what a reader must report.
const (
	// KindIncomplete is a snapshot folder without a manifest: never
	// replayed, and not a failure (the backup job may still be uploading).
	KindIncomplete = "incomplete-snapshot"
	// KindInvalidManifest is a manifest that cannot be parsed or breaks
	// the contract: the whole snapshot is skipped.
	KindInvalidManifest = "invalid-manifest"
	// KindCorruptPart is a part whose size or sha256 disagrees with the
	// manifest, that is not valid gzip, or that ends early: skipped whole.
	KindCorruptPart = "corrupt-part"
	// KindBadLine is a line that is not a valid record: skipped.
	KindBadLine = "bad-line"
	// KindOutOfRange is a record outside the manifest's [from, to): skipped.
	KindOutOfRange = "out-of-range"
	// KindRecordCount is a part whose line count disagrees with the
	// manifest while its bytes match: its records are used; reported only.
	KindRecordCount = "record-count-mismatch"
)

// Damage is one problem found in the snapshots.
type Damage struct {
	Kind     string `json:"kind"`
	Snapshot string `json:"snapshot"`
	Part     string `json:"part,omitempty"`
	Line     int64  `json:"line,omitempty"`
	Reason   string `json:"reason"`
	// Skipped says whether readings were skipped because of it; a run that
	// skipped anything ends with a failing exit status.
	Skipped bool `json:"skipped"`
}

// String formats the damage for logs and tables.
func (d Damage) String() string {
	var b strings.Builder
	b.WriteString(d.Kind)
	b.WriteString(" ")
	b.WriteString(d.Snapshot)
	if d.Part != "" {
		b.WriteString("/" + d.Part)
	}
	if d.Line > 0 {
		fmt.Fprintf(&b, " line %d", d.Line)
	}
	b.WriteString(": " + d.Reason)
	return b.String()
}

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// TempDir holds a part while it is verified (default os.TempDir()).
	TempDir string
}

// Reader finds complete snapshots under a prefix and reads their parts,
// verifying each part before any of its records count.
type Reader struct {
	store  Store
	prefix string
	opts   ReaderOptions
}

// NewReader reads the snapshots under prefix in store.
func NewReader(store Store, prefix string, opts ReaderOptions) *Reader {
	return &Reader{store: store, prefix: strings.Trim(prefix, "/"), opts: opts}
}

// Snapshots returns the manifests of the complete, valid snapshots, oldest
// first, and the damage found: folders without a manifest, and manifests
// that cannot be used.
func (r *Reader) Snapshots(ctx context.Context) ([]Manifest, []Damage, error) {
	listPrefix := ""
	if r.prefix != "" {
		listPrefix = r.prefix + "/"
	}
	keys, err := r.store.List(ctx, listPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	hasManifest := map[string]bool{}
	var ids []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, listPrefix)
		id, file, ok := strings.Cut(rest, "/")
		if !ok {
			continue // an object directly under the prefix is no snapshot
		}
		if _, err := time.Parse(IDLayout, id); err != nil {
			continue // a folder not named like a snapshot is not ours
		}
		if _, seen := hasManifest[id]; !seen {
			ids = append(ids, id)
			hasManifest[id] = false
		}
		if file == ManifestName {
			hasManifest[id] = true
		}
	}
	sort.Strings(ids)
	var out []Manifest
	var damage []Damage
	for _, id := range ids {
		if !hasManifest[id] {
			damage = append(damage, Damage{Kind: KindIncomplete, Snapshot: id, Reason: "no " + ManifestName + " (backup unfinished); ignored"})
			continue
		}
		m, err := r.manifest(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			damage = append(damage, Damage{Kind: KindInvalidManifest, Snapshot: id, Reason: err.Error(), Skipped: true})
			continue
		}
		out = append(out, m)
	}
	return out, damage, nil
}

func (r *Reader) manifest(ctx context.Context, id string) (Manifest, error) {
	key := ManifestKey(r.prefix, id)
	rc, _, err := r.store.Get(ctx, key)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return Manifest{}, fmt.Errorf("read %s: %w", key, err)
	}
	m, err := ParseManifest(key, data)
	if err != nil {
		return Manifest{}, err
	}
	if m.SnapshotID != id {
		return Manifest{}, fmt.Errorf("%s: %w: snapshot_id %q differs from its folder %q", key, ErrInvalidManifest, m.SnapshotID, id)
	}
	return m, nil
}

// PartStats says what reading one part produced.
type PartStats struct {
	Lines      int64 // lines in the part
	Records    int64 // records passed to the callback
	BadLines   int64
	OutOfRange int64
	Corrupt    bool // the part was skipped whole
}

// maxLine bounds one line: a record is far smaller than a message.
const maxLine = telemetry.MaxMessageBytes

// ReadPart verifies part p of snapshot m and calls fn for each valid record
// in the manifest's [from, to), with its 1-based line number. The part is
// first copied to a temporary file while its size and sha256 are computed,
// and decompressed once to check that it is whole; only a part that passes
// reaches fn, so a corrupt part contributes no record. Damage goes to
// report; the error is for failures that are not the snapshot's fault
// (store unreachable, ctx ended, fn's error).
func (r *Reader) ReadPart(ctx context.Context, m *Manifest, p Part, fn func(rec *telemetry.Record, line int64) error, report func(Damage)) (PartStats, error) {
	var st PartStats
	corrupt := func(format string, args ...any) (PartStats, error) {
		st.Corrupt = true
		report(Damage{Kind: KindCorruptPart, Snapshot: m.SnapshotID, Part: p.Key, Reason: fmt.Sprintf(format, args...) + "; part skipped", Skipped: true})
		return st, nil
	}
	key := PartKey(r.prefix, m.SnapshotID, p.Key)
	f, damaged, err := r.fetch(ctx, key, p)
	if f != nil {
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
	}
	if err != nil {
		return st, err
	}
	if damaged != "" {
		return corrupt("%s", damaged)
	}
	// Pass 1: the whole stream must decompress before any record counts.
	lines, err := countLines(ctx, f)
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	if err != nil {
		return corrupt("%v", err)
	}
	if lines != p.Records {
		report(Damage{Kind: KindRecordCount, Snapshot: m.SnapshotID, Part: p.Key,
			Reason: fmt.Sprintf("%d lines, manifest says %d; records used", lines, p.Records)})
	}
	// Pass 2: decode.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return st, fmt.Errorf("read part %s: %w", key, err)
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		return corrupt("not valid gzip: %v", err)
	}
	defer gz.Close()
	err = decodeLines(ctx, m, p, key, bufio.NewReaderSize(gz, 256<<10), fn, report, &st)
	return st, err
}

// fetch copies part p to a temporary file (the caller removes it) while
// checking its size and sha256 against the manifest. damaged says why the
// part is unusable; err is for failures that are not the part's fault.
func (r *Reader) fetch(ctx context.Context, key string, p Part) (f *os.File, damaged string, err error) {
	rc, size, err := r.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, "missing from the store", nil
	}
	if errors.Is(err, ErrNotRegular) {
		return nil, err.Error(), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read part %s: %w", key, err)
	}
	defer rc.Close()
	if size >= 0 && size != p.Bytes {
		return nil, fmt.Sprintf("size %d bytes, manifest says %d", size, p.Bytes), nil
	}
	f, err = os.CreateTemp(r.opts.TempDir, "snapshot-verify-*.gz")
	if err != nil {
		return nil, "", fmt.Errorf("read part %s: %w", key, err)
	}
	sum := sha256.New()
	// Never more than the manifest's size + 1 byte: a part that grew (or a
	// store that did not say its size) cannot fill the disk.
	n, err := io.Copy(io.MultiWriter(f, sum), ctxReader{ctx, io.LimitReader(rc, p.Bytes+1)})
	if err != nil {
		return f, "", fmt.Errorf("read part %s: %w", key, err)
	}
	if n != p.Bytes {
		if n > p.Bytes {
			return f, fmt.Sprintf("larger than the %d bytes the manifest says", p.Bytes), nil
		}
		return f, fmt.Sprintf("size %d bytes, manifest says %d", n, p.Bytes), nil
	}
	if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, p.SHA256) {
		return f, fmt.Sprintf("sha256 %s, manifest says %s", got, p.SHA256), nil
	}
	return f, "", nil
}

// decodeLines decodes a verified part's lines and calls fn for each valid
// record in the manifest's range; bad lines and readings out of range go
// to report.
func decodeLines(ctx context.Context, m *Manifest, p Part, key string, br *bufio.Reader, fn func(rec *telemetry.Record, line int64) error, report func(Damage), st *PartStats) error {
	dec := telemetry.NewDecoder()
	bad := func(line int64, format string, args ...any) {
		report(Damage{Kind: KindBadLine, Snapshot: m.SnapshotID, Part: p.Key, Line: line, Reason: fmt.Sprintf(format, args...), Skipped: true})
	}
	var long []byte
	for lineNo := int64(1); ; lineNo++ {
		if lineNo%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, tooLong, err := readLine(br, &long)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read part %s line %d: %w", key, lineNo, err)
		}
		st.Lines++
		if tooLong {
			st.BadLines++
			bad(lineNo, "line longer than %d bytes", maxLine)
			continue
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		rec, err := dec.DecodeJSON(line)
		if err != nil {
			st.BadLines++
			bad(lineNo, "%v", err)
			continue
		}
		if !m.Contains(rec.Time()) {
			st.OutOfRange++
			report(Damage{Kind: KindOutOfRange, Snapshot: m.SnapshotID, Part: p.Key, Line: lineNo, Skipped: true,
				Reason: fmt.Sprintf("reading (%s, %s) outside the manifest's [%s, %s); skipped", rec.Unit,
					rec.Time().Format("2006-01-02T15:04:05.000Z"), m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))})
			continue
		}
		st.Records++
		if err := fn(&rec, lineNo); err != nil {
			return err
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxLine is consumed and reported as tooLong. At the end of the stream a
// final line without a newline is returned before io.EOF.
func readLine(br *bufio.Reader, long *[]byte) (line []byte, tooLong bool, err error) {
	b, err := br.ReadSlice('\n')
	if err == nil {
		return b[:len(b)-1], false, nil
	}
	if errors.Is(err, io.EOF) {
		if len(b) == 0 {
			return nil, false, io.EOF
		}
		return b, false, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, err
	}
	*long = append((*long)[:0], b...)
	for {
		b, err = br.ReadSlice('\n')
		if len(*long) <= maxLine {
			*long = append(*long, b...)
		}
		switch {
		case err == nil:
			l := *long
			l = l[:len(l)-1]
			return l, len(l) > maxLine, nil
		case errors.Is(err, io.EOF):
			return *long, len(*long) > maxLine, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, false, err
		}
	}
}

// countLines decompresses f from its start and counts its lines; an error
// means f is not a whole gzip stream.
func countLines(ctx context.Context, f *os.File) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return 0, fmt.Errorf("not valid gzip: %w", err)
	}
	defer gz.Close()
	buf := make([]byte, 256<<10)
	var lines int64
	last := byte('\n')
	for i := 0; ; i++ {
		if i%64 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		n, err := gz.Read(buf)
		if n > 0 {
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			last = buf[n-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, errors.New("gzip stream ends early (truncated)")
		}
		if err != nil {
			return 0, fmt.Errorf("not valid gzip: %w", err)
		}
	}
	if last != '\n' {
		lines++
	}
	return lines, nil
}
