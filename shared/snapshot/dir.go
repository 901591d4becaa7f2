package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DirStore is a Store in a local folder: key a/b/c is the file ROOT/a/b/c.
type DirStore struct {
	root string
}

var _ Store = (*DirStore)(nil)

// NewDirStore returns a store rooted at the folder root, which must exist.
func NewDirStore(root string) (*DirStore, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("snapshot folder %s: not a directory", root)
	}
	return &DirStore{root: root}, nil
}

// String names the store for logs.
func (d *DirStore) String() string { return "file://" + d.root }

func (d *DirStore) path(key string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean("/" + key))
	if key == "" || strings.Contains(key, "\\") || clean != "/"+strings.TrimSuffix(key, "/") {
		return "", fmt.Errorf("key %q: not a clean relative path", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// List returns the files under root whose key starts with prefix, sorted.
// Temporary files of unfinished Puts are not listed.
func (d *DirStore) List(ctx context.Context, prefix string) ([]string, error) {
	// Walk only the deepest folder the prefix names.
	start := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, d.root, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Get opens the file at key.
func (d *DirStore) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, 0, err
	}
	// Stat before opening: opening a FIFO would block, a device (a symlink
	// to /dev/zero) would never end.
	if st, err := os.Stat(p); err == nil && !st.IsDir() && !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("get %s: %w (%s)", key, ErrNotRegular, st.Mode().Type())
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("get %s: is a folder: %w", key, ErrNotFound)
	}
	if !st.Mode().IsRegular() { // replaced between the two looks
		f.Close()
		return nil, 0, fmt.Errorf("get %s: %w (%s)", key, ErrNotRegular, st.Mode().Type())
	}
	return f, st.Size(), nil
}

// Put writes r to a temporary file next to key and renames it into place,
// so a reader never sees a partial file.
func (d *DirStore) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, ctxReader{ctx, r}); err != nil {
		tmp.Close()
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
