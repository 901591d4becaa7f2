package throttle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Apply runs one control command: "pause", "resume", or "rate N" (points
// per second, 0 = unlimited). The HTTP endpoint and the control file both
// go through it.
func (t *Throttler) Apply(cmd string) error {
	f := strings.Fields(strings.ToLower(cmd))
	if len(f) == 0 {
		return nil
	}
	switch {
	case f[0] == "pause" && len(f) == 1:
		t.Pause("paused by operator")
	case f[0] == "resume" && len(f) == 1:
		t.Resume()
	case f[0] == "rate" && len(f) == 2:
		r, err := strconv.ParseFloat(strings.TrimPrefix(f[1], "="), 64)
		if err != nil {
			return fmt.Errorf("control command %q: rate %q is not a number", cmd, f[1])
		}
		return t.SetRate(r)
	default:
		return fmt.Errorf("control command %q: want pause, resume or rate N", cmd)
	}
	return nil
}

// Handler serves the control endpoint under /control/: POST pause, POST
// resume, POST rate?points_per_second=N, GET status. extra, when not nil,
// adds fields (progress) to the status document.
func (t *Throttler) Handler(logger *slog.Logger, extra func() any) http.Handler {
	mux := http.NewServeMux()
	status := func(w http.ResponseWriter) {
		doc := map[string]any{"throttle": t.Status()}
		if extra != nil {
			doc["progress"] = extra()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}
	mux.HandleFunc("GET /control/status", func(w http.ResponseWriter, _ *http.Request) { status(w) })
	mux.HandleFunc("POST /control/pause", func(w http.ResponseWriter, _ *http.Request) {
		t.Pause("paused by operator (HTTP)")
		logger.Info("paused by operator", "via", "http")
		status(w)
	})
	mux.HandleFunc("POST /control/resume", func(w http.ResponseWriter, _ *http.Request) {
		t.Resume()
		logger.Info("resumed by operator", "via", "http")
		status(w)
	})
	mux.HandleFunc("POST /control/rate", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("points_per_second")
		rate, err := strconv.ParseFloat(v, 64)
		if err == nil {
			err = t.SetRate(rate)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("points_per_second=%q: want a number >= 0 (0 = unlimited)", v), http.StatusBadRequest)
			return
		}
		logger.Info("rate changed by operator", "via", "http", "points_per_second", rate)
		status(w)
	})
	return mux
}

// WatchFile applies the commands in the control file at path whenever its
// content changes, checking every interval until ctx ends. Each non-empty
// line not starting with # is a command (pause, resume, rate N), applied
// in order. A file that does not exist is not an error: the operator
// creates it when needed.
func (t *Throttler) WatchFile(ctx context.Context, path string, interval time.Duration, logger *slog.Logger) error {
	if interval <= 0 {
		interval = time.Second
	}
	var last []byte
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			logger.Warn("control file unreadable", "path", path, "err", err)
		}
		if err == nil && !bytes.Equal(data, last) {
			last = data
			for i, line := range strings.Split(string(data), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if err := t.Apply(line); err != nil {
					logger.Warn("control file command refused", "path", path, "line", i+1, "err", err)
					continue
				}
				logger.Info("control file command applied", "path", path, "line", i+1, "command", line)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
