package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Auth checks read-only bearer tokens listed in a file, one a line (blank
// lines and lines starting with # ignored). Reload rereads the file; the
// tokens in force stay if it fails. Tokens are kept and compared as
// SHA-256 digests in constant time, so neither a token nor its length
// leaks through timing.
type Auth struct {
	path string

	mu     sync.RWMutex
	tokens [][sha256.Size]byte
}

// maxTokensFile bounds the tokens file.
const maxTokensFile = 1 << 20

// NewAuth reads the tokens file at path.
func NewAuth(path string) (*Auth, error) {
	a := &Auth{path: path}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload rereads the tokens file; on error the previous tokens stay.
func (a *Auth) Reload() error {
	raw, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if len(raw) > maxTokensFile {
		return fmt.Errorf("tokens file %s: larger than %d bytes", a.path, maxTokensFile)
	}
	var tokens [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) < 16 || strings.ContainsAny(t, " \t") {
			return fmt.Errorf("tokens file %s line %d: a token must be at least 16 characters without spaces", a.path, line)
		}
		tokens = append(tokens, sha256.Sum256([]byte(t)))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tokens file %s: %w", a.path, err)
	}
	if len(tokens) == 0 {
		return fmt.Errorf("tokens file %s: no token (an empty file would lock every client out)", a.path)
	}
	a.mu.Lock()
	a.tokens = tokens
	a.mu.Unlock()
	return nil
}

// Count returns how many tokens are in force.
func (a *Auth) Count() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.tokens)
}

// Check returns nil when r carries a valid bearer token, else a 401 problem
// (which never echoes what was sent).
func (a *Auth) Check(r *http.Request) *Problem {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return Unauthorized("this API needs a bearer token: send Authorization: Bearer <token>")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Unauthorized("the Authorization header is not \"Bearer <token>\"")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	a.mu.RLock()
	defer a.mu.RUnlock()
	match := 0
	for i := range a.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], a.tokens[i][:])
	}
	if match != 1 {
		return Unauthorized("the bearer token is not valid")
	}
	return nil
}
