package azure

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/atgraph/atg/azure/azuretest"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// BenchmarkScanHeap scans generated tenants of 10,000 and 100,000
// resources, served by the fake Resource Graph over TLS, into Neo4j and
// reports the peak live heap of each whole scan (reading, mapping, the
// node and relationship writes, the diff and the prune) and their ratio
// (target <= 1.5: a scan's memory must not grow with the tenant).
// Everything written is deleted afterwards.
//
//	go test -run '^$' -bench BenchmarkScanHeap -benchtime 1x ./azure/
func BenchmarkScanHeap(b *testing.B) {
	s := neo4jtest.Require(b)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(ctx, "bench", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}); err != nil {
		b.Fatal(err)
	}
	d := neo4jtest.Driver(b, s)
	for range b.N {
		var peaks [2]uint64
		for i, size := range []int{10_000, 100_000} {
			srv := azuretest.NewServer(b, azuretest.Options{Seed: int64(1000 + i), Resources: size, Subscriptions: 4})
			tenant := srv.Tenant.ID
			b.Cleanup(func() {
				for {
					recs, err := neo4jtest.Query(context.Background(), d, s, "MATCH (n:"+LabelBase+" {tenant_id: $t}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c", map[string]any{"t": tenant})
					if err != nil || len(recs) == 0 || recs[0].Values[0].(int64) == 0 {
						return
					}
				}
			})
			sc := &Scanner{Manager: m, Env: "bench", Source: fakeSource(b, srv, nil)}
			var res *ScanResult
			start := time.Now()
			peaks[i] = heapPeak(func() {
				var err error
				if res, err = sc.Scan(ctx, ScanConfig{TenantID: tenant, Prune: true}); err != nil {
					b.Fatal(err)
				}
			})
			b.Logf("%d resources: %d nodes, %d relationships in %v, peak live heap %.1f MiB",
				size, res.Nodes.Added, res.Relationships.Added, time.Since(start).Round(time.Millisecond), float64(peaks[i])/(1<<20))
		}
		b.ReportMetric(float64(peaks[0])/(1<<20), "peakMiB@10k")
		b.ReportMetric(float64(peaks[1])/(1<<20), "peakMiB@100k")
		b.ReportMetric(float64(peaks[1])/float64(peaks[0]), "heap100k/10k")
	}
}
