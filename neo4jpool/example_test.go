package neo4jpool_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atgraph/atg/neo4jpool"
)

// Example configures an environment from NEO4J_URI, NEO4J_USER and
// NEO4J_PASSWORD, waits until the database answers, imports a small graph
// and reads it back. It has no Output comment, so `go test` compiles it but
// does not run it (it needs a database).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m := neo4jpool.NewManager(neo4jpool.Options{})
	defer m.CloseAll(context.Background())

	err := m.Configure(ctx, "dev", neo4jpool.Config{
		URI:         os.Getenv("NEO4J_URI"),
		User:        os.Getenv("NEO4J_USER"),
		Password:    os.Getenv("NEO4J_PASSWORD"),
		MaxPoolSize: 10,
	})
	if err != nil {
		log.Fatal(err)
	}

	// Metrics go to the caller's registry.
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())

	waitCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := m.WaitReady(waitCtx, "dev"); err != nil {
		log.Fatal(err)
	}

	im := &neo4jpool.Importer{Manager: m, Env: "dev", ChunkSize: 1000}
	graph := neo4jpool.Graph{
		Nodes: []neo4jpool.Node{
			{ID: "/subscriptions/s1", Labels: []string{"Subscription"}, Properties: map[string]any{"name": "prod"}},
			{ID: "/subscriptions/s1/resourceGroups/rg1", Labels: []string{"ResourceGroup"}},
		},
		Relationships: []neo4jpool.Relationship{
			{Type: "CONTAINS", From: "/subscriptions/s1", To: "/subscriptions/s1/resourceGroups/rg1"},
		},
	}
	res, err := im.Import(ctx, graph, func(p neo4jpool.ImportProgress) {
		fmt.Printf("%s: %d/%d\n", p.Phase, p.Done, p.Total)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("imported %d nodes, %d relationships in %d chunks\n", res.Nodes, res.Relationships, res.Chunks)

	count, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		r, err := tx.Run(ctx, "MATCH (:Subscription {id: $id})-[:CONTAINS]->(g) RETURN count(g)", map[string]any{"id": "/subscriptions/s1"})
		if err != nil {
			return nil, err
		}
		rec, err := r.Single(ctx)
		if err != nil {
			return nil, err
		}
		return rec.Values[0], nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resource groups:", count)

	snap, _ := m.Snapshot("dev")
	fmt.Println("advice:", snap.Recommendation.Action, "-", snap.Recommendation.Reason)
}

// ExampleRetry retries an auto-commit CALL { ... } IN TRANSACTIONS, which
// the driver does not retry itself. The statement is MERGE-based, so
// running it again is harmless.
func ExampleRetry() {
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{})
	defer m.CloseAll(ctx)
	// ... m.Configure(ctx, "dev", cfg) ...

	err := neo4jpool.Retry(ctx, neo4jpool.RetryPolicy{MaxAttempts: 3}, func(ctx context.Context) error {
		session, err := m.NewSession(ctx, "dev", neo4j.AccessModeWrite)
		if err != nil {
			return err
		}
		defer session.Close(ctx)
		res, err := session.Run(ctx, `UNWIND range(1, 100000) AS i
			CALL (i) { MERGE (:Counter {id: i}) } IN TRANSACTIONS OF 10000 ROWS`, nil)
		if err != nil {
			return err
		}
		_, err = res.Consume(ctx)
		return err
	})
	if neo4jpool.IsUnavailable(err) {
		log.Print("database unavailable: ", err)
	}
}
