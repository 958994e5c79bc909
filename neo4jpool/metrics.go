package neo4jpool

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMetricsWindow is the sliding window over which peak utilisation,
// queued borrows and acquisition time-outs are judged for the recommendation.
const DefaultMetricsWindow = time.Minute

// windowBuckets is the resolution of the sliding window.
const windowBuckets = 60

// TxStartBuckets are the upper bounds, in seconds, of the
// atg_neo4j_tx_start_seconds histogram.
var TxStartBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Snapshot is a JSON-friendly view of one environment's pool metrics at one
// instant. All counters are totals since the environment was first
// configured (they survive reconfiguration); the *InWindow fields and the
// peak cover the last Window.
//
// What is measured, and what is not (the v5 driver exposes no pool
// statistics, see neo4j/neo4j-go-driver#637):
//
//   - TxActive counts work functions of ExecuteRead/ExecuteWrite currently
//     running: a lower bound of connections in use (it misses COMMIT time,
//     health checks and sessions opened on the raw driver).
//   - CallsInFlight counts ExecuteRead/ExecuteWrite calls between entry and
//     return, including those waiting for a connection or sleeping between
//     the driver's retries: the demand.
//   - TxStart is the time from entering ExecuteRead/ExecuteWrite to the
//     first call of the work function (driver creation on first use,
//     routing, borrowing or dialling a connection, waiting in the pool
//     queue, BEGIN). It is a proxy for acquisition time, not acquisition
//     time itself, which the driver does not expose.
//   - BorrowQueued, AcquireTimeouts, ConnectionsFailed are counted from the
//     driver's pool log lines ("Borrow queued", "Borrow time-out", "Failed to
//     connect to ..."); ConnectionsCreated and ConnectionsClosed from its
//     Bolt connection log lines ("Connected" after a successful handshake
//     and login, "Close" of such a connection). These strings are not driver
//     API; the parser is golden-tested against the pinned driver version.
//     The pool lines count what the driver logs, which is not exactly
//     "borrows that waited" and "acquisitions that timed out" (see the
//     fields): a borrow that waits more than once is counted once per wait,
//     and "Borrow time-out" is also logged when the caller's context ends
//     while a borrow waits, or when dialling a new connection times out.
//   - Idle connections and exact acquisition time are not observable.
//     ConnectionsOpenEstimate is created minus closed.
type Snapshot struct {
	// Environment is the environment name.
	Environment string `json:"environment"`
	// TakenAt is when the snapshot was taken.
	TakenAt time.Time `json:"taken_at"`
	// Window is the sliding window of the peak and *InWindow fields.
	Window time.Duration `json:"-"`
	// WindowSeconds is Window in seconds (for JSON).
	WindowSeconds float64 `json:"window_seconds"`
	// PoolMax is the configured MaxPoolSize (connections per server).
	PoolMax int64 `json:"pool_max"`
	// TxActive is the number of work functions running now.
	TxActive int64 `json:"tx_active"`
	// CallsInFlight is the number of ExecuteRead/ExecuteWrite calls running now.
	CallsInFlight int64 `json:"calls_in_flight"`
	// UtilizationPercent is TxActive / PoolMax in percent.
	UtilizationPercent float64 `json:"utilization_percent"`
	// PeakUtilizationPercent is the highest UtilizationPercent in the
	// window: work running at any moment of the window counts, including
	// work that began before it.
	PeakUtilizationPercent float64 `json:"peak_utilization_percent"`
	// BorrowQueued counts the driver's "Borrow queued" log lines: one each
	// time a borrow joins the pool's wait queue because no connection is
	// free. A borrow woken by a returned connection that finds it taken
	// queues, and is counted, again: this counts waits, not distinct
	// borrows.
	BorrowQueued uint64 `json:"borrow_queued_total"`
	// BorrowQueuedInWindow counts those in the window.
	BorrowQueuedInWindow uint64 `json:"borrow_queued_in_window"`
	// AcquireTimeouts counts the driver's "Borrow time-out" log lines. The
	// driver logs one when a borrow waiting in the queue gives up because
	// its context ended: the acquisition timeout (Config.ConnectionTimeout),
	// but equally the caller's own deadline or cancellation, a health
	// check's timeout, the chunk timeout or the retry-time bound. It also
	// logs one when dialling a new connection fails with a time-out (which
	// ConnectionsFailed counts too). It is therefore an upper bound of true
	// acquisition time-outs.
	AcquireTimeouts uint64 `json:"acquire_timeouts_total"`
	// AcquireTimeoutsInWindow counts those in the window.
	AcquireTimeoutsInWindow uint64 `json:"acquire_timeouts_in_window"`
	// ConnectionsCreated counts connections that completed handshake and login.
	ConnectionsCreated uint64 `json:"connections_created_total"`
	// ConnectionsFailed counts connection attempts that failed.
	ConnectionsFailed uint64 `json:"connections_failed_total"`
	// ConnectionsClosed counts created connections that were closed.
	ConnectionsClosed uint64 `json:"connections_closed_total"`
	// ConnectionsOpenEstimate is ConnectionsCreated - ConnectionsClosed.
	ConnectionsOpenEstimate int64 `json:"connections_open_estimate"`
	// TxCommitted counts ExecuteRead/ExecuteWrite/ExecuteOnce calls that succeeded.
	TxCommitted uint64 `json:"tx_committed_total"`
	// TxFailed counts ExecuteRead/ExecuteWrite calls that returned an error.
	TxFailed uint64 `json:"tx_failed_total"`
	// TxRetried counts ExecuteRead/ExecuteWrite calls whose work function
	// the driver ran more than once.
	TxRetried uint64 `json:"tx_retried_total"`
	// TxAttempts counts work-function invocations.
	TxAttempts uint64 `json:"tx_attempts_total"`
	// FailureRatePercent is TxFailed / (TxCommitted + TxFailed) in percent.
	FailureRatePercent float64 `json:"failure_rate_percent"`
	// TxStart summarises the time-to-first-callback histogram of the calls
	// whose work function ran.
	TxStart TxStartStats `json:"tx_start"`
	// TxStartFailed summarises, for the calls that failed before their
	// work function ever ran (no connection within the acquisition
	// timeout, the caller's deadline while queued, an unreachable
	// database), the time from the call to its failure: the worst waits,
	// which TxStart does not include.
	TxStartFailed TxStartStats `json:"tx_start_failed"`
	// Recommendation is the pool-size advice for the window.
	Recommendation Recommendation `json:"recommendation"`
}

