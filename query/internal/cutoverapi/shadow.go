package cutoverapi

import (
	"context"
	"encoding/json"
	"time"
)

// ShadowReport is the shadow-read comparisons: real reads answered by the
// serving store and, after the response, by the other one, compared.
type ShadowReport struct {
	// Recording is false when no shadow comparisons are recorded (the query
	// service is not wired to record them).
	Recording   bool             `json:"recording"`
	Comparisons int64            `json:"comparisons"`
	Mismatches  int64            `json:"mismatches"`
	Rate        float64          `json:"mismatch_rate"`
	Since       *time.Time       `json:"since,omitempty"`
	Endpoints   []ShadowEndpoint `json:"endpoints"`
	Latest      []ShadowExample  `json:"latest"`
}

// ShadowEndpoint is one endpoint's comparison counts.
type ShadowEndpoint struct {
	Endpoint    string  `json:"endpoint"`
	Comparisons int64   `json:"comparisons"`
	Mismatches  int64   `json:"mismatches"`
	Rate        float64 `json:"mismatch_rate"`
}

// ShadowExample is one recorded mismatch: the request and the first record
// on which the two stores' answers differ, both values side by side.
type ShadowExample struct {
	At       time.Time       `json:"at"`
	Endpoint string          `json:"endpoint"`
	Params   string          `json:"params"`
	Phase    string          `json:"phase"`
	Serving  string          `json:"serving_store"`
	Shadow   string          `json:"shadow_store"`
	Where    string          `json:"where"`
	Served   json.RawMessage `json:"served"`
	Shadowed json.RawMessage `json:"shadowed"`
}

func (a *API) shadowReport(ctx context.Context, examples int) (ShadowReport, error) {
	if a.shadow == nil {
		return ShadowReport{Endpoints: []ShadowEndpoint{}, Latest: []ShadowExample{}}, nil
	}
	r, err := a.shadow.ShadowReport(ctx, examples)
	if err != nil {
		return ShadowReport{}, err
	}
	r.Recording = true
	if r.Endpoints == nil {
		r.Endpoints = []ShadowEndpoint{}
	}
	if r.Latest == nil {
		r.Latest = []ShadowExample{}
	}
	return r, nil
}
