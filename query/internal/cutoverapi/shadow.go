package cutoverapi

import (
	"context"

	"github.com/flexipack/cutover/shared/cutover"
)

// ShadowSource reads the shadow-read comparisons the query service records
// in the state store (*cutover.Store implements it).
type ShadowSource interface {
	ShadowStats(ctx context.Context, version int64) (cutover.ShadowStats, error)
	ShadowMismatches(ctx context.Context, version int64, limit int) ([]cutover.ShadowMismatch, error)
}

var _ ShadowSource = (*cutover.Store)(nil)

// ShadowReport is the shadow-read comparisons: real reads answered by the
// serving store and, after the response, by the other one, compared.
type ShadowReport struct {
	// Recording is false when the API has no access to the recorded
	// comparisons.
	Recording bool `json:"recording"`
	// Current counts the comparisons of the current phase version (what
	// the gate into influx-primary weighs); All counts every version.
	Current cutover.ShadowStats `json:"current"`
	All     cutover.ShadowStats `json:"all"`
	// Latest are the newest mismatches of any version, newest first.
	Latest []cutover.ShadowMismatch `json:"latest"`
}

func (a *API) shadowReport(ctx context.Context, version int64, examples int) (ShadowReport, error) {
	r := ShadowReport{Latest: []cutover.ShadowMismatch{},
		Current: cutover.ShadowStats{PhaseVersion: version, Endpoints: []cutover.ShadowCount{}}, All: cutover.ShadowStats{Endpoints: []cutover.ShadowCount{}}}
	if a.shadow == nil {
		return r, nil
	}
	var err error
	if r.Current, err = a.shadow.ShadowStats(ctx, version); err != nil {
		return r, err
	}
	if r.All, err = a.shadow.ShadowStats(ctx, 0); err != nil {
		return r, err
	}
	if r.Latest, err = a.shadow.ShadowMismatches(ctx, 0, examples); err != nil {
		return r, err
	}
	r.Recording = true
	return r, nil
}
