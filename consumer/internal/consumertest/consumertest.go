// Package consumertest holds the fixtures the consumer's integration tests
// and benchmark share: generated telemetry, an isolated RabbitMQ topology,
// PostgreSQL databases and an InfluxDB database per test, and ways to count
// what reached each store.
package consumertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

// Base is the time of the first generated reading: a day ago, on a whole
// second, so that readings are never in the future.
var Base = time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)

// Gen2 returns a generation-2 message with one sample of unit at time t.
func Gen2(unit string, seq int, t time.Time) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1"><bsu:Unit serial="%s" site="North Yard, Bay 3" model="FlexiPack-250" firmware="2.4.1"/><bsu:Sample seq="%d" time="%s"><bsu:SoC>55.2</bsu:SoC><bsu:SoH>97.1</bsu:SoH><bsu:Voltage unit="V">812.1</bsu:Voltage><bsu:Current unit="A">-12.30</bsu:Current><bsu:Power unit="kW">-9.99</bsu:Power><bsu:Temperature sensor="cell_max" unit="C">31.2</bsu:Temperature><bsu:Temperature sensor="cell_min" unit="C">29.8</bsu:Temperature><bsu:Mode>discharging</bsu:Mode></bsu:Sample></bsu:Telemetry>`,
		unit, seq, t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// Reading is one generated reading.
type Reading struct {
	Unit string
	Time time.Time
}

// Messages returns n one-sample messages spread over units units, unit
// names prefixed with prefix, times from Base + offset one second apart per
// unit; each (unit, time) is distinct.
func Messages(prefix string, n, units int, offset time.Duration) ([]bus.Message, []Reading) {
	msgs := make([]bus.Message, n)
	rs := make([]Reading, n)
	for i := range n {
		u := fmt.Sprintf("%s-%04d", prefix, i%units)
		t := Base.Add(offset + time.Duration(i/units)*time.Second)
		msgs[i] = bus.Message{ID: fmt.Sprintf("%s-%d", prefix, i), Key: u, RoutingKey: rabbit.RoutingKey(2, u),
			Headers: map[string]string{bus.HeaderUnit: u, bus.HeaderGeneration: "2", bus.HeaderSamples: "1"},
			Body:    Gen2(u, i, t)}
		rs[i] = Reading{Unit: u, Time: t}
	}
	return msgs, rs
}

// Env is one test's isolated set of resources.
type Env struct {
	T         testing.TB
	AMQPURL   string
	Topology  rabbit.Topology
	LegacyDSN string
	StateDSN  string
	Influx    influx.Config
	InfluxDB  string // 1.8 database name
	Logger    *slog.Logger

	conn *rabbit.Conn
	pub  *rabbit.Publisher
}

// NewEnv creates a fresh topology (exchange, queue, dead-letter exchange
// and queue, deleted at cleanup), a fresh legacy database, a fresh state
// database and a fresh InfluxDB database on the shared services.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	e := &Env{T: t, AMQPURL: testenv.RabbitURL(t), LegacyDSN: testenv.Postgres(t), StateDSN: testenv.Postgres(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		e.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	name := testenv.Name(t, "c")
	e.Topology = rabbit.Topology{Exchange: name + ".x", Queue: name + ".q", QueueType: "classic", BindingKey: "bsu.#",
		DeadExchange: name + ".dlx", DeadQueue: name + ".dead"}
	db := testenv.Influx(t)
	e.Influx = influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}
	e.InfluxDB = db.DB
	t.Cleanup(e.deleteTopology)
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *Env) deleteTopology() { rabbittest.Delete(e.AMQPURL, e.Topology) }

// Conn returns the test's RabbitMQ connection (for publishing and inspecting).
func (e *Env) Conn() *rabbit.Conn {
	e.T.Helper()
	if e.conn == nil {
		c, err := rabbit.Dial(testenv.Context(e.T, 15*time.Second), e.AMQPURL, testenv.Name(e.T, "pub"), e.Logger)
		if err != nil {
			e.T.Fatal(err)
		}
		e.T.Cleanup(func() { _ = c.Close() })
		e.conn = c
	}
	return e.conn
}

