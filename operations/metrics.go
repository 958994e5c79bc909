package operations

import (
	"github.com/prometheus/client_golang/prometheus"
)

type engineMetrics struct {
	submitted *prometheus.CounterVec
	finished  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

func newEngineMetrics() *engineMetrics {
	return &engineMetrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atg_operations_submitted_total", Help: "Operations accepted, by type.",
		}, []string{"type"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atg_operations_finished_total", Help: "Operations that reached a terminal state, by type and status.",
		}, []string{"type", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "atg_operations_run_seconds", Help: "Time operations' work ran, by type.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"type"}),
	}
}

var (
	descQueued  = prometheus.NewDesc("atg_operations_queued", "Operations waiting for a slot.", nil, nil)
	descRunning = prometheus.NewDesc("atg_operations_running", "Operations whose work is running.", nil, nil)
	descMax     = prometheus.NewDesc("atg_operations_max_concurrent", "How many operations may run at once (ATG_MAX_CONCURRENT_OPS).", nil, nil)
)

// Describe implements prometheus.Collector.
//
// Metrics: atg_operations_submitted_total{type},
// atg_operations_finished_total{type,status}, atg_operations_run_seconds{type}
// (histogram), atg_operations_queued, atg_operations_running and
// atg_operations_max_concurrent.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	e.metrics.submitted.Describe(ch)
	e.metrics.finished.Describe(ch)
	e.metrics.duration.Describe(ch)
	ch <- descQueued
	ch <- descRunning
	ch <- descMax
}

// Collect implements prometheus.Collector.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	e.metrics.submitted.Collect(ch)
	e.metrics.finished.Collect(ch)
	e.metrics.duration.Collect(ch)
	e.mu.Lock()
	running := len(e.running)
	queued := 0
	for _, op := range e.live {
		if op.Status == Queued {
			queued++
		}
	}
	e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued))
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(e.cfg.MaxConcurrent))
}
