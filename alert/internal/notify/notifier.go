package notify

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/store"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/retry"
)

// Outbox forgets resolutions once Alertmanager accepted them.
type Outbox interface {
	Delivered(ctx context.Context, ids []int64) error
}

// Config tunes a Notifier.
type Config struct {
	// ResendInterval is how often a firing alert is sent again (Alertmanager
	// resolves an alert it has not heard of for its endsAt; each send sets
	// endsAt to four intervals ahead). Default 1m.
	ResendInterval time.Duration
	// MaxBatch bounds the alerts of one request. Default 500.
	MaxBatch int
	// GeneratorURL is sent with every alert (optional).
	GeneratorURL string
	// Retry is the back-off while Alertmanager fails.
	Retry retry.Policy
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type firingEntry struct {
	alert    engine.Alert
	lastSent time.Time // zero: never sent
}

type resolveEntry struct {
	id         int64
	alert      engine.Alert
	firingSent bool
}

// Notifier keeps the firing alerts and the undelivered resolutions and
// sends them to Alertmanager: new ones at once, firing ones again every
// ResendInterval, retrying with back-off while Alertmanager is down. It
// never drops anything: firing alerts stay until resolved, resolutions stay
// (in memory and in the outbox) until Alertmanager accepts them.
type Notifier struct {
	cfg    Config
	am     Poster
	outbox Outbox
	logger *slog.Logger
	m      *notifyMetrics

	mu       sync.Mutex
	firing   map[[2]string]*firingEntry
	resolved []resolveEntry
	wake     chan struct{}
}

type notifyMetrics struct {
	sent     *prometheus.CounterVec
	failures prometheus.Counter
	pending  prometheus.Gauge
	up       prometheus.Gauge
}

// NewNotifier returns a notifier; Run sends.
func NewNotifier(cfg Config, am Poster, outbox Outbox, logger *slog.Logger, reg prometheus.Registerer) *Notifier {
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = time.Minute
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &notifyMetrics{
		sent: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alert_notifications_total",
			Help: "Alerts Alertmanager accepted, by kind: firing (first send), resend, resolved."}, []string{"kind"})),
		failures: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_notification_failures_total",
			Help: "Requests to Alertmanager that failed (they are retried)."})),
		pending: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "alert_notifications_pending",
			Help: "Alerts and resolutions waiting to be sent to Alertmanager."})),
		up: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "alert_alertmanager_up",
			Help: "1 when the last request to Alertmanager succeeded."})),
	}
	return &Notifier{cfg: cfg, am: am, outbox: outbox, logger: logger, m: m,
		firing: map[[2]string]*firingEntry{}, wake: make(chan struct{}, 1)}
}

// Restore loads the firing alerts and outbox of a previous run; they are
// re-sent with their original startsAt, so Alertmanager sees the same alerts
// (no new notification).
func (n *Notifier) Restore(alerts []engine.Alert, outbox []store.Outboxed) {
	var firing []engine.Change
	for _, a := range alerts {
		if a.State == engine.Firing {
			firing = append(firing, engine.Change{Alert: a, From: engine.Firing})
		}
	}
	n.Update(firing, nil)
	n.mu.Lock()
	for _, o := range outbox {
		n.resolved = append(n.resolved, resolveEntry{id: o.ID, alert: o.Alert})
	}
	n.mu.Unlock()
	n.poke()
}

// Update takes the changes of a batch, after they are stored: firing
// alerts to send, and the outbox entries of resolutions.
func (n *Notifier) Update(changes []engine.Change, resolved []store.Outboxed) {
	n.mu.Lock()
	sentBefore := map[[2]string]bool{}
	for i := range changes {
		c := &changes[i]
		k := [2]string{c.Rule, c.Key}
		switch c.State {
		case engine.Firing:
			if e := n.firing[k]; e != nil {
				e.alert = c.Alert
			} else {
				n.firing[k] = &firingEntry{alert: c.Alert}
			}
		case engine.Inactive:
			if e := n.firing[k]; e != nil {
				sentBefore[k] = !e.lastSent.IsZero()
				delete(n.firing, k)
			}
		}
	}
	for _, o := range resolved {
		n.resolved = append(n.resolved, resolveEntry{id: o.ID, alert: o.Alert, firingSent: sentBefore[[2]string{o.Alert.Rule, o.Alert.Key}]})
	}
	n.mu.Unlock()
	n.poke()
}

func (n *Notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Firing returns how many alerts are firing.
func (n *Notifier) Firing() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.firing)
}

// Run sends until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	b := retry.NewBackoff(n.cfg.Retry)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-n.wake:
		}
		for {
			err := n.Flush(ctx)
			if err == nil {
				b.Reset()
				break
			}
			wait := b.Next()
			n.logger.Warn("alertmanager delivery failed, retrying", "err", err, "retry_in", wait)
			if retry.Sleep(ctx, wait) != nil {
				return nil
			}
		}
	}
}

