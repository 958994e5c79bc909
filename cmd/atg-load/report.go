package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/transport"
)

// Report is everything a run measured; --json prints it.
type Report struct {
	// Tool and Version identify the generator.
	Tool    string `json:"tool"`
	Version string `json:"version"`
	// StartedAt is when the run started (UTC).
	StartedAt time.Time `json:"started_at"`
	// Args are the command-line arguments.
	Args []string `json:"args"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
	// Server describes the server under load.
	Server ServerInfo `json:"server"`
	// Neo4j is the database the server reported.
	Neo4j transport.StatusNeo4j `json:"neo4j"`
	// Workload describes what the clients did.
	Workload WorkloadReport `json:"workload"`
	// Warmup, Load and Housekeeping count the requests of those phases.
	Warmup       PhaseReport `json:"warmup"`
	Load         PhaseReport `json:"load"`
	Housekeeping PhaseReport `json:"housekeeping"`
	// ServerHTTP is the server's own count of the load phase's requests,
	// by route and status code (the atg_http_requests_total delta).
	ServerHTTP map[string]map[string]float64 `json:"server_http_requests"`
	// Memory is the server's memory idle, under load and after it.
	Memory MemoryReport `json:"memory"`
	// Pool is the Neo4j pool right after the load.
	Pool *PoolReport `json:"pool,omitempty"`
	// Streams is the open-streams phase.
	Streams *StreamsReport `json:"streams,omitempty"`
	// ServerLog counts the server's warn and error log records by message.
	ServerLog map[string]int64 `json:"server_log_warnings,omitempty"`
	// Cleanup says what was removed afterwards.
	Cleanup CleanupReport `json:"cleanup"`
	// Shutdown is how the server stopped.
	Shutdown *ShutdownReport `json:"shutdown,omitempty"`
	// Errors and RateLimited total every phase's errors and 429s.
	Errors      int64 `json:"errors"`
	RateLimited int64 `json:"rate_limited_429"`
	// Problems are the findings that make the run fail; Warnings are
	// findings worth a look that do not.
	Problems []string `json:"problems,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// ExitCode is the exit status: 0 when nothing failed.
	ExitCode int `json:"exit_code"`
}

