package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/transport"
)

// newMonitorClient returns a client for housekeeping calls (status, label
// checks, cleanup) that records into rec and never retries on its own.
func newMonitorClient(baseURL, key string, rec *recorder) (*transport.Client, *http.Client, error) {
	hc := newHTTPClient(rec)
	c, err := transport.NewClient(transport.ClientOptions{BaseURL: baseURL, APIKey: key, UserAgent: "atg-load", Version: atg.Version,
		HTTPClient: hc, MaxRetries: -1, RequestTimeout: 3 * time.Minute})
	return c, hc, err
}

// queryWithLimits runs q, waiting out 429s.
func queryWithLimits(ctx context.Context, c *transport.Client, q transport.QueryRequest) (*transport.QueryResponse, error) {
	return waitOutLimits(ctx, func(ctx context.Context) (*transport.QueryResponse, error) { return c.Query(ctx, q) })
}

// statusWithLimits calls GET /api/v1/status, waiting out 429s.
func statusWithLimits(ctx context.Context, c *transport.Client) (*transport.StatusResponse, error) {
	return waitOutLimits(ctx, c.Status)
}

// waitOutLimits calls call(ctx) until it answers anything but 429, sleeping the
// server's Retry-After (at least a second) in between, at most 20 times:
// the rate limits may apply to the monitoring key too, e.g. when it is one
// of the load keys of --url. Other errors are returned at once: the
// monitoring client does not retry them.
func waitOutLimits[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		resp, err := call(ctx)
		var ae *transport.Error
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || attempt >= 20 {
			return resp, err
		}
		sleep(ctx, min(max(ae.RetryAfter, time.Second), transport.MaxRetryAfter))
		if ctx.Err() != nil {
			var zero T
			return zero, ctx.Err()
		}
	}
}

// firstInt returns the first cell of a one-row result as an integer.
func firstInt(resp *transport.QueryResponse) (int64, error) {
	if resp == nil || len(resp.Rows) != 1 || len(resp.Rows[0]) < 1 {
		return 0, errors.New("want one row")
	}
	switch v := resp.Rows[0][0].(type) {
	case json.Number:
		return v.Int64()
	case float64:
		return int64(v), nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("not an integer: %T", resp.Rows[0][0])
}

// countLabel returns how many nodes carry label.
func countLabel(ctx context.Context, c *transport.Client, label string) (int64, error) {
	resp, err := queryWithLimits(ctx, c, transport.QueryRequest{Query: "MATCH (n:`" + label + "`) RETURN count(n) AS n", Mode: "read"})
	if err != nil {
		return 0, err
	}
	return firstInt(resp)
}

// CleanupReport says what the cleanup removed.
type CleanupReport struct {
	// Label is the run's label.
	Label string `json:"label"`
	// NodesDeleted counts the nodes deleted (with their relationships).
	NodesDeleted int64 `json:"nodes_deleted"`
	// Seconds is how long the cleanup took.
	Seconds float64 `json:"seconds"`
	// Error is why it did not finish, if it did not.
	Error string `json:"error,omitempty"`
	// Skipped is true with --keep-data.
	Skipped bool `json:"skipped,omitempty"`
}

// cleanup deletes every node under label (with its relationships) in
// batches, through the API with write queries. There is no schema to
// remove: the import operation creates only the uniqueness constraint of
// the shared base label (atg_id_unique_GraphNode, see neo4jpool.Importer),
// never one for the run's label, and that one is shared by every import.
func cleanup(ctx context.Context, c *transport.Client, label string) (rep CleanupReport) {
	start := time.Now()
	rep.Label = label
	defer func() { rep.Seconds = round(time.Since(start).Seconds(), 3) }()
	del := transport.QueryRequest{Query: "MATCH (n:`" + label + "`) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted",
		Mode: "write", TimeoutMS: 120_000}
	for {
		resp, err := queryWithLimits(ctx, c, del)
		if err != nil {
			rep.Error = "delete nodes: " + err.Error()
			return rep
		}
		n, err := firstInt(resp)
		if err != nil {
			rep.Error = "delete nodes: " + err.Error()
			return rep
		}
		rep.NodesDeleted += n
		if n == 0 {
			return rep
		}
	}
}