// TxStartStats summarises the time from calling ExecuteRead/ExecuteWrite to
// the first run of the work function. Quantiles are bucket upper bounds
// (TxStartBuckets): a quantile that falls within the buckets is the upper
// bound of the bucket it falls in, so it over-estimates by less than that
// bucket's width; one that falls beyond the last bound (60 s) is reported
// as 60 s, an under-estimate of unknown size.
type TxStartStats struct {
	// Count is the number of calls observed.
	Count uint64 `json:"count"`
	// SumSeconds is the total of the observed times.
	SumSeconds float64 `json:"sum_seconds"`
	// MeanSeconds is SumSeconds / Count (0 when Count is 0).
	MeanSeconds float64 `json:"mean_seconds"`
	// P50Seconds is the median (bucket upper bound, at most 60).
	P50Seconds float64 `json:"p50_seconds"`
	// P95Seconds is the 95th percentile (bucket upper bound, at most 60);
	// P95 far above P50 means callers queue for connections.
	P95Seconds float64 `json:"p95_seconds"`
	// P99Seconds is the 99th percentile (bucket upper bound, at most 60).
	P99Seconds float64 `json:"p99_seconds"`
}

// envMetrics holds the live measurements of one environment.
type envMetrics struct {
	env     string
	win     *slidingWindow
	started time.Time // when measuring began: the window is full one span later

	poolMax       atomic.Int64
	txActive      atomic.Int64
	callsInFlight atomic.Int64

	txCommitted atomic.Uint64
	txFailed    atomic.Uint64
	txRetried   atomic.Uint64
	txAttempts  atomic.Uint64

	borrowQueued    atomic.Uint64
	acquireTimeouts atomic.Uint64
	connCreated     atomic.Uint64
	connFailed      atomic.Uint64
	connClosed      atomic.Uint64

	txStart       *histogram
	txStartFailed *histogram // calls that failed before their work ran

	connMu    sync.Mutex
	openConns map[string]struct{} // Bolt log ids of connections that logged "Connected"

	healthMu   sync.Mutex
	lastHealth *Health
}

func newEnvMetrics(env string, window time.Duration, now func() time.Time) *envMetrics {
	win := newSlidingWindow(window, now)
	return &envMetrics{
		env:           env,
		win:           win,
		started:       win.now(),
		txStart:       newHistogram(TxStartBuckets),
		txStartFailed: newHistogram(TxStartBuckets),
		openConns:     make(map[string]struct{}),
	}
}

