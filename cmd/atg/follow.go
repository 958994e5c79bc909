package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// display shows an operation's events on stderr: a progress bar on a
// terminal, plain lines otherwise ("status running", "progress 42.0%
// nodes: 2100 of 5000 written ...", "log warn: ...").
type display struct {
	w   io.Writer
	tty bool
	bar *progressbar.ProgressBar
	// byPercent maps Percent in tenths to the bar, for operations that do
	// not count work units; otherwise the bar shows Done of Total.
	byPercent bool
	// The last plain progress line printed.
	printed     bool
	lastPhase   string
	lastPercent float64
	lastAt      time.Time
}

// newDisplay returns the display of e's stderr.
func newDisplay(e *env) *display {
	return &display{w: e.stderr, tty: e.isTerminal(e.stderr)}
}

// show displays one event (terminal events are left to the caller).
func (d *display) show(ev transport.Event) {
	switch ev.Type {
	case operations.EventStatus:
		var s operations.StatusData
		if json.Unmarshal(ev.Data, &s) == nil {
			d.line("status " + string(s.Status))
		}
	case operations.EventLog:
		var l operations.LogData
		if json.Unmarshal(ev.Data, &l) == nil {
			d.line(fmt.Sprintf("log %s: %s", l.Level, escapeControls(l.Message)))
		}
	case operations.EventProgress:
		var p operations.ProgressData
		if json.Unmarshal(ev.Data, &p) == nil {
			d.progress(p.Progress)
		}
	}
}

// line prints a line above the bar (or as is without one).
func (d *display) line(s string) {
	if d.bar != nil {
		_, _ = progressbar.Bprintln(d.bar, s)
		return
	}
	fmt.Fprintln(d.w, s)
}

// plainEvery is how long plain progress lines may pause while the percent
// moves less than one point.
const plainEvery = 5 * time.Second

// progressText is the human part of a progress report: its message, else
// its phase and counts.
func progressText(p operations.Progress) string {
	switch {
	case p.Message != "":
		return p.Message
	case p.Total > 0:
		return fmt.Sprintf("%s: %d of %d", p.Phase, p.Done, p.Total)
	}
	return p.Phase
}

// progress shows a progress report: a plain line (at most one per
// percentage point, phase or plainEvery) or the bar.
func (d *display) progress(p operations.Progress) {
	if !d.tty {
		// One line per percentage point, phase change or plainEvery, so
		// that an import of many chunks does not flood a log.
		now := time.Now()
		if d.printed && p.Phase == d.lastPhase && p.Percent < d.lastPercent+1 && p.Percent < 100 && now.Sub(d.lastAt) < plainEvery {
			return
		}
		d.printed, d.lastPhase, d.lastPercent, d.lastAt = true, p.Phase, p.Percent, now
		fmt.Fprintf(d.w, "progress %.1f%% %s\n", p.Percent, escapeControls(progressText(p)))
		return
	}
	if d.bar == nil {
		limit := p.Total
		d.byPercent = limit <= 0
		if d.byPercent {
			limit = 1000
		}
		d.bar = progressbar.NewOptions64(limit,
			progressbar.OptionSetWriter(d.w),
			progressbar.OptionSetDescription(describePhase(p.Phase)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(50*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(d.w) }),
		)
	}
	if !d.byPercent && p.Total != d.bar.GetMax64() && p.Total > 0 {
		d.bar.ChangeMax64(p.Total)
	}
	d.bar.Describe(describePhase(p.Phase))
	if d.byPercent {
		_ = d.bar.Set64(int64(p.Percent * 10))
	} else {
		_ = d.bar.Set64(p.Done)
	}
}

// describePhase pads a phase so that the bar does not move when the phase
// changes from nodes to relationships.
func describePhase(phase string) string { return fmt.Sprintf("%-13s", phase) }

// end finishes the bar: full when the operation completed, left where it
// was otherwise.
func (d *display) end(completed bool) {
	if d.bar == nil {
		return
	}
	if completed {
		_ = d.bar.Finish()
	} else {
		_ = d.bar.Exit()
	}
	d.bar = nil
}

// follow shows operation id's events after sequence number after (0: from
// the beginning) until its terminal event and returns that event's data.
// It returns ctx's error when interrupted.
func follow(ctx context.Context, s *session, id string, d *display, after int64) (operations.TerminalData, error) {
	w, err := s.Watch(ctx, id, after)
	if err != nil {
		return operations.TerminalData{}, err
	}
	defer w.Close()
	for {
		ev, err := w.Next(ctx)
		if errors.Is(err, io.EOF) {
			// Ended without a terminal event (it was not retained): ask.
			op, err := s.Get(ctx, id)
			if err != nil {
				return operations.TerminalData{}, err
			}
			if !op.Status.Terminal() {
				return operations.TerminalData{}, fmt.Errorf("the event stream of operation %s ended while it is %s", id, op.Status)
			}
			return operations.TerminalData{OperationID: id, Status: op.Status, Result: op.Result, Error: op.Error}, nil
		}
		if err != nil {
			return operations.TerminalData{}, err
		}
		if !ev.Type.Terminal() {
			d.show(ev)
			continue
		}
		var t operations.TerminalData
		if err := json.Unmarshal(ev.Data, &t); err != nil {
			return t, fmt.Errorf("decode the terminal event of operation %s: %w", id, err)
		}
		return t, nil
	}
}

// outcome reports how an operation ended: the result as indented JSON on
// stdout when it completed, one line on stderr otherwise; it returns the
// exit status (0 completed, 1 failed, 5 failed because the database was
// unavailable, 6 cancelled).
func outcome(e *env, g *globals, d *display, t operations.TerminalData) int {
	d.end(t.Status == operations.Completed)
	switch t.Status {
	case operations.Completed:
		fmt.Fprintf(e.stderr, "operation %s completed\n", t.OperationID)
		if len(t.Result) == 0 {
			t.Result = json.RawMessage("null")
		}
		var b bytes.Buffer
		if err := json.Indent(&b, t.Result, "", "  "); err != nil {
			b.Reset()
			b.Write(t.Result)
		}
		b.WriteByte('\n')
		_, _ = e.stdout.Write(b.Bytes())
		return exitOK
	case operations.Cancelled:
		g.printErr(e, fmt.Sprintf("operation %s was cancelled%s", t.OperationID, reason(t.Error)))
		return exitCancelled
	}
	g.printErr(e, fmt.Sprintf("operation %s %s%s", t.OperationID, t.Status, reason(t.Error)))
	if t.Error != nil && t.Error.Code == operations.CodeUnavailable {
		return exitUnavailable
	}
	return exitFailure
}

// reason formats an operation error as ": CODE: message", or "".
func reason(err *operations.Error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}