// due collects what to send now: alerts never sent or due for a resend,
// resolutions (preceded by their firing alert when that was never sent).
func (n *Notifier) due(now time.Time) (fire []*firingEntry, res []resolveEntry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.firing {
		if e.lastSent.IsZero() || now.Sub(e.lastSent) >= n.cfg.ResendInterval {
			fire = append(fire, e)
		}
	}
	sort.Slice(fire, func(i, j int) bool { return fire[i].alert.ActiveAt.Before(fire[j].alert.ActiveAt) })
	res = append(res, n.resolved...)
	n.m.pending.Set(float64(len(fire) + len(n.resolved)))
	return fire, res
}

// item is one alert of a request and what to record once it is accepted.
type item struct {
	am     AMAlert
	accept func()
}

// Flush sends what is due once. It returns the first failure; what was
// accepted before it is recorded.
func (n *Notifier) Flush(ctx context.Context) error {
	now := n.cfg.Now()
	fire, res := n.due(now)
	var items []item
	// Resolutions go first: a new firing of the same alert in the same
	// request must win.
	var delivered []int64
	for _, r := range res {
		if !r.firingSent {
			// Alertmanager first hears of the alert firing, then of its end.
			items = append(items, item{am: n.toAM(r.alert, now, false), accept: func() { n.markFiringSent(r.id) }})
			continue
		}
		items = append(items, item{am: n.toAM(r.alert, now, true), accept: func() {
			delivered = append(delivered, r.id)
			n.m.sent.WithLabelValues("resolved").Inc()
		}})
	}
	for _, e := range fire {
		kind := "resend"
		if e.lastSent.IsZero() {
			kind = "firing"
		}
		items = append(items, item{am: n.toAM(e.alert, now, false), accept: func() {
			n.mu.Lock()
			e.lastSent = now
			n.mu.Unlock()
			n.m.sent.WithLabelValues(kind).Inc()
		}})
	}
	err := n.send(ctx, items)
	if len(delivered) > 0 {
		if derr := n.outbox.Delivered(ctx, delivered); derr != nil {
			return derr // sent again next time: Alertmanager takes a resolution twice
		}
		n.forget(delivered)
	}
	if len(res) > 0 && err == nil {
		n.poke()
	}
	return err
}

func (n *Notifier) send(ctx context.Context, items []item) error {
	for len(items) > 0 {
		chunk := items[:min(len(items), n.cfg.MaxBatch)]
		items = items[len(chunk):]
		batch := make([]AMAlert, len(chunk))
		for i := range chunk {
			batch[i] = chunk[i].am
		}
		err := n.am.Post(ctx, batch)
		if err != nil && retry.IsPermanent(err) && len(chunk) > 1 {
			// Find the alert Alertmanager refuses; send the others.
			n.logger.Error("alertmanager refused a batch; sending its alerts one by one", "err", err)
			for _, it := range chunk {
				if e := n.am.Post(ctx, []AMAlert{it.am}); e == nil || retry.IsPermanent(e) {
					if e != nil {
						n.logger.Error("alertmanager refused an alert; dropping it", "labels", it.am.Labels, "err", e)
					}
					it.accept()
				} else {
					return e
				}
			}
			continue
		}
		if err != nil && !retry.IsPermanent(err) {
			n.m.failures.Inc()
			n.m.up.Set(0)
			return err
		}
		if err != nil {
			n.logger.Error("alertmanager refused an alert; dropping it", "labels", batch[0].Labels, "err", err)
		}
		n.m.up.Set(1)
		for _, it := range chunk {
			it.accept()
		}
	}
	return nil
}

func (n *Notifier) markFiringSent(id int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range n.resolved {
		if n.resolved[i].id == id {
			n.resolved[i].firingSent = true
		}
	}
}

func (n *Notifier) forget(ids []int64) {
	done := make(map[int64]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := n.resolved[:0]
	for _, r := range n.resolved {
		if !done[r.id] {
			kept = append(kept, r)
		}
	}
	n.resolved = kept
}

// toAM renders an alert for Alertmanager: startsAt is when the condition
// began; a firing alert ends four resend intervals from now unless sent
// again; a resolved one ends when it resolved (reading time).
func (n *Notifier) toAM(a engine.Alert, now time.Time, resolved bool) AMAlert {
	out := AMAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.ActiveAt, GeneratorURL: n.cfg.GeneratorURL}
	if resolved {
		out.EndsAt = a.ResolvedAt
		if out.EndsAt.IsZero() || out.EndsAt.Before(out.StartsAt) {
			out.EndsAt = now
		}
		return out
	}
	out.EndsAt = now.Add(4 * n.cfg.ResendInterval)
	return out
}
