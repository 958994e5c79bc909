package neo4jpool

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a settable clock for the sliding window.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSlidingWindowPeakExpires(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(10)

	for range 9 {
		em.txBegin()
	}
	for range 9 {
		em.txEnd()
	}
	s := em.snapshot()
	if s.TxActive != 0 || s.PeakUtilizationPercent != 90 || s.UtilizationPercent != 0 {
		t.Fatalf("after a burst of 9/10: active %d, peak %.1f, util %.1f", s.TxActive, s.PeakUtilizationPercent, s.UtilizationPercent)
	}
	if s.Recommendation.Action != ActionScaleUp {
		t.Errorf("peak 90%%: got %+v", s.Recommendation)
	}

	clock.advance(30 * time.Second)
	if got := em.snapshot().PeakUtilizationPercent; got != 90 {
		t.Errorf("30s later the peak is still in the window: got %.1f", got)
	}
	clock.advance(31 * time.Second)
	s = em.snapshot()
	if s.PeakUtilizationPercent != 0 || s.Recommendation.Action != ActionScaleDown {
		t.Errorf("61s later the burst left the window: peak %.1f, %+v", s.PeakUtilizationPercent, s.Recommendation)
	}
	if s.TxAttempts != 9 {
		t.Errorf("attempts: %d", s.TxAttempts)
	}
}

func TestSlidingWindowCurrentActiveCountsAsPeak(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(4)
	em.txBegin()
	em.txBegin()
	clock.advance(10 * time.Minute) // long-running transactions: no new events
	s := em.snapshot()
	if s.PeakUtilizationPercent != 50 || s.UtilizationPercent != 50 {
		t.Errorf("2 of 4 still active: peak %.1f util %.1f", s.PeakUtilizationPercent, s.UtilizationPercent)
	}
}

func TestSlidingWindowQueuedAndTimeouts(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(100)
	em.observe(eventBorrowQueued, "")
	s := em.snapshot()
	if s.Recommendation.Action != ActionScaleUp || !strings.Contains(s.Recommendation.Reason, "waited for a free connection") {
		t.Errorf("queued borrow: %+v", s.Recommendation)
	}
	clock.advance(2 * time.Minute)
	em.observe(eventAcquireTimeout, "")
	s = em.snapshot()
	if s.BorrowQueuedInWindow != 0 || s.BorrowQueued != 1 || s.AcquireTimeoutsInWindow != 1 {
		t.Errorf("window: %+v", s)
	}
	if s.Recommendation.Action != ActionScaleUp || !strings.Contains(s.Recommendation.Reason, "timed out") {
		t.Errorf("timeout: %+v", s.Recommendation)
	}
}

// PM-1, PM-2, PM-3 and PM-C1 of the original, as pure computations.
func TestUtilizationAndRecommendationThresholds(t *testing.T) {
	if got := UtilizationPercent(40, 50); got != 80 {
		t.Errorf("PM-1 utilisation: %v", got)
	}
	if got := FailureRatePercent(10, 1000); got != 1 {
		t.Errorf("PM-1 failure rate: %v", got)
	}
	if UtilizationPercent(3, 0) != 0 || FailureRatePercent(3, 0) != 0 {
		t.Error("PM-C1 zero denominators")
	}
	cases := []struct {
		active, max int64
		want        Action
	}{
		{45, 50, ActionScaleUp},    // PM-2: 90 %
		{5, 50, ActionScaleDown},   // PM-3: 10 %
		{40, 50, ActionOK},         // PM-C1: exactly 80 % is not above
		{10, 50, ActionOK},         // PM-C1: exactly 20 % is not below
		{41, 50, ActionScaleUp},    // 82 %
		{9, 50, ActionScaleDown},   // 18 %
		{0, 50, ActionScaleDown},   // idle
		{25, 50, ActionOK},         // 50 %
		{60, 50, ActionScaleUp},    // more work than connections cannot happen, but is still "up"
		{1, 1, ActionScaleUp},      // 100 %
		{2, 10, ActionOK},          // 20 %
		{3, 10, ActionOK},          // 30 %
		{8, 10, ActionOK},          // 80 %
		{9, 10, ActionScaleUp},     // 90 %
		{1, 10, ActionScaleDown},   // 10 %
		{0, 0, ActionScaleDown},    // unconfigured pool: 0 %
		{45, 100, ActionOK},        // 45 %
		{81, 100, ActionScaleUp},   // 81 %
		{19, 100, ActionScaleDown}, // 19 %
	}
	for _, c := range cases {
		r := Recommend(UtilizationPercent(c.active, c.max), 0, 0, time.Minute)
		if r.Action != c.want {
			t.Errorf("%d/%d: got %s (%s), want %s", c.active, c.max, r.Action, r.Reason, c.want)
		}
		if r.Reason == "" {
			t.Errorf("%d/%d: empty reason", c.active, c.max)
		}
	}
}

