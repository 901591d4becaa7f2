package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/rabbit"
)

// arrivals is a recording proxy in front of a real Alertmanager: it notes
// when each unit's alert first arrives, then forwards the request.
type arrivals struct {
	mu     sync.Mutex
	first  map[string]time.Time
	target string
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if json.Unmarshal(body, &alerts) == nil {
		a.mu.Lock()
		for _, al := range alerts {
			if u := al.Labels["unit"]; u != "" {
				if _, ok := a.first[u]; !ok {
					a.first[u] = now
				}
			}
		}
		a.mu.Unlock()
	}
	resp, err := http.Post(a.target+r.URL.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (a *arrivals) at(unit string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.first[unit]
	return t, ok
}

// BenchmarkConfirmToAlertmanager publishes 5,000 messages/s for 20 s
// (1,000 units reporting normally; every 50th message a unit turning hot,
// which fires an alert at once) with publisher confirms, through RabbitMQ,
// the alert service (state in PostgreSQL) and a real Alertmanager, and
// reports the p50 and p99 from the publish (an upper bound of the
// confirm, see publishPaced) to the alert arriving at Alertmanager, and
// the rate the publishers achieved.
func BenchmarkConfirmToAlertmanager(b *testing.B) {
	for i := 0; i < b.N; i++ {
		pub, conf, rate := confirmToAlertmanager(b, 5000, 20*time.Second)
		b.ReportMetric(percentile(pub, 0.50).Seconds()*1000, "p50-ms")
		b.ReportMetric(percentile(pub, 0.99).Seconds()*1000, "p99-ms")
		b.ReportMetric(percentile(conf, 0.99).Seconds()*1000, "confirm-noted-p99-ms")
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(float64(len(pub)), "alerts")
	}
}

func confirmToAlertmanager(b *testing.B, rate int, d time.Duration) (fromPublish, fromConfirm []time.Duration, achieved float64) {
	hook := newWebhook(b)
	am := startPrivateAM(b, hook.srv.URL)
	proxy := &arrivals{first: map[string]time.Time{}, target: am.url()}
	ps := httptest.NewServer(proxy)
	b.Cleanup(ps.Close)
	h := newRunHarness(b, ps.URL)
	// The production defaults (alert run --prefetch, --batch-size, --linger).
	h.cfg.Prefetch, h.cfg.Service.BatchSize, h.cfg.Service.Linger = 2000, 500, 50*time.Millisecond
	h.cfg.InfluxPoints = false
	stop := h.start()
	defer stop()
	conn, err := amqp.Dial(h.cfg.AMQPURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Two publishers, each on its own channel with confirms, each half the rate.
	var mu sync.Mutex
	confirmed := map[string][2]time.Time{} // unit -> published, confirm noted
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	start := time.Now()
	for p := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[p], errs[p] = publishPaced(h, conn, p, rate/2, d, func(unit string, sent, conf time.Time) {
				mu.Lock()
				confirmed[unit] = [2]time.Time{sent, conf}
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	n := counts[0] + counts[1]
	achieved = float64(n) / time.Since(start).Seconds() // confirmed messages per second
	var fromPub, fromConf []time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for u, c := range confirmed {
		for {
			if at, ok := proxy.at(u); ok {
				fromPub = append(fromPub, at.Sub(c[0]))
				fromConf = append(fromConf, at.Sub(c[1]))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("alert of %s never reached Alertmanager", u)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return fromPub, fromConf, achieved
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// publishPaced publishes rate messages/s for d on its own channel with
// confirms (publisher p of several); every 50th message turns a new unit
// hot, and confirmedAt is called, once its confirm arrived, with the time
// it was published. That time, not the confirm's arrival, starts the clock:
// on a loaded machine the goroutine noting confirms runs late (alerts were
// seen at Alertmanager "before" their confirm), while a message is always
// confirmed after it was published, so publish → Alertmanager is an upper
// bound of confirm → Alertmanager.
func publishPaced(h *runHarness, conn *amqp.Connection, p, rate int, d time.Duration, confirmedAt func(unit string, sent, confirmed time.Time)) (int, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	type pending struct {
		dc   *amqp.DeferredConfirmation
		unit string // "" unless the message turns a unit hot
		sent time.Time
	}
	// Confirms are awaited beside the publishing loop, so that it keeps its pace.
	waits := make(chan pending, 100000)
	waited := make(chan error, 1)
	go func() {
		for w := range waits {
			if ok, err := w.dc.WaitContext(h.ctx); err != nil || !ok {
				waited <- fmt.Errorf("publish not confirmed: %v", err)
				for range waits {
				}
				return
			}
			if w.unit != "" {
				confirmedAt(w.unit, w.sent, time.Now())
			}
		}
		waited <- nil
	}()
	const perTick, every = 25, 50
	tick := time.Second / time.Duration(rate/perTick)
	start, n := time.Now(), 0
	for next := start; time.Since(start) < d; next = next.Add(tick) {
		for j := 0; j < perTick; j++ {
			unit, temp, hot := fmt.Sprintf("FPL-%d-%04d", p, n%500), 30.0, ""
			if n%every == 0 {
				unit, temp = fmt.Sprintf("HOT-%d-%05d", p, n/every), 60
				hot = unit
			}
			sent := time.Now()
			dc, err := ch.PublishWithDeferredConfirmWithContext(h.ctx, h.cfg.Topology.Exchange, rabbit.RoutingKey(1, unit), true, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, Body: gen1(unit, time.Now(), temp)})
			if err != nil {
				close(waits)
				return n, err
			}
			waits <- pending{dc: dc, unit: hot, sent: sent}
			n++
		}
		time.Sleep(time.Until(next.Add(tick)))
	}
	close(waits)
	return n, <-waited
}