// Publish publishes msgs to the test's exchange with confirms (declaring
// the topology first, so the queue holds them before any consumer starts).
func (e *Env) Publish(msgs []bus.Message) {
	e.T.Helper()
	if e.pub == nil {
		p, err := rabbit.NewPublisher(testenv.Context(e.T, 15*time.Second), e.Conn(), e.Topology, rabbit.PublisherOptions{Window: 4096, Name: "test"}, e.Logger, nil)
		if err != nil {
			e.T.Fatal(err)
		}
		e.T.Cleanup(func() { _ = p.Close() })
		e.pub = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i := 0; i < len(msgs); i += 5000 {
		if err := e.pub.Publish(ctx, msgs[i:min(i+5000, len(msgs))]); err != nil {
			e.T.Fatalf("publish: %v", err)
		}
	}
}

// QueueMessages returns the messages in queue (ready plus unacked),
// through a passive declare (ready only) — precise, unlike the management
// API's statistics.
func (e *Env) QueueMessages(queue string) int {
	e.T.Helper()
	ch, err := e.Conn().Channel(testenv.Context(e.T, 10*time.Second))
	if err != nil {
		e.T.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		e.T.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// State opens the test's cutover state store (migrating it).
func (e *Env) State() *cutover.Store {
	e.T.Helper()
	s, err := cutover.Open(testenv.Context(e.T, 30*time.Second), e.StateDSN)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(s.Close)
	return s
}

// SetPhase moves the cutover state to phase (whatever it is now).
func (e *Env) SetPhase(s *cutover.Store, phase cutover.Phase) cutover.State {
	e.T.Helper()
	ctx := testenv.Context(e.T, 10*time.Second)
	cur, err := s.Current(ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	st, err := s.Transition(ctx, cutover.Change{Kind: "advance", From: cur.Phase, To: phase, ExpectVersion: cur.Version, Actor: "test", Forced: true})
	if err != nil {
		e.T.Fatal(err)
	}
	return st
}

// LegacyCount returns the rows in legacy.readings of dsn (0 when the table
// does not exist yet).
func LegacyCount(t testing.TB, dsn string) int {
	t.Helper()
	ctx := testenv.Context(t, 15*time.Second)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("legacy count: %v", err)
	}
	defer c.Close(context.Background())
	var n int
	err = c.QueryRow(ctx, `SELECT count(*) FROM legacy.readings`).Scan(&n)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return 0
	}
	if err != nil {
		t.Fatalf("legacy count: %v", err)
	}
	return n
}

// LegacyKeys returns the (unit, time) keys in legacy.readings of dsn.
func LegacyKeys(t testing.TB, dsn string) map[Reading]bool {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT unit, ts FROM legacy.readings`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Reading]bool{}
	for rows.Next() {
		var r Reading
		if err := rows.Scan(&r.Unit, &r.Time); err != nil {
			t.Fatal(err)
		}
		r.Time = r.Time.UTC()
		out[r] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// InfluxKeys returns the (unit, time) of every bsu point in db at url,
// through InfluxQL (exact, and cheap for a test's few thousand points).
func InfluxKeys(t testing.TB, baseURL, db string) map[Reading]bool {
	t.Helper()
	out := map[Reading]bool{}
	for _, s := range influxQuery(t, baseURL, db, `SELECT "schema", "unit" FROM "bsu"`) {
		ui := -1
		for i, c := range s.Columns {
			if c == "unit" {
				ui = i
			}
		}
		for _, v := range s.Values {
			ts, err := time.Parse(time.RFC3339Nano, v[0].(string))
			if err != nil {
				t.Fatalf("influx time %v: %v", v[0], err)
			}
			out[Reading{Unit: v[ui].(string), Time: ts.UTC()}] = true
		}
	}
	return out
}

// InfluxCount returns the number of bsu points in db.
func InfluxCount(t testing.TB, baseURL, db string) int {
	t.Helper()
	for _, s := range influxQuery(t, baseURL, db, `SELECT count("schema") FROM "bsu"`) {
		for _, v := range s.Values {
			n, _ := v[1].(json.Number).Int64()
			return int(n)
		}
	}
	return 0
}

type influxSeries struct {
	Columns []string `json:"columns"`
	Values  [][]any  `json:"values"`
}

func influxQuery(t testing.TB, baseURL, db, q string) []influxSeries {
	t.Helper()
	u := strings.TrimRight(baseURL, "/") + "/query?" + url.Values{"db": {db}, "q": {q}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("influx query: %v", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var r struct {
		Results []struct {
			Series []influxSeries `json:"series"`
			Error  string         `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("influx query %q: %s: %v", q, resp.Status, err)
	}
	if r.Error != "" {
		t.Fatalf("influx query %q: %s", q, r.Error)
	}
	var out []influxSeries
	for _, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("influx query %q: %s", q, res.Error)
		}
		out = append(out, res.Series...)
	}
	return out
}
