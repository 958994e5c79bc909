package neo4jpool_test

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// Acceptance thresholds of the import benchmark (issue 3).
const (
	minSpeedupVsPerItem = 20.0
	minRatioVsBareLoop  = 0.85
)

// benchGraph returns n nodes and n relationships (a ring) under label; all
// nodes have the label set {label, "BenchResource"}, all relationships the
// type CONTAINS, so a hand-written loop can use one statement per kind.
func benchGraph(label string, n int) neo4jpool.Graph {
	g := neo4jpool.Graph{Nodes: make([]neo4jpool.Node, n), Relationships: make([]neo4jpool.Relationship, n)}
	for i := range n {
		g.Nodes[i] = benchNode(label, i)
		g.Relationships[i] = neo4jpool.Relationship{
			Type: "CONTAINS", From: benchID(label, i), To: benchID(label, (i+1)%n),
			Properties: map[string]any{"weight": i % 10},
		}
	}
	return g
}

func benchID(label string, i int) string { return fmt.Sprintf("/bench/%s/resources/r%d", label, i) }

func benchNode(label string, i int) neo4jpool.Node {
	return neo4jpool.Node{
		ID:     benchID(label, i),
		Labels: []string{label, "BenchResource"},
		Properties: map[string]any{
			"name": fmt.Sprintf("resource-%d", i), "location": "westeurope", "index": i,
			"tags": []string{"env:bench", "team:atg"},
		},
	}
}

func nodeStatement(label string) string {
	return "UNWIND $rows AS row MERGE (n:GraphNode {id: row.id}) SET n:`" + label + "`:BenchResource SET n += row.props"
}

const relStatement = "UNWIND $rows AS row MATCH (a:GraphNode {id: row.from}) MATCH (b:GraphNode {id: row.to}) " +
	"MERGE (a)-[r:CONTAINS]->(b) SET r += row.props"

func runWrite(ctx context.Context, session neo4j.SessionWithContext, cypher string, params map[string]any) error {
	_, err := session.ExecuteWrite(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, cypher, params)
		if err != nil {
			return nil, err
		}
		return res.Consume(ctx)
	})
	return err
}

// perItem is the original's example loop: one transaction per node, then
// one per relationship, on the bare driver.
func perItem(ctx context.Context, d neo4j.DriverWithContext, db string, g neo4jpool.Graph, label string) error {
	session := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: db})
	defer session.Close(ctx)
	nodeStmt := nodeStatement(label)
	for _, n := range g.Nodes {
		rows := []any{map[string]any{"id": n.ID, "props": n.Properties}}
		if err := runWrite(ctx, session, nodeStmt, map[string]any{"rows": rows}); err != nil {
			return err
		}
	}
	for _, r := range g.Relationships {
		rows := []any{map[string]any{"from": r.From, "to": r.To, "props": r.Properties}}
		if err := runWrite(ctx, session, relStatement, map[string]any{"rows": rows}); err != nil {
			return err
		}
	}
	return nil
}

