package rabbit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/redact"
	"github.com/flexipack/cutover/shared/retry"
)

// ErrConnClosed is returned by Conn.Channel after Close.
var ErrConnClosed = errors.New("rabbitmq connection closed by the client")

// Conn keeps one AMQP connection alive. When the broker or the network
// drops it, Conn redials with exponential backoff (100 ms doubling to 5 s,
// with jitter), building a fresh amqp.Config for every dial with the
// connection_name client property set, so the connection is recognisable
// in the management UI and CloseConnections can find it.
//
// Users open channels with Channel, which waits for a live connection; they
// watch their channels with NotifyClose and call Channel again after a
// close. Reconnected tells them when a new connection is up.
type Conn struct {
	url    string
	tls    *tls.Config // nil: defaults (system roots for amqps)
	name   string
	logger *slog.Logger

	mu        sync.Mutex
	conn      *amqp.Connection // nil while redialling
	lastErr   error            // why the last dial or connection failed
	up        chan struct{}    // closed when conn becomes non-nil; replaced when it is lost
	reconnect chan struct{}    // closed at the next successful (re)connection
	dials     int
	closed    bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// Dial connects to url, retrying with backoff until the first connection
// succeeds or ctx ends (bound ctx to fail fast on a broker that is down at
// start). name is the connection_name client property. After the first
// connection, the Conn redials on its own until Close.
func Dial(ctx context.Context, url, name string, logger *slog.Logger) (*Conn, error) {
	return DialTLS(ctx, url, name, nil, logger)
}

// DialTLS is Dial with a TLS client configuration for amqps:// URLs (the CA
// that signs the broker's certificate, a client certificate); nil uses the
// system roots. It is refused with an amqp:// URL, which would silently
// ignore it.
func DialTLS(ctx context.Context, url, name string, tlsCfg *tls.Config, logger *slog.Logger) (*Conn, error) {
	uri, err := amqp.ParseURI(url)
	if err == nil && tlsCfg != nil && uri.Scheme != "amqps" {
		return nil, fmt.Errorf("rabbitmq url %s: TLS options given but the URL is not amqps://", redact.URL(url))
	}
	if err != nil {
		return nil, fmt.Errorf("rabbitmq url %s: %w", redact.URL(url), redact.URLError(err))
	}
	c := &Conn{
		url:       url,
		tls:       tlsCfg,
		name:      name,
		logger:    logger.With("component", "rabbitmq", "connection", name),
		up:        make(chan struct{}),
		reconnect: make(chan struct{}),
		done:      make(chan struct{}),
	}
	conn, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		c.logger.Warn("rabbitmq dial failed, retrying", "err", err, "retry_in", wait)
	}}, func(context.Context) (*amqp.Connection, error) { return c.dial() })
	if err != nil {
		return nil, fmt.Errorf("connect to rabbitmq %s: %w", redact.URL(url), retry.Stopped(ctx, err))
	}
	c.setUp(conn)
	c.wg.Add(1)
	go c.watch()
	return c, nil
}

// dial makes one connection attempt with a fresh Config: amqp091-go
// mutates parts of a Config during the handshake, so one is never reused.
func (c *Conn) dial() (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.name)
	cfg := amqp.Config{
		Properties: props,
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp.DefaultDial(5 * time.Second),
	}
	if c.tls != nil {
		cfg.TLSClientConfig = c.tls.Clone() // the handshake may mutate it
	}
	conn, err := amqp.DialConfig(c.url, cfg)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redact.URL(c.url), err)
	}
	return conn, nil
}

func (c *Conn) setUp(conn *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	c.lastErr = nil
	c.dials++
	close(c.up)
	close(c.reconnect)
	c.reconnect = make(chan struct{})
}

// watch waits for the connection to close and redials.
func (c *Conn) watch() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		closes := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.done:
			_ = conn.Close()
			return
		case amqpErr, ok := <-closes:
			var err error = amqp.ErrClosed
			if ok && amqpErr != nil {
				err = amqpErr
			}
			c.mu.Lock()
			c.conn = nil
			c.lastErr = err
			c.up = make(chan struct{})
			c.mu.Unlock()
			c.logger.Warn("rabbitmq connection lost, redialling", "err", err)
		}
		backoff := retry.NewBackoff(retry.Policy{})
		for {
			conn, err := c.dial()
			if err == nil {
				c.setUp(conn)
				c.logger.Info("rabbitmq reconnected")
				break
			}
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			wait := backoff.Next()
			c.logger.Warn("rabbitmq redial failed", "err", err, "retry_in", wait)
			select {
			case <-c.done:
				return
			case <-time.After(wait):
			}
		}
	}
}

// Channel opens a channel on the live connection, waiting for one while the
// Conn is redialling. It fails when ctx ends or the Conn is closed.
func (c *Conn) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		conn, err := c.wait(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := conn.Channel()
		if err == nil {
			return ch, nil
		}
		if !conn.IsClosed() {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		// The connection died under us: wait for the redial.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open channel: %w", ctx.Err())
		case <-c.done:
			return nil, ErrConnClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait returns the live connection, waiting for one.
func (c *Conn) wait(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		conn, up, closed, lastErr := c.conn, c.up, c.closed, c.lastErr
		c.mu.Unlock()
		if closed {
			return nil, ErrConnClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		if conn != nil {
			// Closed but the watcher has not noticed yet: wait for it.
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for rabbitmq connection: %w", ctx.Err())
			case <-c.done:
				return nil, ErrConnClosed
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for rabbitmq connection: %w (last error: %v)", ctx.Err(), lastErr)
		case <-c.done:
			return nil, ErrConnClosed
		case <-up:
		}
	}
}

// Connected reports whether the connection is up.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.conn.IsClosed()
}

// Check is a readiness check: nil while connected, else why not.
func (c *Conn) Check(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrConnClosed
	case c.conn != nil && !c.conn.IsClosed():
		return nil
	case c.lastErr != nil:
		return fmt.Errorf("rabbitmq not connected: %w", c.lastErr)
	default:
		return errors.New("rabbitmq not connected")
	}
}

// Reconnected returns a channel closed at the next successful connection
// (after the one that is up now, if any).
func (c *Conn) Reconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnect
}

// Dials returns how many connections have been established, the first one
// included.
func (c *Conn) Dials() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dials
}

// Name returns the connection_name.
func (c *Conn) Name() string { return c.name }

// Close closes the connection and stops redialling.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
	if conn != nil && !conn.IsClosed() {
		if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("close rabbitmq connection: %w", err)
		}
	}
	return nil
}
