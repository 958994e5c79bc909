// Package operations runs long-lived, asynchronous units of work
// ("operations", such as a graph import) for the ATG server and the local
// client, and lets callers follow them.
//
// An Engine takes submissions of registered Types, queues them, runs at
// most Config.MaxConcurrent at once (a free slot goes to the client with
// the fewest running, so one client cannot starve the others), and moves
// each along a state machine — queued → running → completed, failed or
// cancelled — in which a terminal state never changes. Work reports
// progress and log lines through a Reporter; every change is an Event,
// numbered from 1 per operation and kept in a Store (MemoryStore by
// default) for Config.Retention after the operation ends.
//
// Watchers Subscribe to an operation after a sequence number and get its
// history, then its live events, ending with exactly one complete or
// error event. Publishing never waits for a watcher: one that falls too far
// behind gets ErrLagged and subscribes again after the last event it saw.
//
// Errors a work function returns reach the operation's owner only as an
// *Error (code, message, details); anything else becomes INTERNAL_ERROR
// "operation failed", with the cause logged on the server.
//
// A minimal use:
//
//	reg := &operations.Registry{}
//	_ = reg.Register(operations.Type{Name: "count", Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
//		for i := 1; i <= 3; i++ {
//			r.Progress(operations.Progress{Done: int64(i), Total: 3})
//		}
//		return map[string]int{"counted": 3}, nil
//	}})
//	e, _ := operations.New(operations.Config{Registry: reg})
//	defer e.Close(context.Background())
//	op, _, _ := e.Submit(ctx, operations.SubmitRequest{ClientID: "alice", Type: "count"})
//	done, _ := e.Wait(ctx, op.ID) // done.Status == operations.Completed
package operations