// bareUnwind is a hand-written UNWIND loop on the bare driver: rows built
// from the same Node values, 1,000 per transaction.
func bareUnwind(ctx context.Context, d neo4j.DriverWithContext, db string, g neo4jpool.Graph, label string, chunk int) error {
	session := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: db})
	defer session.Close(ctx)
	nodeStmt := nodeStatement(label)
	for start := 0; start < len(g.Nodes); start += chunk {
		end := min(start+chunk, len(g.Nodes))
		rows := make([]any, 0, end-start)
		for _, n := range g.Nodes[start:end] {
			rows = append(rows, map[string]any{"id": n.ID, "props": n.Properties})
		}
		if err := runWrite(ctx, session, nodeStmt, map[string]any{"rows": rows}); err != nil {
			return err
		}
	}
	for start := 0; start < len(g.Relationships); start += chunk {
		end := min(start+chunk, len(g.Relationships))
		rows := make([]any, 0, end-start)
		for _, r := range g.Relationships[start:end] {
			rows = append(rows, map[string]any{"from": r.From, "to": r.To, "props": r.Properties})
		}
		if err := runWrite(ctx, session, relStatement, map[string]any{"rows": rows}); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkImport imports 50,000 nodes and 50,000 relationships with the
// Importer (chunks of 1,000) and compares it, in the same run against the
// same database, with
//
//   - the original's loop, one transaction per item, measured on a sample
//     of 1,000 nodes and 1,000 relationships and extrapolated per item to
//     100,000 items (running it in full would take minutes);
//   - a hand-written UNWIND loop on the bare driver (same statements, same
//     chunk size). Bare loop and importer run twice each, in the order
//     bare, importer, importer, bare, so that a store growing during the
//     run favours neither.
//
// Each run writes new nodes under its own label; everything is deleted
// afterwards.
func BenchmarkImport(b *testing.B) {
	const n, sample, chunk = 50_000, 1_000, 1_000
	ctx := context.Background()
	s, cfg := realConfig(b)
	m := newManager(b, neo4jpool.Options{})
	if err := m.Configure(ctx, "bench", cfg); err != nil {
		b.Fatal(err)
	}
	d := neo4jtest.Driver(b, s)
	im := &neo4jpool.Importer{Manager: m, Env: "bench", ChunkSize: chunk}
	if err := im.EnsureConstraints(ctx); err != nil { // the base-label index, outside the timings
		b.Fatal(err)
	}
	newLabel := func() string {
		l := neo4jtest.Unique(b)
		neo4jtest.CleanupLabel(b, d, s, l)
		return l
	}

	for b.Loop() {
		// Baseline 1: one transaction per item, on a sample.
		label := newLabel()
		g := benchGraph(label, sample)
		start := time.Now()
		if err := perItem(ctx, d, s.Database, g, label); err != nil {
			b.Fatal(err)
		}
		perItemSec := time.Since(start).Seconds() / float64(2*sample)

		// Baseline 2 and the importer, ABBA.
		var bare, chunked time.Duration
		for _, which := range []string{"bare", "importer", "importer", "bare"} {
			label := newLabel()
			g := benchGraph(label, n)
			runtime.GC()
			start := time.Now()
			switch which {
			case "bare":
				if err := bareUnwind(ctx, d, s.Database, g, label, chunk); err != nil {
					b.Fatal(err)
				}
				bare += time.Since(start)
			default:
				res, err := im.Import(ctx, g, nil)
				if err != nil {
					b.Fatal(err)
				}
				chunked += time.Since(start)
				if res.Nodes != n || res.Relationships != n || res.Chunks != 2*n/chunk {
					b.Fatalf("import result: %+v", res)
				}
			}
		}
		items := float64(2 * n)
		chunkedRate := 2 * items / chunked.Seconds()
		bareRate := 2 * items / bare.Seconds()
		perItemRate := 1 / perItemSec
		speedup := chunkedRate / perItemRate
		ratio := chunkedRate / bareRate
		b.ReportMetric(chunkedRate, "importer-items/s")
		b.ReportMetric(bareRate, "bare-unwind-items/s")
		b.ReportMetric(perItemRate, "per-item-items/s")
		b.ReportMetric(speedup, "x-vs-per-item")
		b.ReportMetric(ratio, "ratio-vs-bare-unwind")
		b.Logf("50,000 nodes + 50,000 relationships, chunks of 1,000: importer %.1fs (%.0f items/s), bare UNWIND loop %.1fs (%.0f items/s), "+
			"one transaction per item %.2f ms/item (%.0f items/s, measured on %d+%d items, extrapolated to %.0fs for 100,000 items)",
			chunked.Seconds()/2, chunkedRate, bare.Seconds()/2, bareRate, perItemSec*1000, perItemRate, sample, sample, perItemSec*items)
		b.Logf("importer vs one transaction per item: %.1fx (need >= %.0fx); importer vs bare UNWIND loop: %.2fx (need >= %.2fx)",
			speedup, minSpeedupVsPerItem, ratio, minRatioVsBareLoop)
		if speedup < minSpeedupVsPerItem {
			b.Errorf("importer only %.1fx faster than one transaction per item", speedup)
		}
		if ratio < minRatioVsBareLoop {
			b.Errorf("importer reaches only %.2fx the throughput of the bare UNWIND loop", ratio)
		}
	}
}

// streamNodes yields n generated nodes without materialising them.
func streamNodes(label string, n int) iter.Seq2[neo4jpool.Node, error] {
	return func(yield func(neo4jpool.Node, error) bool) {
		for i := range n {
			if !yield(benchNode(label, i), nil) {
				return
			}
		}
	}
}

// heapPeak samples runtime.MemStats.HeapAlloc every 20 ms until stopped and
// returns the highest value seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peak.Load() {
			peak.Store(ms.HeapAlloc)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak.Load()
	}
}

