package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// rabbitScript is the node start script under Debian's /usr/sbin wrapper
// (rabbitmq-server on PATH is used where it does not exist).
// The wrapper is not used: it changes to /var/lib/rabbitmq and su's to the
// rabbitmq user, whose HOME holds the system node's Erlang cookie and who
// cannot read the test's certificates.
const rabbitScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// PrivateRabbit is a private RabbitMQ node serving AMQP over TLS only.
type PrivateRabbit struct {
	*Proc
	URL  string // amqps://guest:guest@127.0.0.1:port/ (TLS listener)
	Addr string // 127.0.0.1:port of the TLS listener
	Node string // Erlang node name, tls-<random>@localhost
}

// StartRabbitTLS starts a private RabbitMQ node (Debian's rabbitmq-server)
// whose only AMQP listener is TLS on a free loopback port, with ca's server
// certificate and client certificates required (verify_peer,
// fail_if_no_peer_cert). Its node name, distribution port, data, logs,
// plugins (none) and Erlang cookie (its own HOME) are its own, so the
// system node is not touched; the shared epmd is used. The node is stopped
// when the test ends.
func StartRabbitTLS(t testing.TB, ca *tlstest.CA) *PrivateRabbit {
	t.Helper()
	script := rabbitScript
	if _, err := os.Stat(script); err != nil {
		if script, err = exec.LookPath("rabbitmq-server"); err != nil {
			t.Fatalf("testenv: neither %s nor rabbitmq-server on PATH (install Debian's rabbitmq-server); %s", rabbitScript, hint)
		}
	}
	dir := t.TempDir()
	tlsPort, distPort := FreePort(t), FreePort(t)
	node := "tls-" + randomHex(t) + "@localhost"
	conf := fmt.Sprintf(`listeners.tcp = none
listeners.ssl.default = 127.0.0.1:%d
ssl_options.cacertfile = %s
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
loopback_users.guest = true
`, tlsPort, ca.CAFile, ca.ServerCert, ca.ServerKey)
	files := map[string]string{"rabbitmq.conf": conf, "enabled_plugins": "[].\n", "rabbitmq-env.conf": ""}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "home"), 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	environ := rabbitEnv(dir, node, distPort)
	addr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	logPath := filepath.Join(dir, "rabbitmq-server.log")
	p := &PrivateRabbit{URL: "amqps://guest:guest@" + addr + "/", Addr: addr, Node: node}
	clientCfg := rabbitReadyTLS(t, ca)
	p.Proc = &Proc{t: t, name: "private rabbitmq " + node, log: logPath,
		start: func() (*exec.Cmd, error) {
			f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			cmd := exec.Command(script)
			cmd.Dir, cmd.Env = dir, environ
			cmd.Stdout, cmd.Stderr = f, f
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			return cmd, cmd.Start()
		},
		ready: func() error {
			conn, err := amqp.DialConfig(p.URL, amqp.Config{TLSClientConfig: clientCfg, Dial: amqp.DefaultDial(2 * time.Second)})
			if err != nil {
				return err
			}
			return conn.Close()
		},
	}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// rabbitEnv is the environment of a private node: its own name, ports,
// folders and HOME (so its own Erlang cookie); /etc/rabbitmq is not read.
func rabbitEnv(dir, node string, distPort int) []string {
	return append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME="+node,
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

func randomHex(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// rabbitReadyTLS is the client TLS configuration of the readiness check:
// ca's client certificate, trusting ca.
func rabbitReadyTLS(t testing.TB, ca *tlstest.CA) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(ca.ClientCert, ca.ClientKey)
	if err != nil {
		t.Fatalf("testenv: client certificate: %v", err)
	}
	return &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
