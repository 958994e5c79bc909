package atg

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/neo4jstore"
)

// BenchmarkOperationStore measures small imports (10 nodes, 9
// relationships) through the engine with the memory store and with the
// Neo4j store, in one run: submit-to-terminal latency at p50 (target: Neo4j
// store <= 2x memory) and operations per second with 8 clients submitting
// at once (target >= 0.5x).
func BenchmarkOperationStore(b *testing.B) {
	s := neo4jtest.Require(b)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quietLog})
	if err := m.Configure(ctx, "bench", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.CloseAll(ctx) })
	label := neo4jtest.Unique(b)
	ns := neo4jtest.Unique(b)
	d := neo4jtest.Driver(b, s)
	neo4jtest.CleanupLabel(b, d, s, label)
	b.Cleanup(func() {
		for _, l := range []string{neo4jstore.LabelEvent, neo4jstore.LabelOperation} {
			_, _ = neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+l+" {ns: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 1000 ROWS", map[string]any{"ns": ns}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
		}
	})
	g := tenantGraph(label, 1, 1, 7)
	params, err := json.Marshal(g)
	if err != nil {
		b.Fatal(err)
	}
	type figures struct{ p50, opsPerSec float64 }
	var got [2]figures
	for i, name := range []string{"memory", "neo4j"} {
		b.Run(name, func(b *testing.B) {
			var store operations.Store
			if name == "neo4j" {
				st, err := neo4jstore.Open(ctx, neo4jstore.Config{Manager: m, Environment: "bench", Namespace: ns, Logger: quietLog})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close(ctx)
				store = st
			}
			e, err := newEngine(m, "bench", nil, nil, ScanOptions{}, operations.Config{Store: store, MaxConcurrent: 3, Logger: quietLog})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close(ctx)
			one := func(client string) time.Duration {
				start := time.Now()
				op, _, err := e.Submit(ctx, operations.SubmitRequest{Type: ImportTypeName, ClientID: client, Params: params})
				if err != nil {
					b.Fatal(err)
				}
				if done, err := e.Wait(ctx, op.ID); err != nil || done.Status != operations.Completed {
					b.Fatalf("%+v %v", done, err)
				}
				return time.Since(start)
			}
			one("warm")
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				lat = append(lat, one("serial"))
			}
			b.StopTimer()
			slices.Sort(lat)
			got[i].p50 = float64(lat[len(lat)/2].Microseconds()) / 1000
			// Throughput: 8 clients, 10 imports each, at once.
			start := time.Now()
			var wg sync.WaitGroup
			for c := range 8 {
				wg.Go(func() {
					for range 10 {
						one(fmt.Sprint("client", c))
					}
				})
			}
			wg.Wait()
			got[i].opsPerSec = 80 / time.Since(start).Seconds()
			b.ReportMetric(got[i].p50, "p50-ms")
			b.ReportMetric(got[i].opsPerSec, "ops/s")
		})
	}
	if got[0].p50 == 0 || got[1].p50 == 0 {
		return
	}
	b.Run("ratios", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(got[1].p50/got[0].p50, "p50_neo4j_vs_memory")
		b.ReportMetric(got[1].opsPerSec/got[0].opsPerSec, "ops_neo4j_vs_memory")
	})
}
