package operations

import "fmt"

// Status is the state of an operation. Operations move
// queued → running → completed | failed | cancelled (or straight from queued
// to cancelled); a terminal state never changes.
type Status string

// The operation states.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Completed Status = "completed"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Statuses lists every status in lifecycle order.
func Statuses() []Status { return []Status{Queued, Running, Completed, Failed, Cancelled} }

// Terminal reports whether s is completed, failed or cancelled.
func (s Status) Terminal() bool { return s == Completed || s == Failed || s == Cancelled }

// ParseStatus returns the Status named s, or an error listing the valid ones.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown status %q: must be one of queued, running, completed, failed, cancelled", s)
}

// canMove reports whether the state machine allows from → to.
func canMove(from, to Status) bool {
	switch from {
	case Queued:
		return to == Running || to == Cancelled || to == Failed
	case Running:
		return to == Completed || to == Failed || to == Cancelled
	}
	return false
}
