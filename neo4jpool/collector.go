package neo4jpool

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names exported by [Manager.Collector]. Every series has
// the label "env" (the environment name). See [Snapshot] for exactly what
// each one measures and what the driver does not let us measure.
const (
	MetricPoolMaxConnections     = "atg_neo4j_pool_max_connections"        // gauge: configured MaxPoolSize (per server)
	MetricTxActive               = "atg_neo4j_tx_active"                   // gauge: work functions running
	MetricCallsInFlight          = "atg_neo4j_calls_in_flight"             // gauge: ExecuteRead/Write calls running
	MetricPoolUtilization        = "atg_neo4j_pool_utilization_ratio"      // gauge: tx_active / pool max (0..1+)
	MetricPoolPeakUtilization    = "atg_neo4j_pool_peak_utilization_ratio" // gauge: peak of the above over the window
	MetricPoolScaleRecommended   = "atg_neo4j_pool_scale_recommendation"   // gauge: 1 for the advised action (label action)
	MetricTxStartSeconds         = "atg_neo4j_tx_start_seconds"            // histogram: call entry to first work-function run
	MetricTxStartFailedSeconds   = "atg_neo4j_tx_start_failed_seconds"     // histogram: call entry to failure, for calls whose work never ran
	MetricPoolBorrowQueued       = "atg_neo4j_pool_borrow_queued_total"    // counter: waits in the pool queue ("Borrow queued"; a borrow that waits again counts again)
	MetricPoolAcquireTimeouts    = "atg_neo4j_pool_acquire_timeouts_total" // counter: borrows given up ("Borrow time-out": context ended while waiting, or a dial timed out)
	MetricConnectionsCreated     = "atg_neo4j_connections_created_total"   // counter: connections that completed login
	MetricConnectionsFailed      = "atg_neo4j_connections_failed_total"    // counter: failed connection attempts
	MetricConnectionsClosed      = "atg_neo4j_connections_closed_total"    // counter: created connections closed
	MetricConnectionsOpen        = "atg_neo4j_connections_open_estimate"   // gauge: created - closed
	MetricTxCommitted            = "atg_neo4j_tx_committed_total"          // counter: calls that succeeded
	MetricTxFailed               = "atg_neo4j_tx_failed_total"             // counter: calls that returned an error
	MetricTxRetried              = "atg_neo4j_tx_retried_total"            // counter: calls whose work ran more than once
	MetricTxAttempts             = "atg_neo4j_tx_attempts_total"           // counter: work-function runs
	MetricUp                     = "atg_neo4j_up"                          // gauge: 1 if the last health check passed
	MetricHealthCheckDurationSec = "atg_neo4j_health_check_duration_seconds"
)

