// Package pgmigrate applies versioned SQL migrations to a PostgreSQL schema:
// files named NNNN_description.sql, applied in order, each in its own
// transaction, under an advisory lock so that several processes starting at
// once apply each migration exactly once.
package pgmigrate

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Apply applies the migrations in dir of fsys that schema has not seen yet
// and returns how many it applied. The schema and its schema_migrations
// table are created if missing.
func Apply(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, dir string) (int, error) {
	migs, err := list(fsys, dir)
	if err != nil {
		return 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", schema, err)
	}
	defer conn.Release()
	h := fnv.New64a()
	_, _ = h.Write([]byte("pgmigrate:" + schema))
	lockID := int64(h.Sum64() >> 1)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return 0, fmt.Errorf("migrate %s: lock: %w", schema, err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockID) }()

	ident := pgx.Identifier{schema}.Sanitize()
	applied, err := appliedVersions(ctx, conn, schema, ident)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		sql, err := fs.ReadFile(fsys, path.Join(dir, m.name))
		if err != nil {
			return n, fmt.Errorf("migration %s: %w", m.name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+ident+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("migration %s: %w", m.name, err)
		}
		n++
	}
	return n, nil
}

// migration is one NNN_name.sql file.
type migration struct {
	version int
	name    string
}

// list returns the migrations in dir, in version order.
func list(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", e.Name())
		}
		migs = append(migs, migration{v, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

// appliedVersions creates the schema and its schema_migrations table if
// missing and returns the versions applied so far.
func appliedVersions(ctx context.Context, conn *pgxpool.Conn, schema, ident string) (map[int]bool, error) {
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident+"; CREATE TABLE IF NOT EXISTS "+ident+
		".schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return nil, fmt.Errorf("migrate %s: create schema_migrations: %w", schema, err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM "+ident+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", schema, err)
	}
	return applied, nil
}
