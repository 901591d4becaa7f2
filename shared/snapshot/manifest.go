// Package snapshot reads and writes the legacy store's backups in the format
// of SNAPSHOTS.md: under a prefix, one folder per snapshot named by the UTC
// time it was taken (YYYYMMDDTHHMMSSZ), gzip'd JSON-lines parts, and a
// manifest.json written last that lists each part's size and sha256.
//
// Snapshots live in a Store: S3 (or any S3-compatible store such as MinIO)
// or a local folder with the same layout. One code path, above the Store
// interface, reads and writes both.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// ManifestName is the name of a snapshot's manifest inside its folder.
const ManifestName = "manifest.json"

// Format is the only snapshot format the contract defines.
const Format = "jsonl+gzip"

// IDLayout is the time layout of a snapshot id.
const IDLayout = "20060102T150405Z"

// ErrInvalidManifest reports a manifest that does not follow the contract.
var ErrInvalidManifest = errors.New("invalid manifest")

var partKeyRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Manifest describes one complete snapshot.
type Manifest struct {
	SnapshotID string    `json:"snapshot_id"`
	CreatedAt  time.Time `json:"created_at"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Format     string    `json:"format"`
	Records    int64     `json:"records"`
	Parts      []Part    `json:"parts"`
}

// Part is one gzip'd JSON-lines object of a snapshot.
type Part struct {
	// Key is relative to the snapshot's folder.
	Key string `json:"key"`
	// Records counts the part's lines once decompressed.
	Records int64 `json:"records"`
	// Bytes is the size of the object as stored (compressed).
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex digest of the object as stored.
	SHA256 string `json:"sha256"`
}

// ParseManifest decodes and validates a manifest read from key.
func ParseManifest(key string, data []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w: %v", key, ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", key, err)
	}
	return m, nil
}

// Validate checks the manifest against the contract: a well-formed snapshot
// id, format jsonl+gzip, from before to, and parts with plain relative keys,
// non-negative sizes and a hex sha256.
func (m *Manifest) Validate() error {
	if _, err := time.Parse(IDLayout, m.SnapshotID); err != nil {
		return fmt.Errorf("%w: snapshot_id %q is not YYYYMMDDTHHMMSSZ", ErrInvalidManifest, m.SnapshotID)
	}
	if m.Format != Format {
		return fmt.Errorf("%w: format %q: want %q", ErrInvalidManifest, m.Format, Format)
	}
	if m.From.IsZero() || m.To.IsZero() || !m.From.Before(m.To) {
		return fmt.Errorf("%w: from %s is not before to %s", ErrInvalidManifest, m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))
	}
	seen := map[string]bool{}
	for i, p := range m.Parts {
		switch {
		case !partKeyRe.MatchString(p.Key) || p.Key == ManifestName || p.Key == "." || p.Key == "..":
			return fmt.Errorf("%w: part %d: key %q is not a plain name in the snapshot's folder", ErrInvalidManifest, i, p.Key)
		case seen[p.Key]:
			return fmt.Errorf("%w: part %d: key %q listed twice", ErrInvalidManifest, i, p.Key)
		case p.Bytes < 0 || p.Records < 0:
			return fmt.Errorf("%w: part %s: negative bytes or records", ErrInvalidManifest, p.Key)
		case len(p.SHA256) != 64 || strings.Trim(strings.ToLower(p.SHA256), "0123456789abcdef") != "":
			return fmt.Errorf("%w: part %s: sha256 %q is not 64 hex digits", ErrInvalidManifest, p.Key, p.SHA256)
		}
		seen[p.Key] = true
	}
	return nil
}

// Contains reports whether t lies in the manifest's [from, to).
func (m *Manifest) Contains(t time.Time) bool { return !t.Before(m.From) && t.Before(m.To) }

// ManifestKey returns the key of the manifest of snapshot id under prefix.
func ManifestKey(prefix, id string) string { return joinKey(prefix, id, ManifestName) }

// PartKey returns the full key of part under the snapshot's folder.
func PartKey(prefix, id, part string) string { return joinKey(prefix, id, part) }

// NewID returns the snapshot id of a snapshot taken at t.
func NewID(t time.Time) string { return t.UTC().Format(IDLayout) }

func joinKey(elems ...string) string {
	var parts []string
	for _, e := range elems {
		if e = strings.Trim(e, "/"); e != "" {
			parts = append(parts, e)
		}
	}
	return path.Join(parts...)
}