// Machine describes the machine and its load.
type Machine struct {
	// CPUs is runtime.NumCPU; GOMAXPROCS the Go scheduler's setting.
	CPUs       int `json:"cpus"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// GoVersion, OS and Arch describe the build.
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	// Kernel is /proc/sys/kernel/osrelease.
	Kernel string `json:"kernel,omitempty"`
	// MemTotalBytes is MemTotal of /proc/meminfo.
	MemTotalBytes int64 `json:"mem_total_bytes,omitempty"`
	// LoadAverageBefore and LoadAverageAfter bracket the run.
	LoadAverageBefore LoadAverage `json:"load_average_before"`
	LoadAverageAfter  LoadAverage `json:"load_average_after"`
}

// machineInfo describes this machine now.
func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, LoadAverageBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemTotalBytes = kb << 10
				}
			}
		}
	}
	return m
}

// WorkloadReport describes the load phase's workload.
type WorkloadReport struct {
	// Clients is the number of concurrent clients; Keys the number of API
	// keys they share (client i uses key i mod Keys).
	Clients int `json:"clients"`
	Keys    int `json:"keys"`
	// DurationSeconds is the configured length of the load phase.
	DurationSeconds float64 `json:"duration_seconds"`
	// Mix is the action weights; RequestsPerIteration the mean requests one
	// iteration makes (an import is a submit and a watch).
	Mix                  string  `json:"mix"`
	RequestsPerIteration float64 `json:"requests_per_iteration"`
	// RPMPerKey is the pacing of each key (0: unpaced).
	RPMPerKey int `json:"rpm_per_key"`
	// Pacing says the same in words.
	Pacing string `json:"pacing"`
	// OfferedRPS is the request rate the pacing allows in total (0: unpaced).
	OfferedRPS float64 `json:"offered_rps"`
	// UnderRateLimit is true when the pacing stays under the server's
	// per-key limit, so no 429 is expected.
	UnderRateLimit bool `json:"under_rate_limit"`
	// ImportNodes is the size of each import (nodes; relationships are one
	// fewer).
	ImportNodes int `json:"import_nodes"`
	// Label is the run's node label.
	Label string `json:"label"`
	// Note explains the expected 429s, if any.
	Note string `json:"note,omitempty"`
}

// describeWorkload fills a WorkloadReport and decides whether 429s are
// expected.
func describeWorkload(o options, keys int, srv ServerInfo) WorkloadReport {
	w := WorkloadReport{Clients: o.clients, Keys: min(keys, o.clients), DurationSeconds: o.duration.Seconds(), Mix: o.mix.String(),
		RequestsPerIteration: round(o.mix.requestsPerIteration(), 3), RPMPerKey: o.rpm, ImportNodes: o.importNodes, Label: o.label}
	limit := srv.RateLimitRPM
	switch {
	case o.rpm == 0:
		w.Pacing = "unpaced (each client sends as soon as its last call returns)"
		w.UnderRateLimit = limit == 0
		if limit != 0 {
			w.Note = "unpaced: the per-key rate limit will answer 429 (counted apart, not errors)"
		}
	default:
		w.Pacing = fmt.Sprintf("paced at %d requests/min per key", o.rpm)
		w.OfferedRPS = round(float64(o.rpm*w.Keys)/60, 2)
		w.UnderRateLimit = limit == 0 || (limit > 0 && o.rpm < limit)
		switch {
		case limit > 0 && o.rpm >= limit:
			w.Note = fmt.Sprintf("--rpm %d is not under the server's limit of %d/min per key: expect 429s (counted apart, not errors)", o.rpm, limit)
		case limit < 0:
			w.Note = fmt.Sprintf("the server's per-key limit is unknown; at %d/min per key 429s are not expected under the default limit of 100/min", o.rpm)
		}
	}
	if keys < o.clients {
		note := fmt.Sprintf("%d clients share %d key(s): the server's limits apply per key (the pacing is per key too, so the offered load is %d requests/min per key in total)",
			o.clients, keys, o.rpm)
		if o.rpm == 0 {
			note = fmt.Sprintf("%d clients share %d key(s): the server's limits (requests/min and operations queued or running, ATG_MAX_OPS_PER_KEY) apply per key, so expect 429s", o.clients, keys)
		}
		w.Note = strings.TrimPrefix(w.Note+"; "+note, "; ")
	}
	return w
}

// fillServer completes the server description from its status response.
func (r *Report) fillServer(st *transport.StatusResponse) {
	r.Neo4j = st.Neo4j
	if r.Server.Version == "" {
		r.Server.Version = st.Version
	}
	if r.Server.Environment == "" {
		r.Server.Environment = st.Environment
	}
	if r.Server.MaxConcurrentOps == 0 {
		r.Server.MaxConcurrentOps = st.MaxConcurrent
	}
	if r.Server.PoolSize == 0 && len(st.Pool) > 0 {
		var s neo4jpool.Snapshot
		if json.Unmarshal(st.Pool, &s) == nil {
			r.Server.PoolSize = int(s.PoolMax)
		}
	}
}

// MemoryReport is the server's memory through the run.
type MemoryReport struct {
	// InProcess is true when the server shares this process with the load
	// clients, whose memory the figures then include.
	InProcess bool `json:"in_process"`
	// Idle is after the warm-up, before the load (after a forced GC).
	Idle *MemSample `json:"idle,omitempty"`
	// UnderLoad summarises the samples taken during the load.
	UnderLoad *MemUnderLoad `json:"under_load,omitempty"`
	// AfterLoad is once the load ended (after a forced GC).
	AfterLoad *MemSample `json:"after_load,omitempty"`
	// HeapGrowthPerOperationBytes is (live heap after the load - live heap
	// idle) / operations the load ran: what each finished operation left
	// behind, which the server keeps for ATG_OPERATION_RETENTION (24 h by
	// default).
	HeapGrowthPerOperationBytes int64 `json:"heap_growth_per_operation_bytes,omitempty"`
	// Note says why figures are missing.
	Note string `json:"note,omitempty"`
}

// PoolReport is the Neo4j pool as the server reports it after the load.
type PoolReport struct {
	// Snapshot is the pool part of /api/v1/status (its window is the last
	// minute).
	Snapshot *neo4jpool.Snapshot `json:"snapshot,omitempty"`
	// BorrowQueuedTotal and AcquireTimeoutsTotal are the /metrics counters.
	BorrowQueuedTotal    float64 `json:"borrow_queued_total"`
	AcquireTimeoutsTotal float64 `json:"acquire_timeouts_total"`
	// MaxCallsInFlight, MaxTxActive and MaxHTTPInFlight are the highest
	// gauges sampled during the load; MaxPeakUtilizationPercent the highest
	// peak utilisation /metrics reported.
	MaxCallsInFlight          float64 `json:"max_calls_in_flight"`
	MaxTxActive               float64 `json:"max_tx_active"`
	MaxHTTPInFlight           float64 `json:"max_http_in_flight"`
	MaxPeakUtilizationPercent float64 `json:"max_peak_utilization_percent"`
	// BorrowQueuedTimeline is borrow_queued_total at each sample of the
	// load (one per --sample-interval), to show when requests queued.
	BorrowQueuedTimeline []float64 `json:"borrow_queued_timeline,omitempty"`
	// Scrapes and ScrapeErrors count the /metrics samples.
	Scrapes      int `json:"scrapes"`
	ScrapeErrors int `json:"scrape_errors"`
}

// poolReport assembles the pool figures.
func poolReport(st *transport.StatusResponse, after promScrape, s samplerResult) *PoolReport {
	p := &PoolReport{
		BorrowQueuedTotal:    after.sum(neo4jpool.MetricPoolBorrowQueued, nil),
		AcquireTimeoutsTotal: after.sum(neo4jpool.MetricPoolAcquireTimeouts, nil),
		MaxCallsInFlight:     s.maxCallsInFlight, MaxTxActive: s.maxTxActive, MaxHTTPInFlight: s.maxHTTPInFlight,
		MaxPeakUtilizationPercent: round(100*s.maxPeakUtil, 1), Scrapes: s.scrapes, ScrapeErrors: s.scrapeErrors,
		BorrowQueuedTimeline: s.borrowQueued,
	}
	if len(st.Pool) > 0 {
		var snap neo4jpool.Snapshot
		if json.Unmarshal(st.Pool, &snap) == nil {
			p.Snapshot = &snap
		}
	}
	return p
}

// ShutdownReport is how the server stopped.
type ShutdownReport struct {
	// Seconds is the time Shutdown (or the child's exit) took.
	Seconds float64 `json:"seconds"`
	// Error is what it returned.
	Error string `json:"error,omitempty"`
	// GoroutinesBefore and GoroutinesAfter are this process's goroutines
	// before the server started and after it stopped (in-process only): a
	// lasting difference is a leak.
	GoroutinesBefore int `json:"goroutines_before,omitempty"`
	GoroutinesAfter  int `json:"goroutines_after,omitempty"`
}

// diffCodes returns after - before, dropping zeros and the /metrics route.
func diffCodes(before, after map[string]map[string]float64) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for rt, codes := range after {
		if rt == "GET /metrics" {
			continue
		}
		for code, v := range codes {
			if d := v - before[rt][code]; d != 0 {
				if out[rt] == nil {
					out[rt] = map[string]float64{}
				}
				out[rt][code] = d
			}
		}
	}
	return out
}

// finish totals the errors, derives problems and warnings, and sets the
// exit code.
func (r *Report) finish(ctx context.Context) {
	r.Memory.InProcess = r.Server.Mode == "in-process"
	for _, rt := range r.Load.Routes {
		if m := r.Memory; rt.Route == routeSubmit.String() && rt.OK > 0 && m.Idle != nil && m.Idle.Heap != nil && m.AfterLoad != nil && m.AfterLoad.Heap != nil {
			r.Memory.HeapGrowthPerOperationBytes = (int64(m.AfterLoad.Heap.AllocBytes) - int64(m.Idle.Heap.AllocBytes)) / rt.OK
		}
	}
	phases := []*PhaseReport{&r.Warmup, &r.Load, &r.Housekeeping}
	if r.Streams != nil {
		phases = append(phases, &r.Streams.Phase)
	}
	for _, p := range phases {
		r.Errors += p.Errors
		r.RateLimited += p.RateLimited
		for _, rt := range p.Routes {
			if rt.Errors > 0 {
				kinds := make([]string, 0, len(rt.ErrorKinds))
				for _, k := range sortedKeys(rt.ErrorKinds) {
					kinds = append(kinds, fmt.Sprintf("%d × %s", rt.ErrorKinds[k], k))
				}
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %s: %d error(s): %s", p.Phase, rt.Route, rt.Errors, strings.Join(kinds, ", ")))
			}
			if rt.Resumed > 0 {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %d event stream(s) ended before their terminal event and were resumed", p.Phase, rt.Resumed))
			}
		}
	}
	if r.Load.RateLimited > 0 && r.Workload.UnderRateLimit {
		r.Warnings = append(r.Warnings, fmt.Sprintf("load: %d × 429 although the pacing stays under the per-key limit", r.Load.RateLimited))
	}
	// The server's own count of the load phase must match the clients'.
	for i := range numRoutes - 1 {
		rt := route(i)
		var client int64
		for _, x := range r.Load.Routes {
			if x.Route == rt.String() {
				client = x.Requests
			}
		}
		var server, server5xx float64
		for code, v := range r.ServerHTTP[rt.String()] {
			server += v
			if strings.HasPrefix(code, "5") {
				server5xx += v
			}
		}
		if len(r.ServerHTTP) > 0 && int64(server) != client {
			r.Warnings = append(r.Warnings, fmt.Sprintf("load: %s: the clients counted %d requests, the server %v", rt, client, server))
		}
		if server5xx > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("load: %s: the server answered %v request(s) with 5xx", rt, server5xx))
		}
	}
	if s := r.Streams; s != nil {
		for _, e := range s.Errors {
			r.Problems = append(r.Problems, "streams: "+e)
		}
		if s.Opened < s.Requested {
			r.Problems = append(r.Problems, fmt.Sprintf("streams: only %d of %d streams opened", s.Opened, s.Requested))
		}
		if s.Completed < s.Opened {
			r.Problems = append(r.Problems, fmt.Sprintf("streams: only %d of %d streams ended with their terminal event", s.Completed, s.Opened))
		}
	}
	if p := r.Pool; p != nil && p.AcquireTimeoutsTotal > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("pool: %v connection borrow(s) timed out or were given up (driver log \"Borrow time-out\")", p.AcquireTimeoutsTotal))
	}
	if r.Cleanup.Error != "" {
		r.Problems = append(r.Problems, "cleanup: "+r.Cleanup.Error)
	}
	if s := r.Shutdown; s != nil {
		if s.Error != "" {
			r.Problems = append(r.Problems, "shutdown: "+s.Error)
		}
		if s.GoroutinesBefore > 0 && s.GoroutinesAfter > s.GoroutinesBefore {
			r.Warnings = append(r.Warnings, fmt.Sprintf("goroutines: %d before the server started, %d after it stopped", s.GoroutinesBefore, s.GoroutinesAfter))
		}
	}
	for _, k := range sortedKeys(r.ServerLog) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("server log: %d × %s", r.ServerLog[k], k))
	}
	if ctx.Err() != nil {
		r.Problems = append(r.Problems, "interrupted")
	}
	if r.Errors > 0 || len(r.Problems) > 0 {
		r.ExitCode = exitFailure
	}
}

// mib formats bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// kib formats bytes in KiB.
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }

// fmtMS formats a latency figure.
func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// latencyCells formats a Latency as p50, p90, p99 and max cells.
func latencyCells(l *Latency) string {
	if l == nil {
		return "-\t-\t-\t-"
	}
	return fmtMS(l.P50MS) + "\t" + fmtMS(l.P90MS) + "\t" + fmtMS(l.P99MS) + "\t" + fmtMS(l.MaxMS)
}

// writePhase prints one phase's route table.
func writePhase(w io.Writer, p PhaseReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\trequests\tok\t429\terrors\treq/s\tp50\tp90\tp99\tmax\t")
	for _, rt := range p.Routes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%s\t\n", rt.Route, rt.Requests, rt.OK, rt.RateLimited, rt.Errors, rt.ThroughputRPS, latencyCells(rt.Latency))
		if rt.FirstEvent != nil {
			fmt.Fprintf(tw, "  time to first event\t\t\t\t\t\t%s\t\n", latencyCells(rt.FirstEvent))
		}
		if rt.SubmitToTerminal != nil {
			fmt.Fprintf(tw, "  import, submit to terminal\t\t\t\t\t\t%s\t\n", latencyCells(rt.SubmitToTerminal))
		}
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%.1f\t\t\t\t\t\n", p.Requests, p.OK, p.RateLimited, p.Errors, p.ThroughputRPS)
	_ = tw.Flush()
}

// memLine formats a memory sample.
func memLine(s *MemSample) string {
	if s == nil {
		return "-"
	}
	line := "RSS " + mib(s.RSSBytes)
	if h := s.Heap; h != nil {
		line += fmt.Sprintf(", heap alloc %s, heap in use %s, Go sys %s, %d goroutines", mib(int64(h.AllocBytes)), mib(int64(h.InuseBytes)), mib(int64(h.SysBytes)), h.Goroutines)
	}
	return line
}

// writeSummary prints the human summary.
func (r *Report) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "atg-load %s: %d clients × %gs against a %s atg-server %s (%s), Neo4j %s %s, pool %d, max %d concurrent operations\n",
		r.Version, r.Workload.Clients, r.Workload.DurationSeconds, r.Server.Mode, r.Server.URL, r.Server.Environment,
		r.Neo4j.Version, r.Neo4j.Edition, r.Server.PoolSize, r.Server.MaxConcurrentOps)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s; load average before %s, after %s\n", r.Machine.CPUs, mib(r.Machine.MemTotalBytes),
		r.Machine.GoVersion, r.Machine.LoadAverageBefore, r.Machine.LoadAverageAfter)
	limits := "unknown (an external server)"
	switch {
	case r.Server.RateLimitBurst >= 0:
		limits = fmt.Sprintf("%d req/min per key (burst %d), %d operations per key, %d auth failures/min per address",
			r.Server.RateLimitRPM, r.Server.RateLimitBurst, r.Server.MaxOpsPerKey, r.Server.AuthFailuresPerMinute)
	case r.Server.RateLimitRPM > 0:
		limits = fmt.Sprintf("%d req/min per key (X-RateLimit-Policy); the others are unknown", r.Server.RateLimitRPM)
	}
	fmt.Fprintf(w, "limits: %s\n", limits)
	fmt.Fprintf(w, "workload: %d keys, mix %s (%.2f requests/iteration), %s", r.Workload.Keys, r.Workload.Mix, r.Workload.RequestsPerIteration, r.Workload.Pacing)
	if r.Workload.OfferedRPS > 0 {
		fmt.Fprintf(w, " = at most %.0f req/s offered", r.Workload.OfferedRPS)
	}
	fmt.Fprintf(w, "; imports of %d nodes under %s\n", r.Workload.ImportNodes, r.Workload.Label)
	if r.Workload.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Workload.Note)
	}
	fmt.Fprintf(w, "\nload phase: %.1f s, %.1f req/s (%.1f ok/s)\n", r.Load.DurationSeconds, r.Load.ThroughputRPS, r.Load.OKThroughputRPS)
	writePhase(w, r.Load)

	fmt.Fprintf(w, "\nserver memory")
	if r.Memory.InProcess {
		fmt.Fprintf(w, " (in-process: this whole process, load clients included; use --spawn for the server alone)")
	}
	fmt.Fprintln(w, ":")
	fmt.Fprintf(w, "  idle (after warm-up, GC):  %s\n", memLine(r.Memory.Idle))
	if u := r.Memory.UnderLoad; u != nil {
		line := fmt.Sprintf("  under load (%d samples):   RSS peak %s, mean %s", u.Samples, mib(u.PeakRSSBytes), mib(u.MeanRSSBytes))
		if u.PeakHeapInuseBytes > 0 {
			line += fmt.Sprintf(", heap in use peak %s, goroutines peak %d", mib(int64(u.PeakHeapInuseBytes)), u.PeakGoroutines)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  after load (GC):           %s\n", memLine(r.Memory.AfterLoad))
	if g := r.Memory.HeapGrowthPerOperationBytes; g != 0 {
		fmt.Fprintf(w, "  live heap growth per operation run (kept for ATG_OPERATION_RETENTION): %s\n", kib(g))
	}
	if r.Memory.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Memory.Note)
	}

	if p := r.Pool; p != nil {
		fmt.Fprintf(w, "\nNeo4j pool after the load:")
		if s := p.Snapshot; s != nil {
			fmt.Fprintf(w, " max %d, borrows queued %d (%d in the last minute), acquisition time-outs %d, peak utilisation %.0f%% (last minute), tx %d committed / %d failed / %d retried, tx start p50 %s p95 %s p99 %s\n",
				s.PoolMax, s.BorrowQueued, s.BorrowQueuedInWindow, s.AcquireTimeouts, s.PeakUtilizationPercent, s.TxCommitted, s.TxFailed, s.TxRetried,
				fmtMS(s.TxStart.P50Seconds*1000), fmtMS(s.TxStart.P95Seconds*1000), fmtMS(s.TxStart.P99Seconds*1000))
			fmt.Fprintf(w, "  recommendation: %s: %s\n", s.Recommendation.Action, s.Recommendation.Reason)
		} else {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  sampled during the load: calls in flight max %.0f, transactions active max %.0f, HTTP requests in flight max %.0f, peak utilisation max %.0f%%\n",
			p.MaxCallsInFlight, p.MaxTxActive, p.MaxHTTPInFlight, p.MaxPeakUtilizationPercent)
	}

	if s := r.Streams; s != nil {
		fmt.Fprintf(w, "\nopen streams: %d requested, %d opened in %.1f s (%d keys), held %.1f s, %d completed; server in-flight requests while held: %.0f\n",
			s.Requested, s.Opened, s.OpenSeconds, s.Keys, s.HeldSeconds, s.Completed, s.ServerInFlight)
		if s.FirstEvent != nil {
			fmt.Fprintf(w, "  time to first event: p50 %s p90 %s p99 %s max %s\n", fmtMS(s.FirstEvent.P50MS), fmtMS(s.FirstEvent.P90MS), fmtMS(s.FirstEvent.P99MS), fmtMS(s.FirstEvent.MaxMS))
		}
		if s.ReleaseToTerminal != nil {
			fmt.Fprintf(w, "  release to terminal event: p50 %s p99 %s, all within %.2f s\n", fmtMS(s.ReleaseToTerminal.P50MS), fmtMS(s.ReleaseToTerminal.P99MS), s.ReleaseToAllTerminalSeconds)
		}
		fmt.Fprintf(w, "  memory before (GC):           %s\n", memLine(s.MemoryBefore))
		fmt.Fprintf(w, "  memory with %d streams open: %s\n", s.Opened, memLine(s.MemoryOpen))
		fmt.Fprintf(w, "  same after GC:                %s\n", memLine(s.MemoryOpenGC))
		fmt.Fprintf(w, "  after they ended (GC):        %s\n", memLine(s.MemoryAfter))
		fmt.Fprintf(w, "  per stream: RSS %s", kib(s.PerStreamRSSBytes))
		if s.PerStreamHeapBytes != 0 {
			fmt.Fprintf(w, ", live heap %s", kib(s.PerStreamHeapBytes))
		}
		fmt.Fprintf(w, "; requests: %d, %d × 429, %d errors\n", s.Phase.Requests, s.Phase.RateLimited, s.Phase.Errors)
	}

	c := r.Cleanup
	switch {
	case c.Skipped:
		fmt.Fprintf(w, "\ncleanup: skipped (--keep-data); the nodes under %s remain\n", c.Label)
	case c.Error != "":
		fmt.Fprintf(w, "\ncleanup: FAILED after deleting %d nodes under %s: %s\n", c.NodesDeleted, c.Label, c.Error)
	default:
		fmt.Fprintf(w, "\ncleanup: deleted %d nodes under %s in %.1f s\n", c.NodesDeleted, c.Label, c.Seconds)
	}
	if s := r.Shutdown; s != nil && r.Server.Mode != "external" {
		fmt.Fprintf(w, "shutdown: %.2f s", s.Seconds)
		if s.GoroutinesBefore > 0 {
			fmt.Fprintf(w, "; goroutines %d before start, %d after stop", s.GoroutinesBefore, s.GoroutinesAfter)
		}
		fmt.Fprintln(w)
	}
	if r.Server.ServerLog != "" && r.Server.ServerLog != "off" {
		fmt.Fprintf(w, "server log: %s; audit log: %s\n", r.Server.ServerLog, r.Server.AuditLog)
	}
	for _, p := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	verdict := "OK"
	if r.ExitCode != 0 {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "result: %s: %d errors, %d × 429 (rate limits; not errors)\n", verdict, r.Errors, r.RateLimited)
}
