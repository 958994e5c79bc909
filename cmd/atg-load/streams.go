package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/transport"
)

// streamsPerKey is how many held operations (and streams) one key opens in
// the open-streams phase: below the default ATG_MAX_OPS_PER_KEY (10) and,
// at two requests each, within the default burst (20).
const streamsPerKey = 5

// StreamsReport is the outcome of the open-streams phase.
type StreamsReport struct {
	// Requested is how many streams were to be opened; Opened how many
	// delivered their first event; Completed how many ended with the
	// terminal event after the release.
	Requested int `json:"requested"`
	Opened    int `json:"opened"`
	Completed int `json:"completed"`
	// Keys is how many API keys shared them (streamsPerKey each).
	Keys int `json:"keys"`
	// OpenSeconds is the time to submit every operation and receive every
	// stream's first event.
	OpenSeconds float64 `json:"open_seconds"`
	// HeldSeconds is how long all streams were held open.
	HeldSeconds float64 `json:"held_seconds"`
	// ServerInFlight is atg_http_requests_in_flight while they were held
	// (the server's own count of open requests, the scrape included).
	ServerInFlight float64 `json:"server_in_flight"`
	// ReleaseToAllTerminalSeconds is the time from the release to the last
	// terminal event.
	ReleaseToAllTerminalSeconds float64 `json:"release_to_all_terminal_seconds"`
	// FirstEvent is the time from opening a stream to its first event;
	// ReleaseToTerminal the time from the release to each terminal event.
	FirstEvent        *Latency `json:"first_event,omitempty"`
	ReleaseToTerminal *Latency `json:"release_to_terminal,omitempty"`
	// MemoryBefore is the sample the per-stream figures start from (taken
	// just before the phase, after GC).
	MemoryBefore *MemSample `json:"memory_before,omitempty"`
	// MemoryOpen is the server's memory with every stream open (as is and
	// after a forced GC); MemoryAfter once they all ended and closed.
	MemoryOpen   *MemSample `json:"memory_open,omitempty"`
	MemoryOpenGC *MemSample `json:"memory_open_gc,omitempty"`
	MemoryAfter  *MemSample `json:"memory_after,omitempty"`
	// PerStreamRSSBytes is (RSS open - RSS before) / opened and
	// PerStreamHeapBytes (live heap open, after GC - live heap before) /
	// opened, with before the sample taken just before the phase (after GC).
	PerStreamRSSBytes  int64 `json:"per_stream_rss_bytes"`
	PerStreamHeapBytes int64 `json:"per_stream_heap_bytes,omitempty"`
	// Errors are the phase's own failures (the requests are in Phase).
	Errors []string `json:"errors,omitempty"`
	// Phase counts the phase's requests like the load phase.
	Phase PhaseReport `json:"requests"`
}

// isRateLimited reports whether err is a 429 answer.
func isRateLimited(err error) bool {
	var ae *transport.Error
	return errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests
}

