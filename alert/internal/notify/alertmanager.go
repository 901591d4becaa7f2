// Package notify delivers alerts: to Alertmanager's API v2 (firing alerts
// re-sent while they fire, resolutions with endsAt, retried until accepted,
// never lost: resolutions wait in the state store's outbox) and to InfluxDB
// as bsu_alert points on every state change.
package notify

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

	"github.com/flexipack/cutover/shared/redact"
	"github.com/flexipack/cutover/shared/retry"
)

// AMAlert is one alert as Alertmanager's API v2 takes it.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Poster sends alerts to Alertmanager.
type Poster interface {
	// Post sends alerts in one request. An error marked retry.Permanent
	// means Alertmanager refused the request itself (a 4xx): sending it
	// again would not help.
	Post(ctx context.Context, alerts []AMAlert) error
}

// Alertmanager is a client of one Alertmanager's API v2.
type Alertmanager struct {
	endpoint string
	client   *http.Client
}

var _ Poster = (*Alertmanager)(nil)

// NewAlertmanager returns a client for base (e.g. http://127.0.0.1:9093),
// each request bounded by timeout.
func NewAlertmanager(base string, timeout time.Duration) (*Alertmanager, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager url %q: want http(s)://host:port", redact.URL(base))
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Alertmanager{endpoint: strings.TrimRight(base, "/") + "/api/v2/alerts", client: &http.Client{Timeout: timeout}}, nil
}

// Post implements Poster.
func (a *Alertmanager) Post(ctx context.Context, alerts []AMAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return retry.Permanent(fmt.Errorf("encode alerts: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return redact.Error(fmt.Errorf("post %d alerts to alertmanager: %w", len(alerts), err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests:
		return retry.Permanent(fmt.Errorf("alertmanager refused %d alerts: %s: %s", len(alerts), resp.Status, bytes.TrimSpace(msg)))
	default:
		return fmt.Errorf("alertmanager: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
}

// Ready asks Alertmanager's /-/ready.
func (a *Alertmanager) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(a.endpoint, "/api/v2/alerts")+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("alertmanager not ready: " + resp.Status)
	}
	return nil
}