var (
	envLabel = []string{"env"}

	descPoolMax     = prometheus.NewDesc(MetricPoolMaxConnections, "Configured maximum connections per server (MaxPoolSize).", envLabel, nil)
	descTxActive    = prometheus.NewDesc(MetricTxActive, "Transaction work functions running now (a lower bound of connections in use).", envLabel, nil)
	descInFlight    = prometheus.NewDesc(MetricCallsInFlight, "ExecuteRead/ExecuteWrite calls in progress, including those waiting for a connection or between driver retries.", envLabel, nil)
	descUtil        = prometheus.NewDesc(MetricPoolUtilization, "tx_active divided by the pool maximum.", envLabel, nil)
	descPeakUtil    = prometheus.NewDesc(MetricPoolPeakUtilization, "Peak of tx_active divided by the pool maximum over the metrics window.", envLabel, nil)
	descScale       = prometheus.NewDesc(MetricPoolScaleRecommended, "1 for the currently advised pool action (scale_up, scale_down, ok, not_enough_data), 0 for the others.", []string{"env", "action"}, nil)
	descTxStart     = prometheus.NewDesc(MetricTxStartSeconds, "Time from calling ExecuteRead/ExecuteWrite to the first run of the work function (includes connection acquisition, queueing and BEGIN; an acquisition-time proxy).", envLabel, nil)
	descTxStartFail = prometheus.NewDesc(MetricTxStartFailedSeconds, "Time from calling ExecuteRead/ExecuteWrite to its failure, for calls that failed before their work function ever ran (no connection within the acquisition timeout, the caller's deadline while queued, an unreachable database).", envLabel, nil)
	descQueued      = prometheus.NewDesc(MetricPoolBorrowQueued, "Times a connection borrow joined the pool's wait queue (driver log 'Borrow queued'; a borrow that waits again counts again).", envLabel, nil)
	descTimeouts    = prometheus.NewDesc(MetricPoolAcquireTimeouts, "Connection borrows the driver gave up (driver log 'Borrow time-out'): the borrow's context ended while it waited (acquisition timeout, or the caller's deadline or cancellation), or dialling a new connection timed out.", envLabel, nil)
	descConnCreated = prometheus.NewDesc(MetricConnectionsCreated, "Connections that completed handshake and login (driver log 'Connected').", envLabel, nil)
	descConnFailed  = prometheus.NewDesc(MetricConnectionsFailed, "Connection attempts that failed (driver log 'Failed to connect to').", envLabel, nil)
	descConnClosed  = prometheus.NewDesc(MetricConnectionsClosed, "Created connections that were closed (driver log 'Close').", envLabel, nil)
	descConnOpen    = prometheus.NewDesc(MetricConnectionsOpen, "Connections created minus closed: an estimate of open connections (idle plus in use).", envLabel, nil)
	descCommitted   = prometheus.NewDesc(MetricTxCommitted, "ExecuteRead/ExecuteWrite calls that succeeded.", envLabel, nil)
	descFailed      = prometheus.NewDesc(MetricTxFailed, "ExecuteRead/ExecuteWrite calls that returned an error.", envLabel, nil)
	descRetried     = prometheus.NewDesc(MetricTxRetried, "ExecuteRead/ExecuteWrite calls whose work function the driver ran more than once.", envLabel, nil)
	descAttempts    = prometheus.NewDesc(MetricTxAttempts, "Transaction work-function runs, first attempts and retries.", envLabel, nil)
	descUp          = prometheus.NewDesc(MetricUp, "1 if the last health check of the environment passed, else 0 (absent before the first check).", envLabel, nil)
	descHealthDur   = prometheus.NewDesc(MetricHealthCheckDurationSec, "Duration of the last health check.", envLabel, nil)
)

// Collector returns a prometheus.Collector exporting the pool metrics of
// every environment this manager has configured, read at scrape time. The
// manager registers nothing itself; register the collector on your own
// registry:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m.Collector())
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolMax, descTxActive, descInFlight, descUtil, descPeakUtil, descScale,
		descTxStart, descTxStartFail, descQueued, descTimeouts, descConnCreated, descConnFailed, descConnClosed, descConnOpen,
		descCommitted, descFailed, descRetried, descAttempts, descUp, descHealthDur} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, env string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), env)
	}
	for _, em := range c.m.allMetrics() {
		s, txStart, txStartFailed := em.collectAll(false)
		env := s.Environment
		gauge(descPoolMax, float64(s.PoolMax), env)
		gauge(descTxActive, float64(s.TxActive), env)
		gauge(descInFlight, float64(s.CallsInFlight), env)
		gauge(descUtil, s.UtilizationPercent/100, env)
		gauge(descPeakUtil, s.PeakUtilizationPercent/100, env)
		for _, a := range Actions {
			v := 0.0
			if s.Recommendation.Action == a {
				v = 1
			}
			gauge(descScale, v, env, string(a))
		}
		ch <- prometheus.MustNewConstHistogram(descTxStart, txStart.count, txStart.sum, txStart.cumulative, env)
		ch <- prometheus.MustNewConstHistogram(descTxStartFail, txStartFailed.count, txStartFailed.sum, txStartFailed.cumulative, env)
		counter(descQueued, s.BorrowQueued, env)
		counter(descTimeouts, s.AcquireTimeouts, env)
		counter(descConnCreated, s.ConnectionsCreated, env)
		counter(descConnFailed, s.ConnectionsFailed, env)
		counter(descConnClosed, s.ConnectionsClosed, env)
		gauge(descConnOpen, float64(s.ConnectionsOpenEstimate), env)
		counter(descCommitted, s.TxCommitted, env)
		counter(descFailed, s.TxFailed, env)
		counter(descRetried, s.TxRetried, env)
		counter(descAttempts, s.TxAttempts, env)
		if h, ok := em.health(); ok {
			up := 0.0
			if h.Healthy {
				up = 1
			}
			gauge(descUp, up, env)
			gauge(descHealthDur, h.Latency.Seconds(), env)
		}
	}
}
