package api

import (
	"bufio"
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/telemetry"
)

// NDJSON is the media type of streamed readings, one record per line.
const NDJSON = "application/x-ndjson"

func wantsNDJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == NDJSON {
			return true
		}
	}
	return false
}

// serveReadings answers a page of JSON, or with Accept: application/x-ndjson
// streams the whole range (or limit readings) without holding it in memory.
func (a *API) serveReadings(w http.ResponseWriter, r *http.Request) {
	if !wantsNDJSON(r) {
		a.serveJSON(EndpointReadings, func(r *http.Request, now time.Time) (query, error) {
			q, _, err := a.parseReadings(r, now)
			if err != nil {
				return query{}, err
			}
			return query{recent: now.Sub(q.To) < recentWithin, answer: func(ctx context.Context, rd reader.Reader) ([]byte, error) {
				return readingsPage(ctx, rd, q)
			}}, nil
		})(w, r)
		return
	}
	started := time.Now()
	q, hasLimit, err := a.parseReadings(r, a.deps.Now().UTC())
	if err != nil {
		a.fail(w, r, EndpointReadings, "", err)
		return
	}
	if !hasLimit {
		q.Limit = 0
	}
	d, err := a.deps.Router.Decide()
	if err != nil {
		a.fail(w, r, EndpointReadings, "", err)
		return
	}
	setRouteHeaders(w, d)
	store := d.Primary.Name()
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.StreamTimeout)
	defer cancel()
	err = a.limited(store, func() error { return a.stream(ctx, w, d.Primary, q) })
	switch {
	case errors.Is(err, errStreamStarted):
		a.deps.Logger.Warn("readings stream cut", "store", store, "unit", q.Unit, "err", err)
		a.metrics.requests.WithLabelValues(EndpointReadings, store, "aborted").Inc()
		panic(http.ErrAbortHandler) // the client sees a truncated stream, never a partial one that looks whole
	case err != nil:
		a.fail(w, r, EndpointReadings, store, err)
	default:
		a.metrics.observe(EndpointReadings, store, http.StatusOK, started)
	}
}

var errStreamStarted = errors.New("failed after the stream started")

// stream writes records as they come, flushing every so often; the status
// is sent with the first record, so an error before it is still a problem.
func (a *API) stream(ctx context.Context, w http.ResponseWriter, rd reader.Reader, q reader.RangeQuery) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	flusher, _ := w.(http.Flusher)
	started, n := false, 0
	buf := make([]byte, 0, 1024)
	start := func() {
		w.Header().Set("Content-Type", NDJSON)
		w.WriteHeader(http.StatusOK)
		started = true
	}
	err := rd.Readings(ctx, q, func(rec *telemetry.Record) error {
		if !started {
			start()
		}
		buf = append(appendRecord(buf[:0], rec), '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		return nil
	})
	if err == nil && !started {
		if err = unknownUnit(ctx, rd, q.Unit); err == nil {
			start()
		}
	}
	if err != nil {
		if started {
			return errors.Join(errStreamStarted, err)
		}
		return err
	}
	return bw.Flush()
}
