package snapshot

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound reports a key that does not exist in a Store.
var ErrNotFound = errors.New("object not found")

// ErrNotRegular reports a key of a folder store that is not a regular file
// (a device, a FIFO, a socket, or a symlink to one): it is never read.
var ErrNotRegular = errors.New("not a regular file")

// Store is where snapshots live: an S3 bucket (NewS3Store) or a local folder
// with the same layout (NewDirStore). Keys are slash-separated paths
// relative to the store's root.
type Store interface {
	// List returns every key that starts with prefix, sorted. A prefix
	// ending in "/" lists a folder's contents, recursively.
	List(ctx context.Context, prefix string) ([]string, error)
	// Get opens the object at key and returns its size (-1 when the store
	// does not say). A missing key is an error wrapping ErrNotFound. The
	// caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Put stores r's bytes at key, replacing any object there. Readers
	// never see a partly written object.
	Put(ctx context.Context, key string, r io.Reader) error
}
