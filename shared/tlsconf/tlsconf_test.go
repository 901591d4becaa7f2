package tlsconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexipack/cutover/shared/tlsconf"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

func TestConfig(t *testing.T) {
	ca := tlstest.New(t)
	cfg, err := tlsconf.Config(tlsconf.Files{CAFile: ca.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey}, "broker")
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker" {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, c := range map[string]struct {
		f    tlsconf.Files
		want string
	}{
		"cert without key": {tlsconf.Files{CertFile: ca.ClientCert}, "both the certificate and the key"},
		"missing CA":       {tlsconf.Files{CAFile: ca.CAFile + ".nope"}, "CA file"},
		"CA not PEM":       {tlsconf.Files{CAFile: notPEM}, "no PEM certificate"},
		"key mismatch":     {tlsconf.Files{CertFile: ca.ClientCert, KeyFile: ca.ServerKey}, "client certificate"},
	} {
		if _, err := tlsconf.Config(c.f, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, c.want)
		}
	}
}
