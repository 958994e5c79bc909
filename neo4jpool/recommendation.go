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
	// ActionNotEnoughData says the measurements do not yet cover a full
	// window (the process is younger than it) and nothing argues for a
	// larger pool: too early to advise a smaller one, or no change.
	ActionNotEnoughData Action = "not_enough_data"
)

// Actions lists every Action a Recommendation may carry.
var Actions = []Action{ActionScaleUp, ActionScaleDown, ActionOK, ActionNotEnoughData}

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
//   - scale_up when acquireTimeouts or borrowQueued is not zero, or when
//     peak utilisation was above ScaleUpAbovePercent;
//   - scale_down when peak utilisation was below ScaleDownBelowPercent (and
//     both counts are zero);
//   - ok otherwise.
//
// peakPercent is the highest transactions-active / pool-max percentage seen
// in the window. The manager passes the counts of the driver's "Borrow
// time-out" and "Borrow queued" log lines in the window (see
// [Snapshot.AcquireTimeouts] and [Snapshot.BorrowQueued]) and treats every
// one as a sign of a pool too small. That is not always so: "Borrow
// time-out" is also logged when a caller's context ends (cancellation, its
// own deadline, a health check's timeout) while its borrow waits, and when
// dialling a new connection times out (an unreachable server), and a
// borrow that waits twice is counted twice. The advice does not tell these
// cases apart. The reason names the count that decided.
func Recommend(peakPercent float64, borrowQueued, acquireTimeouts uint64, window time.Duration) Recommendation {
	return recommend(peakPercent, borrowQueued, acquireTimeouts, window, true)
}

// recommendObserved is recommend for measurements that cover observed of
// the window: before a full window, evidence for a larger pool (time-outs,
// queued borrows, a peak above ScaleUpAbovePercent) still advises
// scale_up, and anything else is ActionNotEnoughData.
func recommendObserved(peakPercent float64, borrowQueued, acquireTimeouts uint64, window, observed time.Duration, explain bool) Recommendation {
	r := recommend(peakPercent, borrowQueued, acquireTimeouts, window, explain)
	if observed >= window || r.Action == ActionScaleUp {
		return r
	}
	if !explain {
		return Recommendation{Action: ActionNotEnoughData}
	}
	return Recommendation{ActionNotEnoughData, fmt.Sprintf(
		"not enough data: measured for %s of the %s window (peak utilisation %.0f%% so far)",
		observed.Round(100*time.Millisecond), window, peakPercent)}
}

// recommend is Recommend; without explain it leaves Reason empty and
// formats nothing.
func recommend(peakPercent float64, borrowQueued, acquireTimeouts uint64, window time.Duration, explain bool) Recommendation {
	advise := func(a Action, format string, args ...any) Recommendation {
		if !explain {
			return Recommendation{Action: a}
		}
		return Recommendation{a, fmt.Sprintf(format, args...)}
	}
	switch {
	case acquireTimeouts > 0:
		return advise(ActionScaleUp,
			"%d connection borrow(s) timed out or were given up in the last %s (driver log \"Borrow time-out\"; peak utilisation %.0f%%)",
			acquireTimeouts, window, peakPercent)
	case borrowQueued > 0:
		return advise(ActionScaleUp,
			"borrows waited for a free connection %d time(s) in the last %s (peak utilisation %.0f%%)", borrowQueued, window, peakPercent)
	case peakPercent > ScaleUpAbovePercent:
		return advise(ActionScaleUp,
			"peak utilisation %.0f%% in the last %s is above %.0f%%", peakPercent, window, ScaleUpAbovePercent)
	case peakPercent < ScaleDownBelowPercent:
		return advise(ActionScaleDown,
			"peak utilisation %.0f%% in the last %s is below %.0f%%", peakPercent, window, ScaleDownBelowPercent)
	default:
		return advise(ActionOK,
			"peak utilisation %.0f%% in the last %s is within %.0f%%-%.0f%%", peakPercent, window, ScaleDownBelowPercent, ScaleUpAbovePercent)
	}
}