func TestHistogramStats(t *testing.T) {
	h := newHistogram(TxStartBuckets)
	for range 90 {
		h.observe(0.0008) // <= 1 ms
	}
	for range 9 {
		h.observe(0.2) // <= 250 ms
	}
	h.observe(100) // beyond the last bucket
	s := h.stats(h.read())
	if s.Count != 100 || s.P50Seconds != 0.001 || s.P95Seconds != 0.25 || s.P99Seconds != 0.25 {
		t.Errorf("stats: %+v", s)
	}
	if s.SumSeconds < 101.8 || s.SumSeconds > 101.9 {
		t.Errorf("sum: %v", s.SumSeconds)
	}
	r := h.read()
	count, cum := r.count, r.cumulative
	if count != 100 || cum[0.001] != 90 || cum[0.25] != 99 || cum[60] != 99 {
		t.Errorf("cumulative: %d %v", count, cum)
	}

	// Beyond the last bound, quantiles are reported as the last bound: an
	// under-estimate, as TxStartStats documents.
	slow := newHistogram(TxStartBuckets)
	slow.observe(100)
	slow.observe(200)
	if s := slow.stats(slow.read()); s.P50Seconds != 60 || s.P99Seconds != 60 || s.MeanSeconds != 150 {
		t.Errorf("beyond the last bound: %+v", s)
	}
}

// A scrape reads the histogram once: the exported histogram and the
// snapshot it exports come from the same reading, and the collector does
// not format the recommendation's reason it does not export.
func TestCollectReadsTheHistogramOnce(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(4)
	clock.advance(time.Minute) // a full window
	em.txStart.observe(0.003)
	em.txStart.observe(2)
	s, r := em.collect(false)
	if r.count != 2 || s.TxStart.Count != r.count || s.TxStart.SumSeconds != r.sum || r.cumulative[0.005] != 1 {
		t.Errorf("snapshot %+v from reading %+v", s.TxStart, r)
	}
	if s.Recommendation.Reason != "" || s.Recommendation.Action != ActionScaleDown {
		t.Errorf("collector recommendation: %+v", s.Recommendation)
	}
	if full := em.snapshot(); full.Recommendation.Action != s.Recommendation.Action || full.Recommendation.Reason == "" {
		t.Errorf("snapshot recommendation: %+v", full.Recommendation)
	}
}

