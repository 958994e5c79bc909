package neo4jpool

import (
	"fmt"
	"time"
)

// Thresholds of the scale recommendation, in percent of the pool. They are
// the original's, and strict: exactly 80 % is not a reason to scale up and
// exactly 20 % is not a reason to scale down.
const (
	ScaleUpAbovePercent   = 80.0
	ScaleDownBelowPercent = 20.0
)

// Action is what a [Recommendation] advises.
type Action string

// The three actions of a Recommendation.
const (
	// ActionScaleUp advises a larger pool (or fewer concurrent callers).
	ActionScaleUp Action = "scale_up"
	// ActionScaleDown advises a smaller pool.
	ActionScaleDown Action = "scale_down"
	// ActionOK advises no change.
	ActionOK Action = "ok"
)

// Recommendation is a pool-size advice with a human-readable reason.
type Recommendation struct {
	// Action is scale_up, scale_down or ok.
	Action Action `json:"action"`
	// Reason explains the action with the measurements behind it.
	Reason string `json:"reason"`
}

// UtilizationPercent returns active as a percentage of poolMax, or 0 when
// poolMax is not positive.
func UtilizationPercent(active, poolMax int64) float64 {
	if poolMax <= 0 {
		return 0
	}
	return float64(active) * 100 / float64(poolMax)
}

// FailureRatePercent returns failed as a percentage of total, or 0 when
// total is 0.
func FailureRatePercent(failed, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(failed) * 100 / float64(total)
}

// Recommend turns measurements over one window into advice:
//
//   - scale_up when a connection acquisition timed out or a borrow had to
//     queue for a free connection in the window, or when peak utilisation
//     was above ScaleUpAbovePercent;
//   - scale_down when peak utilisation was below ScaleDownBelowPercent (and
//     nothing queued);
//   - ok otherwise.
//
// peakPercent is the highest transactions-active / pool-max percentage seen
// in the window.
func Recommend(peakPercent float64, borrowQueued, acquireTimeouts uint64, window time.Duration) Recommendation {
	w := window.String()
	switch {
	case acquireTimeouts > 0:
		return Recommendation{ActionScaleUp, fmt.Sprintf(
			"%d connection acquisition(s) timed out in the last %s (peak utilisation %.0f%%)", acquireTimeouts, w, peakPercent)}
	case borrowQueued > 0:
		return Recommendation{ActionScaleUp, fmt.Sprintf(
			"%d borrow(s) waited for a free connection in the last %s (peak utilisation %.0f%%)", borrowQueued, w, peakPercent)}
	case peakPercent > ScaleUpAbovePercent:
		return Recommendation{ActionScaleUp, fmt.Sprintf(
			"peak utilisation %.0f%% in the last %s is above %.0f%%", peakPercent, w, ScaleUpAbovePercent)}
	case peakPercent < ScaleDownBelowPercent:
		return Recommendation{ActionScaleDown, fmt.Sprintf(
			"peak utilisation %.0f%% in the last %s is below %.0f%%", peakPercent, w, ScaleDownBelowPercent)}
	default:
		return Recommendation{ActionOK, fmt.Sprintf(
			"peak utilisation %.0f%% in the last %s is within %.0f%%-%.0f%%", peakPercent, w, ScaleDownBelowPercent, ScaleUpAbovePercent)}
	}
}
