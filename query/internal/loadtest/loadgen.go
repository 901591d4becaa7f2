// Package loadtest is the query API's load generator: concurrent clients
// cycling through a list of named requests, and per-request latency
// percentiles and rates. The clients either keep one request in flight
// each (closed loop: the service's capacity, where latency is mostly
// queueing) or send at a fixed total rate (open loop: latency under a
// stated load, measured from when each request was due, so a stalled
// service is not hidden by clients that stop sending). The benchmark next
// to it runs it against both stores, with and without ingest.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Request is one kind of request the clients send.
type Request struct {
	Name string
	Path string // appended to the base URL
	// PerClient, if set, gives client c's path instead of Path (each
	// dashboard user looks at its own unit).
	PerClient func(c int) string
}

func (r Request) path(c int) string {
	if r.PerClient != nil {
		return r.PerClient(c)
	}
	return r.Path
}

// Config says how to load the API.
type Config struct {
	BaseURL  string
	Clients  int
	Duration time.Duration
	Requests []Request
	Header   http.Header // sent with every request (a bearer token)
	Timeout  time.Duration
	// Rate, if above 0, is the total requests per second (open loop):
	// the clients take turns, each sending its next request when due, at
	// most Clients in flight. 0: closed loop, every client sends its next
	// request as soon as the last one is answered.
	Rate float64
	// WarmUp sends each request kind once (client 0's), unmeasured, before
	// the run: the figures are of a running service, not of its first
	// requests after a start or a phase switch (caches empty).
	WarmUp bool
	// Trace, if set, gets a line per request once the run is over: when it
	// was due (RFC 3339), its kind, its latency in ms and its status, in
	// the order they were answered; to line requests up with the stores'
	// own logs.
	Trace io.Writer
}

// Stats are one request kind's figures.
type Stats struct {
	Name          string
	Count         int
	Errors        int // answers other than 2xx, and transport errors
	Status        map[int]int
	P50, P95, P99 time.Duration
	Max           time.Duration
	PerSecond     float64
}

// Run loads the API for cfg.Duration (then lets the requests in flight
// finish) and returns each request kind's figures, in cfg.Requests order;
// the rates count over the whole time. Client i starts at request i (so every
// kind is in flight from the start) and cycles through the list.
func Run(ctx context.Context, cfg Config) []Stats {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients * 2, MaxConnsPerHost: cfg.Clients * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	type sample struct {
		kind   int
		due    time.Time
		d      time.Duration
		status int
	}
	if cfg.WarmUp {
		for _, r := range cfg.Requests {
			get(ctx, client, cfg.BaseURL+r.path(0), cfg.Header)
		}
	}
	var mu sync.Mutex
	samples := make([]sample, 0, 1<<16)
	// Clients stop sending at the end of the run, but the requests in
	// flight finish (or time out): a slow request is measured, not dropped.
	end := time.Now().Add(cfg.Duration)
	start := time.Now()
	// Open loop: client c's i-th request is due at start + (i*Clients+c)
	// intervals; its latency counts from then, whenever it could be sent.
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := (c + i) % len(cfg.Requests)
				due := time.Now()
				if interval > 0 {
					due = start.Add(time.Duration(i*cfg.Clients+c) * interval)
				}
				if !due.Before(end) {
					return // before waiting for it: the rates count up to the last answer
				}
				if wait := time.Until(due); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				status := get(ctx, client, cfg.BaseURL+cfg.Requests[k].path(c), cfg.Header)
				mu.Lock()
				samples = append(samples, sample{k, due, time.Since(due), status})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	out := make([]Stats, len(cfg.Requests))
	lat := make([][]time.Duration, len(cfg.Requests))
	for i, r := range cfg.Requests {
		out[i] = Stats{Name: r.Name, Status: map[int]int{}}
	}
	for _, s := range samples {
		if cfg.Trace != nil {
			fmt.Fprintf(cfg.Trace, "%s\t%s\t%s\t%d\n", s.due.UTC().Format(time.RFC3339Nano), cfg.Requests[s.kind].Name, Ms(s.d), s.status)
		}
		st := &out[s.kind]
		st.Count++
		st.Status[s.status]++
		if s.status/100 != 2 {
			st.Errors++
		}
		lat[s.kind] = append(lat[s.kind], s.d)
	}
	for i := range out {
		l := lat[i]
		slices.Sort(l)
		out[i].P50, out[i].P95, out[i].P99 = Percentile(l, 50), Percentile(l, 95), Percentile(l, 99)
		if len(l) > 0 {
			out[i].Max = l[len(l)-1]
		}
		out[i].PerSecond = float64(out[i].Count) / elapsed.Seconds()
	}
	return out
}

// get requests u, reads the body whole and returns the status (0 on a
// transport error).
func get(ctx context.Context, c *http.Client, u string, h http.Header) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0
	}
	return resp.StatusCode
}

// Percentile returns the p-th percentile (nearest rank) of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Ms formats d in milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
