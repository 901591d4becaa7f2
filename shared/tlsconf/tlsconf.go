// Package tlsconf builds the TLS client configurations the binaries use to
// reach their services over TLS: a CA file that signs the server's
// certificate, and optionally a client certificate and key.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one TLS client configuration; empty fields
// are not used.
type Files struct {
	CAFile, CertFile, KeyFile string
}

// IsZero reports whether no file is named.
func (f Files) IsZero() bool { return f == Files{} }

// CertPool returns a pool holding the certificates of the PEM file path.
func CertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Config returns a TLS client configuration for serverName from f: the CA
// file as the only roots (the system pool when empty), the client
// certificate when both CertFile and KeyFile are set. TLS 1.2 at least.
func Config(f Files, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pool, err := CertPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("client certificate: give both the certificate and the key file")
	}
	return cfg, nil
}
