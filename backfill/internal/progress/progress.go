// Package progress shows how far a replay is: a one-line bar with rate and
// ETA on a terminal, periodic structured log lines otherwise.
package progress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Snapshot is the progress at one moment.
type Snapshot struct {
	PointsTotal  int64   `json:"points_total"`
	PointsDone   int64   `json:"points_written"`
	WindowsTotal int64   `json:"windows_total"`
	WindowsDone  int64   `json:"windows_done"`
	Rate         float64 `json:"points_per_second"`
	ETASeconds   float64 `json:"eta_seconds"`
	Elapsed      string  `json:"elapsed"`
}

// Tracker counts progress. It is safe for concurrent use.
type Tracker struct {
	mu           sync.Mutex
	pointsTotal  int64
	pointsDone   int64
	windowsTotal int64
	windowsDone  int64
	start        time.Time
	// rate is a moving average over the last samples.
	lastPoints int64
	lastAt     time.Time
	rate       float64
	now        func() time.Time
}

// NewTracker starts tracking a replay of pointsTotal points in windowsTotal windows.
func NewTracker(pointsTotal, windowsTotal int64) *Tracker {
	now := time.Now()
	return &Tracker{pointsTotal: pointsTotal, windowsTotal: windowsTotal, start: now, lastAt: now, now: time.Now}
}

// AddPoints records points written.
func (t *Tracker) AddPoints(n int64) {
	t.mu.Lock()
	t.pointsDone += n
	t.mu.Unlock()
}

// AddWindows records windows finished.
func (t *Tracker) AddWindows(n int64) {
	t.mu.Lock()
	t.windowsDone += n
	t.mu.Unlock()
}

// Snapshot returns the progress now, updating the rate estimate.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if el := now.Sub(t.lastAt).Seconds(); el >= 0.5 {
		cur := float64(t.pointsDone-t.lastPoints) / el
		if t.rate == 0 {
			t.rate = cur
		} else {
			t.rate = 0.4*cur + 0.6*t.rate
		}
		t.lastPoints, t.lastAt = t.pointsDone, now
	}
	s := Snapshot{PointsTotal: t.pointsTotal, PointsDone: t.pointsDone, WindowsTotal: t.windowsTotal, WindowsDone: t.windowsDone,
		Rate: t.rate, Elapsed: now.Sub(t.start).Round(time.Second).String()}
	if t.rate > 0 {
		s.ETASeconds = float64(t.pointsTotal-t.pointsDone) / t.rate
	}
	return s
}

// Bar renders s as one terminal line of about width columns, followed by
// note (the throttle state).
func Bar(s Snapshot, width int, note string) string {
	frac := 0.0
	if s.PointsTotal > 0 {
		frac = min(float64(s.PointsDone)/float64(s.PointsTotal), 1)
	} else if s.WindowsTotal > 0 {
		frac = float64(s.WindowsDone) / float64(s.WindowsTotal)
	}
	filled := int(frac * float64(width))
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	eta := "--"
	if s.Rate > 0 {
		eta = (time.Duration(s.ETASeconds) * time.Second).String()
	}
	line := fmt.Sprintf("[%s] %5.1f%% %d/%d points, %d/%d windows, %.0f points/s, ETA %s",
		bar, frac*100, s.PointsDone, s.PointsTotal, s.WindowsDone, s.WindowsTotal, s.Rate, eta)
	if note != "" {
		line += " — " + note
	}
	return line
}

// Report shows progress until ctx ends: on a terminal (tty) a bar redrawn
// every half second on w; otherwise a log line every interval. note returns
// the throttle state to show.
func Report(ctx context.Context, t *Tracker, tty bool, w io.Writer, logger *slog.Logger, interval time.Duration, note func() string) {
	if tty {
		interval = 500 * time.Millisecond
	} else if interval <= 0 {
		interval = 10 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintf(w, "\r\033[K%s\n", Bar(t.Snapshot(), 30, note()))
			}
			return
		case <-tick.C:
		}
		s := t.Snapshot()
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", Bar(s, 30, note()))
			continue
		}
		logger.Info("backfill progress", "points_written", s.PointsDone, "points_total", s.PointsTotal,
			"windows_done", s.WindowsDone, "windows_total", s.WindowsTotal,
			"points_per_second", int64(s.Rate), "eta", (time.Duration(s.ETASeconds) * time.Second).String(), "throttle", note())
	}
}