// BenchmarkImportStream imports 200,000 nodes from a stream (an iterator
// that generates them) and reports the peak heap above the starting heap,
// next to the same for 20,000 nodes and to the heap 200,000 materialised
// Node values would take: memory stays bounded by the chunk, not the input.
func BenchmarkImportStream(b *testing.B) {
	const big, small = 200_000, 20_000
	ctx := context.Background()
	s, cfg := realConfig(b)
	m := newManager(b, neo4jpool.Options{})
	if err := m.Configure(ctx, "bench", cfg); err != nil {
		b.Fatal(err)
	}
	d := neo4jtest.Driver(b, s)
	im := &neo4jpool.Importer{Manager: m, Env: "bench", ChunkSize: 1000}
	if err := im.EnsureConstraints(ctx); err != nil {
		b.Fatal(err)
	}
	const mb = 1 << 20

	// What holding the input would cost.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	held := make([]neo4jpool.Node, 0, big)
	for nd := range streamNodes("X", big) {
		held = append(held, nd)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	materialised := float64(after.HeapAlloc-before.HeapAlloc) / mb
	runtime.KeepAlive(held)
	held = nil
	_ = held

	run := func(n int) (peakMB, allocMB, rate float64) {
		label := neo4jtest.Unique(b)
		neo4jtest.CleanupLabel(b, d, s, label)
		runtime.GC()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		stop := heapPeak()
		start := time.Now()
		res, err := im.ImportStream(ctx, streamNodes(label, n), nil, nil)
		elapsed := time.Since(start)
		peak := stop()
		runtime.ReadMemStats(&ms1)
		if err != nil {
			b.Fatal(err)
		}
		if res.Nodes != n {
			b.Fatalf("imported %d nodes", res.Nodes)
		}
		return float64(peak-min(peak, ms0.HeapAlloc)) / mb, float64(ms1.TotalAlloc-ms0.TotalAlloc) / mb, float64(n) / elapsed.Seconds()
	}

	for b.Loop() {
		smallPeak, _, _ := run(small)
		bigPeak, bigAlloc, rate := run(big)
		b.ReportMetric(bigPeak, "peak-heap-MB")
		b.ReportMetric(smallPeak, "peak-heap-20k-MB")
		b.ReportMetric(materialised, "materialised-200k-MB")
		b.ReportMetric(bigAlloc, "allocated-MB")
		b.ReportMetric(rate, "nodes/s")
		b.Logf("stream import of 200,000 nodes: peak heap +%.1f MB (20,000 nodes: +%.1f MB; holding 200,000 Node values: %.1f MB), "+
			"%.0f MB allocated in total, %.0f nodes/s", bigPeak, smallPeak, materialised, bigAlloc, rate)
		if bigPeak > materialised/2 || bigPeak > 4*smallPeak+16 {
			b.Errorf("memory does not look bounded: peak +%.1f MB for 200,000 nodes, +%.1f MB for 20,000", bigPeak, smallPeak)
		}
	}
}
