package neo4jpool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/atgraph/atg/neo4jpool"
)

// returnOne is a tiny read-only work function.
func returnOne(ctx context.Context, hold time.Duration) neo4j.ManagedTransactionWork {
	return func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "RETURN 1", nil)
		if err != nil {
			return nil, err
		}
		if _, err := res.Consume(ctx); err != nil {
			return nil, err
		}
		time.Sleep(hold)
		return nil, nil
	}
}

// Pool size 2, 20 concurrent callers: all succeed, and the metrics show the
// queueing and a peak utilisation of 100 %.
func TestPoolSaturationIsMeasured(t *testing.T) {
	t.Parallel()
	m, _ := realManager(t, neo4jpool.Options{}, func(c *neo4jpool.Config) { c.MaxPoolSize = 2 })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collector())

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := m.ExecuteWrite(t.Context(), "dev", returnOne(t.Context(), 30*time.Millisecond))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a caller failed: %v", err)
		}
	}

	s, err := m.Snapshot("dev")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot: %+v", s)
	if s.TxCommitted != callers || s.TxFailed != 0 || s.TxActive != 0 || s.CallsInFlight != 0 {
		t.Errorf("counts: committed %d failed %d active %d in flight %d", s.TxCommitted, s.TxFailed, s.TxActive, s.CallsInFlight)
	}
	if s.BorrowQueued == 0 || s.BorrowQueuedInWindow == 0 {
		t.Errorf("no queued borrow counted with 20 callers on 2 connections")
	}
	if s.PeakUtilizationPercent != 100 || s.PoolMax != 2 {
		t.Errorf("peak utilisation %.1f%% of %d", s.PeakUtilizationPercent, s.PoolMax)
	}
	if s.Recommendation.Action != neo4jpool.ActionScaleUp {
		t.Errorf("recommendation: %+v", s.Recommendation)
	}
	if s.TxStart.Count != callers || s.TxStart.P95Seconds < s.TxStart.P50Seconds || s.TxStart.P95Seconds < 0.025 {
		t.Errorf("tx start: %+v (queued callers wait for others' 30 ms holds)", s.TxStart)
	}
	if s.ConnectionsCreated < 1 || s.ConnectionsCreated > 2 || s.ConnectionsOpenEstimate > 2 {
		t.Errorf("connections: created %d open %d (at most 2 per server)", s.ConnectionsCreated, s.ConnectionsOpenEstimate)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			values[f.GetName()] = metricValue(metric)
		}
	}
	if values[neo4jpool.MetricPoolBorrowQueued] == 0 || values[neo4jpool.MetricTxCommitted] != callers ||
		values[neo4jpool.MetricPoolPeakUtilization] != 1 || values[neo4jpool.MetricPoolMaxConnections] != 2 {
		t.Errorf("prometheus values: %v", values)
	}

	// Closing the driver closes its connections; the log-derived counter sees it.
	if err := m.CloseAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := m.Snapshots()[0]
		if s.ConnectionsClosed == s.ConnectionsCreated && s.ConnectionsOpenEstimate == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after CloseAll: created %d closed %d", s.ConnectionsCreated, s.ConnectionsClosed)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// The original's PM cases, on real measurements: k transactions held open
// on a pool of n give utilisation k/n and the strict 80 % / 20 % advice.
func TestUtilizationOfHeldTransactions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		hold, pool int
		util       float64
		want       neo4jpool.Action
	}{
		{4, 5, 80, neo4jpool.ActionOK},         // exactly 80 %: not above
		{5, 5, 100, neo4jpool.ActionScaleUp},   // PM-2 like
		{1, 5, 20, neo4jpool.ActionOK},         // exactly 20 %: not below
		{1, 10, 10, neo4jpool.ActionScaleDown}, // PM-3 like
	}
	for _, c := range cases {
		// A short window, filled before the snapshot: advice needs a full one.
		m, _ := realManager(t, neo4jpool.Options{MetricsWindow: 100 * time.Millisecond}, func(cfg *neo4jpool.Config) { cfg.MaxPoolSize = c.pool })
		started := make(chan struct{}, c.hold)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range c.hold {
			wg.Go(func() {
				_, err := m.ExecuteWrite(t.Context(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
					started <- struct{}{}
					<-release
					return nil, nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		for range c.hold {
			<-started
		}
		time.Sleep(150 * time.Millisecond) // a full window, the transactions still held
		s, _ := m.Snapshot("dev")
		close(release)
		wg.Wait()
		if s.TxActive != int64(c.hold) || s.UtilizationPercent != c.util || s.PeakUtilizationPercent != c.util {
			t.Errorf("%d of %d held: active %d util %.1f peak %.1f", c.hold, c.pool, s.TxActive, s.UtilizationPercent, s.PeakUtilizationPercent)
		}
		if s.Recommendation.Action != c.want {
			t.Errorf("%d of %d held: %+v, want %s", c.hold, c.pool, s.Recommendation, c.want)
		}
		if after, _ := m.Snapshot("dev"); after.TxActive != 0 || after.TxCommitted != uint64(c.hold) {
			t.Errorf("after release: %+v", after)
		}
	}
}

// TestTxStartRecordsCallsThatNeverStarted: calls that wait for a busy
// pool's only connection and give up are counted, with their waits, in
// TxStartFailed (they were missing from the time-to-start figures, though
// they are the worst waits); TxStart holds the call that started.
func TestTxStartRecordsCallsThatNeverStarted(t *testing.T) {
	t.Parallel()
	m, _ := realManager(t, neo4jpool.Options{}, func(cfg *neo4jpool.Config) { cfg.MaxPoolSize = 1 })
	holding := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := m.ExecuteRead(t.Context(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			close(holding)
			<-release
			return nil, nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	<-holding
	const waiters = 3
	for range waiters {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if _, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) { return nil, nil }); err == nil {
				t.Error("a waiter got the held connection")
			}
		})
	}
	time.Sleep(600 * time.Millisecond)
	close(release)
	wg.Wait()
	s, _ := m.Snapshot("dev")
	if s.TxStart.Count != 1 || s.TxStartFailed.Count != waiters || s.TxStartFailed.MeanSeconds < 0.25 {
		t.Errorf("TxStart %+v, TxStartFailed %+v", s.TxStart, s.TxStartFailed)
	}
}
