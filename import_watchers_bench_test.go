package atg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// BenchmarkImportWithWatchers imports 2,000 nodes in chunks of 5 (one
// progress event per chunk, 400 in all) into the test Neo4j through the
// operations engine, with 0 and with 1,000 watchers following the
// operation (resubscribing after the last event seen when they lag), in
// the order 0, 1000, 1000, 0 so that a store growing during the run favours
// neither. It reports both rates and their ratio ("ratio", bar 0.8). Every
// run writes under its own label; everything is deleted afterwards.
//
//	go test -run '^$' -bench ImportWithWatchers -benchtime 1x .
func BenchmarkImportWithWatchers(b *testing.B) {
	const nodes, chunk, watchers = 2000, 5, 1000
	s := neo4jtest.Require(b)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quietLog})
	b.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(ctx, "bench", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		b.Fatal(err)
	}
	d := neo4jtest.Driver(b, s)
	reg := &operations.Registry{}
	if err := reg.Register(ImportType(m, "bench")); err != nil {
		b.Fatal(err)
	}
	e, err := operations.New(operations.Config{Registry: reg, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(context.Background()) })

	importRate := func(watchers int) float64 {
		label := neo4jtest.Unique(b)
		neo4jtest.CleanupLabel(b, d, s, label)
		doc := map[string]any{"chunk_size": chunk, "relationships": []any{}}
		ns := make([]map[string]any, nodes)
		for i := range ns {
			ns[i] = map[string]any{"id": fmt.Sprintf("/bench/%s/r%d", label, i), "labels": []string{label}, "properties": map[string]any{"i": i}}
		}
		doc["nodes"] = ns
		params, err := json.Marshal(doc)
		if err != nil {
			b.Fatal(err)
		}
		// The watchers subscribe right after the submit, from seq 0: the
		// first events may come from the history, the rest live.
		op, _, err := e.Submit(ctx, operations.SubmitRequest{ClientID: "bench", Type: ImportTypeName, Params: params})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, watchers)
		for range watchers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var last int64
				var ev operations.Event
				sub, err := e.Subscribe(ctx, op.ID, 0)
				for err == nil {
					if ev, err = sub.Next(ctx); err == nil {
						last = ev.Seq
					} else if errors.Is(err, operations.ErrLagged) {
						sub.Close()
						sub, err = e.Subscribe(ctx, op.ID, last)
					}
				}
				if sub != nil {
					sub.Close()
				}
				if !errors.Is(err, io.EOF) {
					errs <- err
				}
			}()
		}
		done, err := e.Wait(ctx, op.ID)
		if err != nil || done.Status != operations.Completed || done.StartedAt == nil {
			b.Fatalf("import: %s %+v %v", done.Status, done.Error, err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return nodes / done.FinishedAt.Sub(*done.StartedAt).Seconds()
	}

	for b.Loop() {
		var base, loaded float64
		for _, w := range []int{0, watchers, watchers, 0} {
			start := time.Now()
			r := importRate(w)
			b.Logf("%d watchers: %.0f nodes/s (%s)", w, r, time.Since(start).Round(time.Millisecond))
			if w == 0 {
				base += r / 2
			} else {
				loaded += r / 2
			}
		}
		b.ReportMetric(base, "nodes/s_0_watchers")
		b.ReportMetric(loaded, "nodes/s_1000_watchers")
		b.ReportMetric(loaded/base, "ratio")
	}
}