func TestSnapshotJSON(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(50)
	clock.advance(time.Minute) // a full window
	b, err := json.Marshal(em.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"environment":"dev"`, `"pool_max":50`, `"peak_utilization_percent":0`,
		`"window_seconds":60`, `"recommendation":{"action":"scale_down"`, `"tx_start":{"count":0`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestCollectorExportsDocumentedNames(t *testing.T) {
	m := NewManager(Options{})
	if err := m.Configure(t.Context(), "dev", Config{URI: "bolt://127.0.0.1:1", User: "neo4j", Password: "x", MaxPoolSize: 4}); err != nil {
		t.Fatal(err)
	}
	em, _ := m.envMetricsFor("dev")
	em.txBegin()
	em.txBegin()
	em.txBegin()
	em.observe(eventBorrowQueued, "")
	em.txStart.observe(0.003)
	em.callBegin()
	em.callEnd(nil, 2, time.Now())

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP atg_neo4j_pool_max_connections Configured maximum connections per server (MaxPoolSize).
# TYPE atg_neo4j_pool_max_connections gauge
atg_neo4j_pool_max_connections{env="dev"} 4
# HELP atg_neo4j_pool_utilization_ratio tx_active divided by the pool maximum.
# TYPE atg_neo4j_pool_utilization_ratio gauge
atg_neo4j_pool_utilization_ratio{env="dev"} 0.75
# HELP atg_neo4j_pool_borrow_queued_total Times a connection borrow joined the pool's wait queue (driver log 'Borrow queued'; a borrow that waits again counts again).
# TYPE atg_neo4j_pool_borrow_queued_total counter
atg_neo4j_pool_borrow_queued_total{env="dev"} 1
# HELP atg_neo4j_pool_scale_recommendation 1 for the currently advised pool action (scale_up, scale_down, ok, not_enough_data), 0 for the others.
# TYPE atg_neo4j_pool_scale_recommendation gauge
atg_neo4j_pool_scale_recommendation{action="not_enough_data",env="dev"} 0
atg_neo4j_pool_scale_recommendation{action="ok",env="dev"} 0
atg_neo4j_pool_scale_recommendation{action="scale_down",env="dev"} 0
atg_neo4j_pool_scale_recommendation{action="scale_up",env="dev"} 1
# HELP atg_neo4j_tx_retried_total ExecuteRead/ExecuteWrite calls whose work function the driver ran more than once.
# TYPE atg_neo4j_tx_retried_total counter
atg_neo4j_tx_retried_total{env="dev"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		MetricPoolMaxConnections, MetricPoolUtilization, MetricPoolBorrowQueued, MetricPoolScaleRecommended, MetricTxRetried); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	// 17 single series + 4 recommendation series; atg_neo4j_up and the
	// health duration appear only after a health check.
	if n != 21 {
		t.Errorf("series: %d", n)
	}
	if lint, err := testutil.GatherAndLint(reg); err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %v", err, lint)
	}
}

// TestPeakCountsWorkRunningThroughTheWindow: ten transactions busy from
// t=0 to 50 s on a pool of ten make the 60 s window's peak 100 % at
// t=70 s, though none began in that window (the peak once counted only
// transaction starts and said 0 %, scale_down).
func TestPeakCountsWorkRunningThroughTheWindow(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(10)
	for range 10 {
		em.txBegin()
	}
	clock.advance(50 * time.Second)
	for range 10 {
		em.txEnd()
	}
	clock.advance(20 * time.Second)
	s := em.snapshot()
	if s.PeakUtilizationPercent != 100 || s.Recommendation.Action != ActionScaleUp {
		t.Errorf("at t=70s: peak %.0f%%, %+v", s.PeakUtilizationPercent, s.Recommendation)
	}
	clock.advance(41 * time.Second) // the end at t=50 s has left the window
	if s := em.snapshot(); s.PeakUtilizationPercent != 0 {
		t.Errorf("at t=111s: peak %.0f%%", s.PeakUtilizationPercent)
	}
}

// TestAdviceNeedsAFullWindow: a young process says "not enough data"
// rather than scale_down or ok, but evidence for a larger pool counts at
// once.
func TestAdviceNeedsAFullWindow(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	em := newEnvMetrics("dev", time.Minute, clock.now)
	em.poolMax.Store(10)
	clock.advance(100 * time.Millisecond)
	r := em.snapshot().Recommendation
	if r.Action != ActionNotEnoughData || !strings.Contains(r.Reason, "not enough data") {
		t.Errorf("after 0.1 s: %+v", r)
	}
	em.observe(eventAcquireTimeout, "")
	if r := em.snapshot().Recommendation; r.Action != ActionScaleUp {
		t.Errorf("a time-out after 0.1 s: %+v", r)
	}
	em2 := newEnvMetrics("dev", time.Minute, clock.now)
	em2.poolMax.Store(10)
	clock.advance(time.Minute)
	if r := em2.snapshot().Recommendation; r.Action != ActionScaleDown {
		t.Errorf("after a full idle window: %+v", r)
	}
}
