package main

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// samplerResult is what the sampler saw during the load.
type samplerResult struct {
	// mem tracks the server's memory.
	mem memTracker
	// scrapes counts /metrics scrapes; scrapeErrors those that failed.
	scrapes, scrapeErrors int
	// maxCallsInFlight, maxTxActive, maxHTTPInFlight and maxPeakUtil are
	// the highest atg_neo4j_calls_in_flight, atg_neo4j_tx_active,
	// atg_http_requests_in_flight and atg_neo4j_pool_peak_utilization_ratio.
	maxCallsInFlight, maxTxActive, maxHTTPInFlight, maxPeakUtil float64
	// borrowQueued is atg_neo4j_pool_borrow_queued_total at each scrape,
	// to show when during the load requests queued for a connection.
	borrowQueued []float64
}

// sampler samples the server's memory and its /metrics gauges
// periodically in the background.
type sampler struct {
	// cancel and wg stop the sampling goroutine.
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu guards res.
	mu  sync.Mutex
	res samplerResult
}

// startSampler samples t's memory and base's /metrics every period until
// stop is called.
func startSampler(ctx context.Context, t target, base string, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel}
	hc := newPlainClient()
	s.wg.Go(func() {
		defer hc.CloseIdleConnections()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m, merr := t.Memory(ctx, false)
			scrape, serr := scrapeMetrics(ctx, hc, base)
			s.mu.Lock()
			if merr == nil {
				s.res.mem.add(m)
			}
			s.res.scrapes++
			if serr != nil {
				if ctx.Err() == nil {
					s.res.scrapeErrors++
				}
			} else {
				s.res.maxCallsInFlight = max(s.res.maxCallsInFlight, scrape.sum("atg_neo4j_calls_in_flight", nil))
				s.res.maxTxActive = max(s.res.maxTxActive, scrape.sum("atg_neo4j_tx_active", nil))
				s.res.maxHTTPInFlight = max(s.res.maxHTTPInFlight, scrape.sum("atg_http_requests_in_flight", nil))
				s.res.maxPeakUtil = max(s.res.maxPeakUtil, scrape.sum("atg_neo4j_pool_peak_utilization_ratio", nil))
				s.res.borrowQueued = append(s.res.borrowQueued, scrape.sum("atg_neo4j_pool_borrow_queued_total", nil))
			}
			s.mu.Unlock()
		}
	})
	return s
}

// newPlainClient returns an HTTP client of its own for /metrics scrapes
// (not counted; close its idle connections when done).
func newPlainClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}}
}

// stop ends the sampling and returns what it saw.
func (s *sampler) stop() samplerResult {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.res
}
