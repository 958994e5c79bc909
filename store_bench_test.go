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

// BenchmarkOperationStore measures the engine with the memory store and
// with the Neo4j store, in one run:
//   - submit-to-terminal latency of a small import (10 nodes, 9
//     relationships) at p50 (target: Neo4j store <= 2x memory);
//   - operations per second with 8 clients submitting small imports at
//     once (target >= 0.5x);
//   - the import rate of a large import, ~10,000 nodes and as many
//     relationships (target >= 0.95x: persistence must not slow the data
//     path).
//
// The Neo4j store is measured twice: as one server's store ("neo4j"), and
// shared by replicas ("shared": Shared store, Config.Replica set, claims,
// leases and the import's checkpoint in each chunk's transaction), which
// is how atg-server runs it. The throughput and import figures are
// measured in the order memory, neo4j, shared, shared, neo4j, memory, each
// import of a new graph, so that a growing database favours none.
func BenchmarkOperationStore(b *testing.B) {
	s := neo4jtest.Require(b)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quietLog})
	if err := m.Configure(ctx, "bench", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.CloseAll(ctx) })
	ns := neo4jtest.Unique(b)
	d := neo4jtest.Driver(b, s)
	b.Cleanup(func() {
		for _, l := range []string{neo4jstore.LabelEvent, neo4jstore.LabelOperation} {
			_, _ = neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+l+" {ns: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 1000 ROWS", map[string]any{"ns": ns}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
		}
	})
	graph := func(subs, rgs, res int) ([]byte, int) {
		l := neo4jtest.Unique(b)
		neo4jtest.CleanupLabel(b, d, s, l)
		g := tenantGraph(l, subs, rgs, res)
		raw, err := json.Marshal(g)
		if err != nil {
			b.Fatal(err)
		}
		return raw, len(g.Nodes) + len(g.Relationships)
	}
	small, _ := graph(1, 1, 7)

	st, err := neo4jstore.Open(ctx, neo4jstore.Config{Manager: m, Environment: "bench", Namespace: ns, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(ctx)
	shared, err := neo4jstore.Open(ctx, neo4jstore.Config{Manager: m, Environment: "bench", Namespace: ns + "-shared", Logger: quietLog, Shared: true})
	if err != nil {
		b.Fatal(err)
	}
	defer shared.Close(ctx)
	b.Cleanup(func() {
		for _, l := range []string{neo4jstore.LabelEvent, neo4jstore.LabelOperation} {
			_, _ = neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+l+" {ns: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 1000 ROWS", map[string]any{"ns": ns + "-shared"}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
		}
	})
	var engines [3]*operations.Engine
	for i, store := range []operations.Store{nil, st, shared} {
		replica := ""
		if i == 2 {
			replica = "bench"
		}
		if engines[i], err = newEngine(m, "bench", nil, nil, ScanOptions{}, operations.Config{Store: store, MaxConcurrent: 3, Logger: quietLog, Replica: replica}); err != nil {
			b.Fatal(err)
		}
		defer engines[i].Close(ctx)
	}
	run := func(e *operations.Engine, client string, params []byte) time.Duration {
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

	var p50 [3]float64
	for i, name := range []string{"memory", "neo4j", "shared"} {
		b.Run(name, func(b *testing.B) {
			run(engines[i], "warm", small)
			var lat []time.Duration
			for b.Loop() {
				lat = append(lat, run(engines[i], "serial", small))
			}
			slices.Sort(lat)
			p50[i] = float64(lat[len(lat)/2].Microseconds()) / 1000
			b.ReportMetric(p50[i], "p50-ms")
		})
	}
	if p50[0] == 0 || p50[1] == 0 || p50[2] == 0 {
		return
	}
	var opsTime, importTime [3]time.Duration
	importItems := 0
	for _, i := range []int{0, 1, 2, 2, 1, 0} {
		start := time.Now()
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				for range 5 {
					run(engines[i], fmt.Sprint("client", c), small)
				}
			})
		}
		wg.Wait()
		opsTime[i] += time.Since(start)
		big, n := graph(2, 10, 500)
		importItems = n
		importTime[i] += run(engines[i], "big", big)
	}
	opsPerSec := func(i int) float64 { return 80 / opsTime[i].Seconds() }
	importRate := func(i int) float64 { return float64(2*importItems) / importTime[i].Seconds() }
	b.Run("ratios", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(p50[1]/p50[0], "p50_neo4j_vs_memory")
		b.ReportMetric(opsPerSec(1)/opsPerSec(0), "ops_neo4j_vs_memory")
		b.ReportMetric(importRate(1)/importRate(0), "import_neo4j_vs_memory")
		b.ReportMetric(p50[2]/p50[0], "p50_shared_vs_memory")
		b.ReportMetric(opsPerSec(2)/opsPerSec(0), "ops_shared_vs_memory")
		b.ReportMetric(importRate(2)/importRate(0), "import_shared_vs_memory")
		b.ReportMetric(opsPerSec(0), "memory-ops/s")
		b.ReportMetric(opsPerSec(1), "neo4j-ops/s")
		b.ReportMetric(opsPerSec(2), "shared-ops/s")
		b.ReportMetric(importRate(0), "memory-import-items/s")
		b.ReportMetric(importRate(1), "neo4j-import-items/s")
		b.ReportMetric(importRate(2), "shared-import-items/s")
	})
}