// retryAfter returns the Retry-After of a 429 answer (0 if none).
func retryAfter(err error) time.Duration {
	var ae *transport.Error
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// runStreams opens n event streams to load-hold operations, holds them for
// hold (the memory is sampled after 2×settle, or at once when hold is
// shorter), releases the operations and waits for every stream to end.
// before is the memory sample to compare with.
func runStreams(ctx context.Context, t target, plain *http.Client, baseURL string, n int, hold, settle time.Duration, before MemSample, progress func(string, ...any)) *StreamsReport {
	keys := t.StreamKeys()
	rep := &StreamsReport{Requested: n}
	if before.RSSBytes > 0 {
		rep.MemoryBefore = &before
	}
	need := (n + streamsPerKey - 1) / streamsPerKey
	if len(keys) < need {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%d streams need %d keys, have %d", n, need, len(keys)))
		return rep
	}
	keys = keys[:need]
	rep.Keys = len(keys)
	rec := newRecorder("streams")
	phaseStart := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu        sync.Mutex
		firsts    []time.Duration
		terminals []time.Time
		errs      []string
		opened    atomic.Int64
	)
	addErr := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, s)
		}
	}
	allOpen := make(chan struct{})
	var openOnce sync.Once
	var wg sync.WaitGroup
	var clients []*http.Client
	for k, key := range keys {
		hc := newHTTPClient(rec)
		clients = append(clients, hc)
		opts := transport.ClientOptions{BaseURL: baseURL, APIKey: key, UserAgent: "atg-load", Version: atg.Version, HTTPClient: hc, MaxRetries: -1}
		calls, err := transport.NewClient(opts)
		if err != nil {
			addErr(err.Error())
			continue
		}
		opts.MaxRetries = 0
		events, _ := transport.NewClient(opts)
		count := min(streamsPerKey, n-k*streamsPerKey)
		wg.Go(func() {
			for range count {
				start := time.Now()
				sub, err := calls.Submit(ctx, holdTypeName, map[string]any{}, "")
				for try := 0; try < 10 && isRateLimited(err); try++ {
					// The limits at work (counted as 429 on the wire): wait and
					// submit again.
					sleep(ctx, min(max(retryAfter(err), 100*time.Millisecond), transport.MaxRetryAfter))
					start = time.Now()
					sub, err = calls.Submit(ctx, holdTypeName, map[string]any{}, "")
				}
				if err != nil {
					rec.callFailed(routeSubmit, err)
					addErr("submit: " + err.Error())
					continue
				}
				rec.succeeded(routeSubmit, time.Since(start))
				wg.Go(func() {
					opening := time.Now()
					err := watch(ctx, events, rec, sub.OperationID, time.Time{}, func() {
						mu.Lock()
						firsts = append(firsts, time.Since(opening))
						mu.Unlock()
						if opened.Add(1) == int64(n) {
							openOnce.Do(func() { close(allOpen) })
						}
					})
					if err != nil {
						addErr("watch: " + err.Error())
						return
					}
					mu.Lock()
					terminals = append(terminals, time.Now())
					mu.Unlock()
				})
			}
		})
	}
	defer func() {
		for _, hc := range clients {
			closeIdle(hc)
		}
	}()

	select {
	case <-allOpen:
	case <-time.After(2 * time.Minute):
		addErr(fmt.Sprintf("only %d of %d streams delivered a first event within 2 minutes", opened.Load(), n))
	case <-ctx.Done():
	}
	rep.Opened = int(opened.Load())
	rep.OpenSeconds = round(time.Since(phaseStart).Seconds(), 3)
	progress("%d streams open after %.1f s; holding them %s", rep.Opened, rep.OpenSeconds, hold)
	heldFrom := time.Now()
	sleep(ctx, min(2*settle, hold))
	if s, err := t.Memory(ctx, false); err == nil {
		rep.MemoryOpen = &s
	}
	if s, err := t.Memory(ctx, true); err == nil {
		rep.MemoryOpenGC = &s
	}
	if m, err := scrapeMetrics(ctx, plain, baseURL); err == nil {
		rep.ServerInFlight = m.sum("atg_http_requests_in_flight", nil)
	}
	sleep(ctx, hold-time.Since(heldFrom))
	rep.HeldSeconds = round(time.Since(heldFrom).Seconds(), 3)

	released := time.Now()
	if err := t.Release(ctx); err != nil {
		addErr("release: " + err.Error())
		cancel()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		addErr("streams still open 2 minutes after the release; cancelled")
		cancel()
		<-done
	}
	for _, hc := range clients {
		closeIdle(hc)
	}
	rep.Completed = len(terminals)
	if len(terminals) > 0 {
		d := make([]time.Duration, len(terminals))
		for i, at := range terminals {
			d[i] = at.Sub(released)
		}
		rep.ReleaseToTerminal = summarize(d)
		rep.ReleaseToAllTerminalSeconds = round(slices.Max(d).Seconds(), 3)
	}
	rep.FirstEvent = summarize(firsts)
	sleep(ctx, settle)
	if s, err := t.Memory(ctx, true); err == nil {
		rep.MemoryAfter = &s
	}
	if rep.MemoryOpen != nil && rep.Opened > 0 {
		rep.PerStreamRSSBytes = (rep.MemoryOpen.RSSBytes - before.RSSBytes) / int64(rep.Opened)
	}
	if rep.MemoryOpenGC != nil && rep.Opened > 0 {
		if rep.MemoryOpenGC.Heap != nil && before.Heap != nil {
			rep.PerStreamHeapBytes = (int64(rep.MemoryOpenGC.Heap.AllocBytes) - int64(before.Heap.AllocBytes)) / int64(rep.Opened)
		}
	}
	rep.Errors = errs
	rep.Phase = rec.report(time.Since(phaseStart))
	return rep
}
