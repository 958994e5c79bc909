package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// benchEvents is how many progress events the benchmark's operation
// publishes.
const benchEvents = 2000

// publishRate runs one operation that publishes benchEvents progress
// events, each after `work` of simulated waiting (a chunk's round trip to
// the database), while `watchers` watchers follow it, resubscribing after
// the last event seen whenever they lag, as SSE clients do. It returns the
// events published per second.
func publishRate(tb testing.TB, watchers int, work time.Duration) float64 {
	tb.Helper()
	start := make(chan struct{})
	var elapsed time.Duration
	reg := &Registry{}
	if err := reg.Register(Type{Name: "publish", Run: func(ctx context.Context, _ json.RawMessage, r Reporter) (any, error) {
		<-start
		t0 := time.Now()
		for i := range benchEvents {
			if work > 0 {
				time.Sleep(work)
			}
			r.Progress(Progress{Done: int64(i + 1), Total: benchEvents, Phase: "nodes"})
		}
		elapsed = time.Since(t0)
		return nil, nil
	}}); err != nil {
		tb.Fatal(err)
	}
	e, err := New(Config{Registry: reg, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = e.Close(context.Background()) }()
	ctx := context.Background()
	op, _, err := e.Submit(ctx, SubmitRequest{ClientID: "c", Type: "publish"})
	if err != nil {
		tb.Fatal(err)
	}
	var ready, done sync.WaitGroup
	errs := make(chan error, watchers)
	for range watchers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			var last int64
			sub, err := e.Subscribe(ctx, op.ID, last)
			ready.Done()
			for err == nil {
				var ev Event
				ev, err = sub.Next(ctx)
				switch {
				case err == nil:
					last = ev.Seq
				case errors.Is(err, ErrLagged):
					sub.Close()
					sub, err = e.Subscribe(ctx, op.ID, last)
				}
			}
			if sub != nil {
				sub.Close()
			}
			if !errors.Is(err, io.EOF) {
				errs <- err
			} else if last != benchEvents+3 {
				errs <- fmt.Errorf("watcher ended at seq %d, want %d", last, benchEvents+3)
			}
		}()
	}
	ready.Wait()
	close(start)
	if _, err := e.Wait(ctx, op.ID); err != nil {
		tb.Fatal(err)
	}
	done.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return benchEvents / elapsed.Seconds()
}

// BenchmarkPublishWithWatchers compares the publishing rate of an
// operation with 0 and with 1,000 watchers in one run, and reports the
// ratio ("ratio" = events/s with 1,000 watchers ÷ events/s with none; the
// bar is 0.8). "work" is the simulated wait before each event: 0 publishes
// flat out (a worst case no import reaches), 1ms is a fast chunk.
//
//	go test -run '^$' -bench PublishWithWatchers -benchtime 3x ./operations/
func BenchmarkPublishWithWatchers(b *testing.B) {
	for _, work := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprint("work=", work), func(b *testing.B) {
			var base, loaded float64
			for b.Loop() {
				base += publishRate(b, 0, work)
				loaded += publishRate(b, 1000, work)
			}
			b.ReportMetric(base/float64(b.N), "events/s_0_watchers")
			b.ReportMetric(loaded/float64(b.N), "events/s_1000_watchers")
			b.ReportMetric(loaded/base, "ratio")
		})
	}
}
