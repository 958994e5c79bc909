package neo4jstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/neo4jstore"
)

// BenchmarkCrossReplica measures, with two replicated engines on Shared
// stores in one namespace and the default settings (PollInterval 250 ms,
// progress persisted at most twice a second), what a user of one replica
// waits for about an operation that runs on the other:
//   - first-event: from Subscribe on the other replica to its first event;
//   - progress: from the work's first Progress call to that event reaching
//     the other replica's watcher;
//   - cancel: from Cancel on the other replica to the work's context being
//     cancelled on the running one.
//
// Each reports p50 and p99 over crossReplicaSamples operations, 4 at a
// time (the target for first-event and cancel is p99 <= 1 s).
func BenchmarkCrossReplica(b *testing.B) {
	m, s := manager(b)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(b), Logger: quiet, Shared: true}

	// A "hold" operation reports progress once, then waits for its cancel.
	var mu sync.Mutex
	progressAt := map[string]time.Time{} // by the params' tag
	cancelledAt := map[string]time.Time{}
	engines := map[string]*operations.Engine{}
	for _, name := range []string{"a", "b"} {
		reg := &operations.Registry{}
		if err := reg.Register(operations.Type{Name: "hold", Run: func(ctx context.Context, params json.RawMessage, r operations.Reporter) (any, error) {
			var p struct{ Tag string }
			_ = json.Unmarshal(params, &p)
			mu.Lock()
			progressAt[p.Tag] = time.Now()
			mu.Unlock()
			r.Progress(operations.Progress{Done: 1, Total: 2})
			<-ctx.Done()
			mu.Lock()
			cancelledAt[p.Tag] = time.Now()
			mu.Unlock()
			return nil, ctx.Err()
		}}); err != nil {
			b.Fatal(err)
		}
		e, err := operations.New(operations.Config{Registry: reg, Store: openConfig(b, s, cfg), Logger: quiet, Replica: name, MaxConcurrent: 4})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Close(ctx) })
		engines[e.Replica()] = e
	}
	other := func(replica string) *operations.Engine {
		for name, e := range engines {
			if name != replica {
				return e
			}
		}
		return nil
	}
	var submitOn []*operations.Engine
	for _, e := range engines {
		submitOn = append(submitOn, e)
	}

	// sample runs one operation and returns its three latencies.
	sample := func(i int) (first, progress, cancel time.Duration) {
		tag := fmt.Sprint("op", i)
		op, _, err := submitOn[i%2].Submit(ctx, operations.SubmitRequest{Type: "hold", ClientID: fmt.Sprint("client", i%4), Params: json.RawMessage(fmt.Sprintf(`{"tag":%q}`, tag))})
		if err != nil {
			b.Fatal(err)
		}
		// Wait until a replica claims it, to watch from the other one.
		var running operations.Operation
		for running.Replica == "" {
			if running, err = submitOn[i%2].Get(ctx, op.ID); err != nil {
				b.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		watcher := other(running.Replica)
		start := time.Now()
		sub, err := watcher.Subscribe(ctx, op.ID, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		wctx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		for {
			ev, err := sub.Next(wctx)
			if err != nil {
				b.Fatalf("%s on the other replica: %v", op.ID, err)
			}
			if first == 0 {
				first = time.Since(start)
			}
			if ev.Type == operations.EventProgress {
				mu.Lock()
				progress = time.Since(progressAt[tag])
				mu.Unlock()
				break
			}
		}
		sent := time.Now()
		if _, err := watcher.Cancel(ctx, op.ID, "benchmark"); err != nil {
			b.Fatal(err)
		}
		for {
			mu.Lock()
			at, ok := cancelledAt[tag]
			mu.Unlock()
			if ok {
				cancel = at.Sub(sent)
				break
			}
			if time.Since(sent) > 10*time.Second {
				b.Fatalf("%s: the cancel did not reach %s", op.ID, running.Replica)
			}
			time.Sleep(time.Millisecond)
		}
		return first, progress, cancel
	}

	var firsts, progresses, cancels []time.Duration
	for b.Loop() {
		var wg sync.WaitGroup
		var lock sync.Mutex
		for i := range crossReplicaSamples {
			wg.Go(func() {
				f, p, c := sample(i)
				lock.Lock()
				firsts, progresses, cancels = append(firsts, f), append(progresses, p), append(cancels, c)
				lock.Unlock()
			})
			if i%4 == 3 {
				wg.Wait()
			}
		}
		wg.Wait()
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"first-event", firsts}, {"progress", progresses}, {"cancel", cancels}} {
		slices.Sort(m.d)
		b.ReportMetric(ms(m.d[len(m.d)/2]), m.name+"-p50-ms")
		b.ReportMetric(ms(m.d[(len(m.d)*99)/100]), m.name+"-p99-ms")
	}
}

// crossReplicaSamples is how many operations one BenchmarkCrossReplica
// iteration runs.
const crossReplicaSamples = 100

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
