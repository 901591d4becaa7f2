package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// endless is a store whose every part is a stream of zeros of unknown size
// (64 MiB, endless for a part of a few hundred bytes; bounded so that a
// reader without limits fails the test instead of filling the disk). It
// counts the bytes served and calls onRead after each read.
type endless struct {
	snapshot.Store
	served int64
	onRead func()
}

func (e *endless) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if strings.HasSuffix(key, "manifest.json") {
		return e.Store.Get(ctx, key)
	}
	return io.NopCloser(&zeros{e}), -1, nil
}

type zeros struct{ e *endless }

func (z *zeros) Read(p []byte) (int, error) {
	if z.e.served >= 64<<20 {
		return 0, io.EOF
	}
	p = p[:min(len(p), 32<<10)]
	clear(p)
	z.e.served += int64(len(p))
	if z.e.onRead != nil {
		z.e.onRead()
	}
	return len(p), nil
}

// readOne reads part 0 of the only snapshot with temp files in tmp.
func readOne(t *testing.T, ctx context.Context, st snapshot.Store, tmp string) ([]snapshot.Damage, error) {
	t.Helper()
	r := snapshot.NewReader(st, "snaps", snapshot.ReaderOptions{TempDir: tmp})
	ms, damage, err := r.Snapshots(testenv.Context(t, time.Minute))
	if err != nil || len(ms) != 1 {
		t.Fatalf("snapshots = %d, %v", len(ms), err)
	}
	_, err = r.ReadPart(ctx, &ms[0], ms[0].Parts[0], func(*telemetry.Record, int64) error { return nil },
		func(d snapshot.Damage) { damage = append(damage, d) })
	return damage, err
}

func noTempFiles(t *testing.T, tmp string) {
	t.Helper()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
}

func skippedFor(damage []snapshot.Damage, reason string) bool {
	for _, d := range damage {
		if d.Kind == snapshot.KindCorruptPart && d.Skipped && strings.Contains(d.Reason, reason) {
			return true
		}
	}
	return false
}

// A part that is a symlink to /dev/zero, a FIFO, or larger than its
// manifest says is skipped as corrupt without being copied; a part of
// unknown size is read no further than the manifest's size + 1 byte; a
// cancelled read stops at once; no temp file outlives a read.
func TestHostileParts(t *testing.T) {
	t.Run("symlink to /dev/zero", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		st, _ := snapshot.NewDirStore(dir)
		m := writeSnapshot(t, st, "20261120T000000Z", 10, 0)
		part := filepath.Join(dir, "snaps", m.SnapshotID, m.Parts[0].Key)
		if err := os.Remove(part); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", part); err != nil {
			t.Fatal(err)
		}
		damage, err := readOne(t, testenv.Context(t, 10*time.Second), st, tmp)
		if err != nil || !skippedFor(damage, "not a regular file") {
			t.Fatalf("damage %+v, err %v; want the part skipped as not a regular file", damage, err)
		}
		noTempFiles(t, tmp)
	})
	t.Run("larger than the manifest", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		st, _ := snapshot.NewDirStore(dir)
		m := writeSnapshot(t, st, "20261120T000000Z", 10, 0)
		part := filepath.Join(dir, "snaps", m.SnapshotID, m.Parts[0].Key)
		f, err := os.OpenFile(part, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(bytes.Repeat([]byte{0}, 8<<20))
		f.Close()
		damage, err := readOne(t, testenv.Context(t, 10*time.Second), st, tmp)
		if err != nil || !skippedFor(damage, "manifest says") {
			t.Fatalf("damage %+v, err %v", damage, err)
		}
		noTempFiles(t, tmp)
	})
	t.Run("unknown size, endless", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		ds, _ := snapshot.NewDirStore(dir)
		m := writeSnapshot(t, ds, "20261120T000000Z", 10, 0)
		st := &endless{Store: ds}
		damage, err := readOne(t, testenv.Context(t, 10*time.Second), st, tmp)
		if err != nil || !skippedFor(damage, "larger than") {
			t.Fatalf("damage %+v, err %v", damage, err)
		}
		if st.served > m.Parts[0].Bytes+64<<10 {
			t.Fatalf("read %d bytes of a %d-byte part", st.served, m.Parts[0].Bytes)
		}
		noTempFiles(t, tmp)
	})
	t.Run("cancelled", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		ds, _ := snapshot.NewDirStore(dir)
		writeSnapshot(t, ds, "20261120T000000Z", 10, 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st := &endless{Store: ds, onRead: cancel} // cancelled during the copy
		_, err := readOne(t, ctx, st, tmp)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if st.served > 1<<20 {
			t.Fatalf("read %d bytes after the cancellation", st.served)
		}
		noTempFiles(t, tmp)
	})
	t.Run("S3 object larger than the manifest", func(t *testing.T) {
		b := testenv.S3(t)
		st := snapshot.NewS3StoreFromClient(b.Client(), b.Bucket, 0)
		tmp := t.TempDir()
		m := writeSnapshot(t, st, "20261120T000000Z", 10, 0)
		key := "snaps/" + m.SnapshotID + "/" + m.Parts[0].Key
		big := bytes.Repeat([]byte{1}, 4<<20)
		if _, err := b.Client().PutObject(testenv.Context(t, 30*time.Second), &s3.PutObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key), Body: bytes.NewReader(big)}); err != nil {
			t.Fatal(err)
		}
		damage, err := readOne(t, testenv.Context(t, 30*time.Second), st, tmp)
		if err != nil || !skippedFor(damage, "manifest says") {
			t.Fatalf("damage %+v, err %v", damage, err)
		}
		noTempFiles(t, tmp)
	})
}
