package azure

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/atgraph/atg/azure/azuretest"
)

// heapPeak samples the live heap (as the last GC marked it, so garbage
// awaiting collection does not count) every millisecond while f runs and
// returns its peak above the live heap before f.
//
// GC runs at GOGC=20 meanwhile, so marks are frequent and the sampled
// peak is close to the true one for small and large reads alike.
func heapPeak(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	f()
	runtime.GC() // a last mark, so the end of f is measured too
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// readAll reads the three tables tenant-wide and returns the rows read.
func readAll(b *testing.B, src Source) int {
	n := 0
	for _, table := range []Table{TableResources, TableResourceContainers, TableAuthorizationResources} {
		for _, err := range src.Rows(context.Background(), table, "") {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	return n
}

// BenchmarkReadTenant reads a generated tenant of 10,000 and then
// 100,000 resources from the fake Resource Graph over TLS, page by page,
// and reports Resource Graph calls per 1,000 resources (target <= 3),
// the peak live heap of each read and their ratio (target <= 1.5), and
// the rate in resources a second.
//
//	go test -run '^$' -bench BenchmarkReadTenant -benchtime 1x ./azure/
func BenchmarkReadTenant(b *testing.B) {
	for range b.N {
		var peaks [2]uint64
		for i, size := range []int{10_000, 100_000} {
			srv := azuretest.NewServer(b, azuretest.Options{Seed: 42, Resources: size, Subscriptions: 4})
			src := fakeSource(b, srv, nil)
			var rows int
			start := time.Now()
			peaks[i] = heapPeak(func() { rows = readAll(b, src) })
			elapsed := time.Since(start)
			resources := srv.Tenant.Counts()[azuretest.TableResources]
			st := src.Stats()
			if size == 100_000 {
				b.ReportMetric(float64(st.APICalls)/(float64(resources)/1000), "calls/1000res")
				b.ReportMetric(float64(resources)/elapsed.Seconds(), "res/s")
				b.ReportMetric(float64(peaks[1])/(1<<20), "peakMiB@100k")
				b.ReportMetric(float64(peaks[0])/(1<<20), "peakMiB@10k")
				b.ReportMetric(float64(peaks[1])/float64(peaks[0]), "heap100k/10k")
			}
			b.Logf("%d resources (%d rows, all tables): %d calls, %d pages, %v, peak heap %.1f MiB",
				resources, rows, st.APICalls, st.Pages, elapsed.Round(time.Millisecond), float64(peaks[i])/(1<<20))
		}
	}
}
