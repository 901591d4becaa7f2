package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/retry"
)

// influx talks to an InfluxDB 1.8 over HTTP: InfluxQL on /query, line
// protocol on /write.
type influx struct {
	base string
	hc   *http.Client
}

// influxQL runs stmt (in db when not empty) and returns the JSON answer; a
// statement error in the answer is an error.
func (c *influx) influxQL(ctx context.Context, db, stmt string) ([]byte, error) {
	form := url.Values{"q": {stmt}}
	if db != "" {
		form.Set("db", db)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("influxql %.120q: %w", stmt, err)
	}
	var res struct {
		Error   string `json:"error"`
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("influxql %.120q: answer is not JSON: %w", stmt, err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("influxql %.120q: %s", stmt, res.Error)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxql %.120q: %s", stmt, r.Error)
		}
	}
	return body, nil
}

// databaseExists reports whether db exists.
func (c *influx) databaseExists(ctx context.Context, db string) (bool, error) {
	body, err := c.influxQL(ctx, "", "SHOW DATABASES")
	if err != nil {
		return false, err
	}
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]string `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return false, fmt.Errorf("SHOW DATABASES: %w", err)
	}
	for _, r := range res.Results {
		for _, s := range r.Series {
			for _, v := range s.Values {
				if len(v) > 0 && v[0] == db {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// write posts line protocol (ms precision) to db, retrying what InfluxDB
// asks to retry (429, 5xx: the cache is full while it snapshots) and
// network errors, with back-off.
func (c *influx) write(ctx context.Context, db string, lines []byte) error {
	u := c.base + "/write?precision=ms&db=" + url.QueryEscape(db)
	attempt := 0
	err := retry.Do(ctx, retry.Policy{Initial: 250 * time.Millisecond, Max: 8 * time.Second, MaxAttempts: 10}, func(ctx context.Context) error {
		attempt++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(lines))
		if err != nil {
			return retry.Permanent(err)
		}
		_, err = c.do(req)
		var se *statusError
		if err != nil && errors.As(err, &se) && se.code != http.StatusTooManyRequests && se.code < 500 {
			return retry.Permanent(err)
		}
		return err
	})
	var stopped *retry.StoppedError
	switch {
	case errors.As(err, &stopped):
		return stopped.Err
	case err != nil:
		return fmt.Errorf("write to %s (attempt %d): %w", db, attempt, err)
	}
	return nil
}

// statusError is a non-2xx answer.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (c *influx) do(req *http.Request) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	return body, nil
}

// influxQLSeriesRows counts the value rows of an InfluxQL JSON answer.
func influxQLSeriesRows(body []byte) (int, error) {
	var res struct {
		Results []struct {
			Series []struct {
				Values []json.RawMessage `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range res.Results {
		for _, s := range r.Series {
			n += len(s.Values)
		}
	}
	return n, nil
}
