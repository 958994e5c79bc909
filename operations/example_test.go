package operations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/atgraph/atg/operations"
)

// Example registers a type, runs one operation, and replays its events.
func Example() {
	ctx := context.Background()
	reg := &operations.Registry{}
	if err := reg.Register(operations.Type{Name: "count", Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
		for i := 1; i <= 3; i++ {
			r.Progress(operations.Progress{Done: int64(i), Total: 3})
		}
		return map[string]int{"counted": 3}, nil
	}}); err != nil {
		panic(err)
	}
	e, err := operations.New(operations.Config{Registry: reg})
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx)

	op, _, err := e.Submit(ctx, operations.SubmitRequest{ClientID: "alice", Type: "count"})
	if err != nil {
		panic(err)
	}
	done, err := e.Wait(ctx, op.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(done.Status, string(done.Result))

	sub, err := e.Subscribe(ctx, op.ID, 0)
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	for {
		ev, err := sub.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Seq, ev.Type)
	}
	// Output:
	// completed {"counted":3}
	// 1 status
	// 2 status
	// 3 progress
	// 4 progress
	// 5 progress
	// 6 complete
}
