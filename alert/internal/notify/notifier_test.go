package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/store"
)

type fakeAM struct {
	mu    sync.Mutex
	down  bool
	posts [][]AMAlert
}

func (f *fakeAM) Post(_ context.Context, alerts []AMAlert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	f.posts = append(f.posts, append([]AMAlert(nil), alerts...))
	return nil
}

type fakeOutbox struct{ delivered []int64 }

func (o *fakeOutbox) Delivered(_ context.Context, ids []int64) error {
	o.delivered = append(o.delivered, ids...)
	return nil
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func alertAt(state engine.State, active time.Time) engine.Alert {
	return engine.Alert{Rule: "Hot", Key: "U1", State: state, Severity: "critical", ActiveAt: active,
		Labels: map[string]string{"alertname": "Hot", "unit": "U1"}, Annotations: map[string]string{"summary": "hot"}}
}

// Firing alerts are sent at once and again every resend interval with
// endsAt four intervals ahead; a resolution carries endsAt = the resolving
// reading's time and leaves the outbox once accepted.
func TestNotifierResendsAndResolves(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	am, ob := &fakeAM{}, &fakeOutbox{}
	n := NewNotifier(Config{ResendInterval: time.Minute, Now: func() time.Time { return now }}, am, ob, discard(), nil)
	ctx := context.Background()
	active := now.Add(-2 * time.Minute)
	n.Update([]engine.Change{{Alert: alertAt(engine.Firing, active), From: engine.Pending}}, nil)
	mustFlush(t, n)
	if len(am.posts) != 1 || !am.posts[0][0].StartsAt.Equal(active) || !am.posts[0][0].EndsAt.Equal(now.Add(4*time.Minute)) {
		t.Fatalf("first send: %+v", am.posts)
	}
	now = now.Add(30 * time.Second)
	mustFlush(t, n)
	if len(am.posts) != 1 {
		t.Fatalf("re-sent before the resend interval: %d posts", len(am.posts))
	}
	now = now.Add(30 * time.Second)
	mustFlush(t, n)
	if len(am.posts) != 2 {
		t.Fatalf("not re-sent after the resend interval: %d posts", len(am.posts))
	}
	res := alertAt(engine.Inactive, active)
	res.ResolvedAt = now.Add(-5 * time.Second)
	n.Update([]engine.Change{{Alert: res, From: engine.Firing}}, []store.Outboxed{{ID: 7, Alert: res}})
	mustFlush(t, n)
	last := am.posts[len(am.posts)-1]
	if len(last) != 1 || !last[0].EndsAt.Equal(res.ResolvedAt) || len(ob.delivered) != 1 || ob.delivered[0] != 7 {
		t.Fatalf("resolution: %+v, delivered %v", last, ob.delivered)
	}
	if n.Firing() != 0 {
		t.Fatalf("still %d firing", n.Firing())
	}
	_ = ctx
}

// While Alertmanager is down nothing is dropped; once it answers, the
// alert fired meanwhile arrives, and an alert that fired and resolved
// meanwhile is sent firing first, then resolved.
func TestNotifierKeepsEverythingWhileDown(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	am, ob := &fakeAM{down: true}, &fakeOutbox{}
	n := NewNotifier(Config{Now: func() time.Time { return now }}, am, ob, discard(), nil)
	a := alertAt(engine.Firing, now)
	b := alertAt(engine.Firing, now)
	b.Key, b.Labels = "U2", map[string]string{"alertname": "Hot", "unit": "U2"}
	n.Update([]engine.Change{{Alert: a}, {Alert: b}}, nil)
	for i := 0; i < 3; i++ {
		if err := n.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("flush while down: %v", err)
		}
	}
	rb := b
	rb.State, rb.ResolvedAt = engine.Inactive, now.Add(time.Minute)
	n.Update([]engine.Change{{Alert: rb, From: engine.Firing}}, []store.Outboxed{{ID: 1, Alert: rb}})
	am.down = false
	mustFlush(t, n) // a firing; b firing (never sent before its resolution)
	mustFlush(t, n) // b resolved
	var firing, resolved []string
	for _, p := range am.posts {
		for _, x := range p {
			if x.EndsAt.Equal(rb.ResolvedAt) {
				resolved = append(resolved, x.Labels["unit"])
			} else {
				firing = append(firing, x.Labels["unit"])
			}
		}
	}
	if strings.Join(firing, ",") != "U2,U1" && strings.Join(firing, ",") != "U1,U2" || strings.Join(resolved, ",") != "U2" {
		t.Fatalf("firing %v, resolved %v; want U1 and U2 firing, then U2 resolved", firing, resolved)
	}
	if len(ob.delivered) != 1 {
		t.Fatalf("outbox delivered %v", ob.delivered)
	}
}

func mustFlush(t *testing.T, n *Notifier) {
	t.Helper()
	if err := n.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAppendPointEscapes(t *testing.T) {
	c := engine.Change{Alert: engine.Alert{Rule: "SiteFaults", Key: "North Yard, Bay 3", State: engine.Firing, Severity: "critical",
		ActiveAt: time.UnixMilli(1000).UTC(), FiredAt: time.UnixMilli(2000).UTC(), Value: 0.25,
		Labels: map[string]string{"site": "North Yard, Bay 3"}, Annotations: map[string]string{"summary": `25 % "at" North`}}, From: engine.Pending}
	got := string(AppendPoint(nil, &c))
	want := `bsu_alert,alertname=SiteFaults,severity=critical,site=North\ Yard\,\ Bay\ 3,state=firing value=0.25,active_at_ms=1000i,summary="25 % \"at\" North" 2000`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
