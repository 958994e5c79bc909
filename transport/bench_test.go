package transport

import (
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// benchQuery posts body to /api/v1/query with the reader key and checks
// the answer is 200; it returns the response's size.
func benchQuery(b *testing.B, f *fixture, body string) int64 {
	req, err := http.NewRequest("POST", f.srv.URL+"/api/v1/query", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.keys["reader"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return n
}

// BenchmarkQueryGuard measures POST /api/v1/query of RETURN 1 over HTTP
// against real Neo4j with the administration guard (its verdict cached
// after the first call) and without it, in one run. Target:
// guarded_vs_unguarded >= 0.9.
func BenchmarkQueryGuard(b *testing.B) {
	f := newFixture(b, fixtureOpts{db: true})
	guard := f.api.guard
	const body = `{"query":"RETURN 1 AS one"}`
	var nsPerOp [2]float64
	for i, name := range []string{"unguarded", "guarded"} {
		b.Run(name, func(b *testing.B) {
			f.api.guard = nil
			if name == "guarded" {
				f.api.guard = guard
			}
			benchQuery(b, f, body) // warm: a connection, the plan cache, the verdict
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				benchQuery(b, f, body)
			}
			nsPerOp[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	f.api.guard = guard
	if nsPerOp[0] == 0 || nsPerOp[1] == 0 {
		return // filtered by -bench
	}
	ratio := nsPerOp[0] / nsPerOp[1] // throughput guarded / unguarded
	b.Run("ratio", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(ratio, "guarded_vs_unguarded")
	})
}

// BenchmarkQueryResultBytes measures what a query returning 20 rows of
// 4 MB strings (80 MB of result) costs the process with the default byte
// cap (16 MiB) and with the cap out of the way (1 GiB), in one run: bytes
// allocated per query (whole process: server, driver and the benchmark's
// client) and the peak of live heap while the queries run. The ratios
// capped/uncapped show that the cap bounds what a request holds.
func BenchmarkQueryResultBytes(b *testing.B) {
	f := newFixture(b, fixtureOpts{db: true})
	body := `{"query":"UNWIND range(1, 20) AS i RETURN i, $s AS s","parameters":{"s":"` + strings.Repeat("x", 4_000_000) + `"}}`
	var allocPerOp, peak [2]float64
	for i, c := range []struct {
		name string
		max  int64
	}{{"cap=16MiB", DefaultQueryMaxBytes}, {"cap=1GiB", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) {
			f.api.opts.QueryMaxBytes = c.max
			runtime.GC()
			base := liveHeap()
			stop, peakHeap := samplePeakHeap()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			var size int64
			for b.Loop() {
				size = benchQuery(b, f, body)
			}
			runtime.ReadMemStats(&ms1)
			stop()
			allocPerOp[i] = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(b.N)
			peak[i] = float64(*peakHeap - min(*peakHeap, base))
			b.ReportMetric(float64(size)/(1<<20), "response-MiB")
			b.ReportMetric(allocPerOp[i]/(1<<20), "alloc-MiB/op")
			b.ReportMetric(peak[i]/(1<<20), "peak-heap-growth-MiB")
		})
	}
	if allocPerOp[0] == 0 || allocPerOp[1] == 0 {
		return
	}
	b.Run("ratios", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(allocPerOp[0]/allocPerOp[1], "alloc_capped_vs_uncapped")
		b.ReportMetric(peak[0]/max(peak[1], 1), "peak_capped_vs_uncapped")
	})
}

// liveHeap reads the bytes of live and not yet swept heap objects.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// samplePeakHeap samples liveHeap every 2 ms until stop is called; *peak
// is the highest reading.
func samplePeakHeap() (stop func(), peak *uint64) {
	peak = new(uint64)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if h := liveHeap(); h > *peak {
				*peak = h
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }, peak
}