// callBegin marks the start of an ExecuteRead/ExecuteWrite call.
func (e *envMetrics) callBegin() { e.callsInFlight.Add(1) }

// callEnd records the outcome of a call that began at start and whose
// work function ran attempts times: a failed call whose work never ran
// (no connection, no transaction) adds its wait to txStartFailed.
func (e *envMetrics) callEnd(err error, attempts int, start time.Time) {
	e.callsInFlight.Add(-1)
	if err != nil && attempts == 0 {
		e.txStartFailed.observe(time.Since(start).Seconds())
	}
	if err == nil {
		e.txCommitted.Add(1)
	} else {
		e.txFailed.Add(1)
	}
	if attempts > 1 {
		e.txRetried.Add(1)
	}
}

// txBegin marks the start of a work function; txEnd its end.
func (e *envMetrics) txBegin() {
	e.txAttempts.Add(1)
	n := e.txActive.Add(1)
	e.win.observeActive(n)
}

// txEnd records the count before the decrement too: with the counts
// recorded at each begin and end, and the current count, the window's peak
// is exact even for work that began before the window and is still
// running, or ended, in it.
func (e *envMetrics) txEnd() {
	n := e.txActive.Add(-1)
	e.win.observeActive(n + 1)
}

// observe counts one classified driver log event.
func (e *envMetrics) observe(ev logEvent, id string) {
	switch ev {
	case eventBorrowQueued:
		e.borrowQueued.Add(1)
		e.win.addQueued()
	case eventAcquireTimeout:
		e.acquireTimeouts.Add(1)
		e.win.addTimeout()
	case eventConnectFailed:
		e.connFailed.Add(1)
	case eventConnected:
		e.connMu.Lock()
		if _, dup := e.openConns[id]; !dup {
			e.openConns[id] = struct{}{}
			e.connCreated.Add(1)
		}
		e.connMu.Unlock()
	case eventConnectionClose:
		// Connections that failed their handshake or login also log
		// "Close"; count only those that were created.
		e.connMu.Lock()
		if _, ok := e.openConns[id]; ok {
			delete(e.openConns, id)
			e.connClosed.Add(1)
		}
		e.connMu.Unlock()
	}
}

func (e *envMetrics) setHealth(h Health) {
	e.healthMu.Lock()
	e.lastHealth = &h
	e.healthMu.Unlock()
}

func (e *envMetrics) health() (Health, bool) {
	e.healthMu.Lock()
	defer e.healthMu.Unlock()
	if e.lastHealth == nil {
		return Health{}, false
	}
	return *e.lastHealth, true
}

// snapshot computes a Snapshot now.
func (e *envMetrics) snapshot() Snapshot {
	s, _ := e.collect(true)
	return s
}

// collect computes a Snapshot now and returns with it the reading of the
// tx-start histogram its TxStart was computed from, so that a scrape reads
// the histogram once. Without explain, Recommendation.Reason is left empty
// (the Prometheus collector exports only the action).
func (e *envMetrics) collect(explain bool) (Snapshot, histogramReading) {
	s, r, _ := e.collectAll(explain)
	return s, r
}

// collectAll is collect, also returning the reading of the failed-start
// histogram.
func (e *envMetrics) collectAll(explain bool) (Snapshot, histogramReading, histogramReading) {
	now := e.win.now()
	poolMax := e.poolMax.Load()
	active := e.txActive.Load()
	peak, queuedW, timeoutsW := e.win.totals(now)
	peak = max(peak, active)
	committed, failed := e.txCommitted.Load(), e.txFailed.Load()
	created, closed := e.connCreated.Load(), e.connClosed.Load()
	peakPct := UtilizationPercent(peak, poolMax)
	txStart := e.txStart.read()
	txStartFailed := e.txStartFailed.read()
	return Snapshot{
		Environment:             e.env,
		TakenAt:                 now,
		Window:                  e.win.span,
		WindowSeconds:           e.win.span.Seconds(),
		PoolMax:                 poolMax,
		TxActive:                active,
		CallsInFlight:           e.callsInFlight.Load(),
		UtilizationPercent:      UtilizationPercent(active, poolMax),
		PeakUtilizationPercent:  peakPct,
		BorrowQueued:            e.borrowQueued.Load(),
		BorrowQueuedInWindow:    queuedW,
		AcquireTimeouts:         e.acquireTimeouts.Load(),
		AcquireTimeoutsInWindow: timeoutsW,
		ConnectionsCreated:      created,
		ConnectionsFailed:       e.connFailed.Load(),
		ConnectionsClosed:       closed,
		ConnectionsOpenEstimate: int64(created) - int64(closed),
		TxCommitted:             committed,
		TxFailed:                failed,
		TxRetried:               e.txRetried.Load(),
		TxAttempts:              e.txAttempts.Load(),
		FailureRatePercent:      FailureRatePercent(failed, committed+failed),
		TxStart:                 e.txStart.stats(txStart),
		TxStartFailed:           e.txStartFailed.stats(txStartFailed),
		Recommendation:          recommendObserved(peakPct, queuedW, timeoutsW, e.win.span, now.Sub(e.started), explain),
	}, txStart, txStartFailed
}

