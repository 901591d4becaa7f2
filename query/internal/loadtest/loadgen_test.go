package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An open-loop run sends exactly the requests due within its duration,
// and its rate counts up to the last answer, not to when the clients
// would have sent their next.
func TestRunOpenLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bad":
			http.Error(w, "no", http.StatusTeapot)
		case "/empty":
			w.WriteHeader(http.StatusNoContent) // a success (InfluxDB's /ping)
		}
	}))
	defer srv.Close()
	st := Run(context.Background(), Config{BaseURL: srv.URL, Clients: 50, Duration: time.Second, Rate: 50,
		Requests: []Request{{Name: "ok", Path: "/ok"}, {Name: "bad", Path: "/bad"}, {Name: "empty", Path: "/empty"}}})
	if len(st) != 3 || st[0].Count+st[1].Count+st[2].Count != 50 {
		t.Fatalf("got %+v, want 50 requests in all", st)
	}
	if st[0].Errors != 0 || st[1].Errors != st[1].Count || st[1].Status[http.StatusTeapot] != st[1].Count ||
		st[2].Errors != 0 || st[2].Status[http.StatusNoContent] != st[2].Count {
		t.Errorf("errors: %+v", st)
	}
	// Each client sends once a second: waiting for a second round past
	// the end would halve the rate.
	if r := st[0].PerSecond + st[1].PerSecond + st[2].PerSecond; r < 35 {
		t.Errorf("rate %.1f requests/s, want about 50", r)
	}
}
