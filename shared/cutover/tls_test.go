package cutover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// The state store (and, through the same pgx DSN, the legacy store) runs
// over TLS with sslmode=verify-full and the CA in sslrootcert; a server
// certificate from another CA is refused.
func TestStateStoreVerifyFull(t *testing.T) {
	ca := tlstest.New(t)
	pg := testenv.StartPostgresTLS(t, ca)
	ctx := testenv.Context(t, time.Minute)
	s, err := Open(ctx, pg.VerifyFullDSN(ca.CAFile))
	if err != nil {
		t.Fatalf("verify-full with the right CA: %v", err)
	}
	defer s.Close()
	var ssl bool
	if err := s.pool.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection not over TLS: %v, %v", ssl, err)
	}
	if _, err := s.Current(ctx); err != nil {
		t.Fatal(err)
	}
	other := tlstest.New(t)
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s2, err := Open(octx, pg.VerifyFullDSN(other.CAFile)); err == nil {
		s2.Close()
		t.Fatal("verify-full accepted a server certificate of another CA")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("refused for another reason: %v", err)
	}
}