// slidingWindow keeps per-bucket maxima and counts over the last span.
type slidingWindow struct {
	span  time.Duration
	width time.Duration
	now   func() time.Time

	mu      sync.Mutex
	buckets [windowBuckets]winBucket
}

type winBucket struct {
	slot     int64
	peak     int64
	queued   uint64
	timeouts uint64
}

func newSlidingWindow(span time.Duration, now func() time.Time) *slidingWindow {
	if span <= 0 {
		span = DefaultMetricsWindow
	}
	if now == nil {
		now = time.Now
	}
	width := max(span/windowBuckets, time.Millisecond)
	return &slidingWindow{span: span, width: width, now: now}
}

func (w *slidingWindow) bucketLocked(t time.Time) *winBucket {
	slot := t.UnixNano() / int64(w.width)
	b := &w.buckets[uint64(slot)%windowBuckets]
	if b.slot != slot {
		*b = winBucket{slot: slot}
	}
	return b
}

func (w *slidingWindow) observeActive(n int64) {
	t := w.now()
	w.mu.Lock()
	b := w.bucketLocked(t)
	b.peak = max(b.peak, n)
	w.mu.Unlock()
}

func (w *slidingWindow) addQueued() {
	t := w.now()
	w.mu.Lock()
	w.bucketLocked(t).queued++
	w.mu.Unlock()
}

func (w *slidingWindow) addTimeout() {
	t := w.now()
	w.mu.Lock()
	w.bucketLocked(t).timeouts++
	w.mu.Unlock()
}

// totals returns the peak and the counts of the buckets within the span
// ending at t.
func (w *slidingWindow) totals(t time.Time) (peak int64, queued, timeouts uint64) {
	cur := t.UnixNano() / int64(w.width)
	oldest := cur - int64(w.span/w.width) + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.slot < oldest || b.slot > cur {
			continue
		}
		peak = max(peak, b.peak)
		queued += b.queued
		timeouts += b.timeouts
	}
	return peak, queued, timeouts
}

// histogram is a fixed-bucket, lock-free histogram.
type histogram struct {
	bounds  []float64
	counts  []atomic.Uint64 // len(bounds)+1; the last is +Inf
	sumBits atomic.Uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(seconds float64) {
	i := len(h.bounds)
	for j, b := range h.bounds {
		if seconds <= b {
			i = j
			break
		}
	}
	h.counts[i].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+seconds)) {
			return
		}
	}
}

// histogramReading is one reading of a histogram.
type histogramReading struct {
	count      uint64             // observations, +Inf bucket included
	sum        float64            // sum of the observations
	cumulative map[float64]uint64 // upper bound -> observations <= bound
}

// read returns the total count, the sum and the cumulative bucket counts.
// Observations that land while it runs may be partly included.
func (h *histogram) read() histogramReading {
	r := histogramReading{cumulative: make(map[float64]uint64, len(h.bounds))}
	for i, b := range h.bounds {
		r.count += h.counts[i].Load()
		r.cumulative[b] = r.count
	}
	r.count += h.counts[len(h.bounds)].Load()
	r.sum = math.Float64frombits(h.sumBits.Load())
	return r
}

// stats summarises the reading r of h (see TxStartStats).
func (h *histogram) stats(r histogramReading) TxStartStats {
	count, sum, cum := r.count, r.sum, r.cumulative
	s := TxStartStats{Count: count, SumSeconds: sum}
	if count == 0 {
		return s
	}
	s.MeanSeconds = sum / float64(count)
	q := func(p float64) float64 {
		rank := uint64(math.Ceil(p * float64(count)))
		for _, b := range h.bounds {
			if cum[b] >= rank {
				return b
			}
		}
		return h.bounds[len(h.bounds)-1] // beyond the last bound: report the last bound
	}
	s.P50Seconds, s.P95Seconds, s.P99Seconds = q(0.50), q(0.95), q(0.99)
	return s
}
