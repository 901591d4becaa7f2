package snapshot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/testenv"
)

// foreachStore runs a test against every Store implementation, each on a
// fresh, empty store: a local folder and a MinIO bucket.
func foreachStore(t *testing.T, test func(t *testing.T, st snapshot.Store)) {
	t.Run("dir", func(t *testing.T) {
		st, err := snapshot.NewDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		test(t, st)
	})
	t.Run("s3", func(t *testing.T) {
		b := testenv.S3(t)
		// The smallest part size S3 allows, so that multipart uploads are
		// exercised with small objects.
		test(t, snapshot.NewS3StoreFromClient(b.Client(), b.Bucket, 5<<20))
	})
}

func get(t *testing.T, st snapshot.Store, key string) []byte {
	t.Helper()
	rc, size, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if int64(len(b)) != size {
		t.Fatalf("get %s: size %d, read %d bytes", key, size, len(b))
	}
	return b
}

func TestStoreConformance(t *testing.T) {
	foreachStore(t, func(t *testing.T, st snapshot.Store) {
		ctx := testenv.Context(t, time.Minute)
		put := func(key, body string) {
			t.Helper()
			if err := st.Put(ctx, key, bytes.NewReader([]byte(body))); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
		}

		t.Run("put then get returns the bytes", func(t *testing.T) {
			put("a/b/one.txt", "hello")
			if got := string(get(t, st, "a/b/one.txt")); got != "hello" {
				t.Fatalf("got %q", got)
			}
		})
		t.Run("put replaces", func(t *testing.T) {
			put("a/b/two.txt", "first")
			put("a/b/two.txt", "second")
			if got := string(get(t, st, "a/b/two.txt")); got != "second" {
				t.Fatalf("got %q", got)
			}
		})
		t.Run("empty object", func(t *testing.T) {
			put("a/empty", "")
			if got := get(t, st, "a/empty"); len(got) != 0 {
				t.Fatalf("got %d bytes", len(got))
			}
		})
		t.Run("missing key is ErrNotFound", func(t *testing.T) {
			_, _, err := st.Get(ctx, "a/none")
			if !errors.Is(err, snapshot.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
		t.Run("list by prefix, sorted, recursive", func(t *testing.T) {
			put("p/x/2", "2")
			put("p/x/1", "1")
			put("p/y/z/3", "3")
			put("px/4", "4")
			got, err := st.List(ctx, "p/")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"p/x/1", "p/x/2", "p/y/z/3"}
			if !slices.Equal(got, want) {
				t.Fatalf("List(p/) = %q, want %q", got, want)
			}
			got, err = st.List(ctx, "nothing/")
			if err != nil || len(got) != 0 {
				t.Fatalf("List(nothing/) = %q, %v; want nothing", got, err)
			}
		})
		t.Run("large object (multipart)", func(t *testing.T) {
			big := make([]byte, 11<<20+123)
			_, _ = rand.Read(big)
			if err := st.Put(ctx, "big/obj", bytes.NewReader(big)); err != nil {
				t.Fatal(err)
			}
			if got := get(t, st, "big/obj"); !bytes.Equal(got, big) {
				t.Fatalf("large object differs after round trip (%d bytes back)", len(got))
			}
		})
		t.Run("failed put leaves nothing", func(t *testing.T) {
			r := io.MultiReader(bytes.NewReader(make([]byte, 6<<20)), errReader{})
			if err := st.Put(ctx, "broken/obj", r); err == nil {
				t.Fatal("put from a failing reader succeeded")
			}
			keys, err := st.List(ctx, "broken/")
			if err != nil || len(keys) != 0 {
				t.Fatalf("after a failed put: %q, %v; want nothing", keys, err)
			}
		})
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
