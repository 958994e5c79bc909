// Command embedded uses ATG as a library only, with no server: it loads the
// Neo4j configuration from the environment (NEO4J_URI, NEO4J_USER,
// NEO4J_PASSWORD, ... or a .env file), creates a local atg.Client, imports a
// small tenant graph with progress, and queries it back.
//
//	eval "$(scripts/neo4j.sh env)"    # or export NEO4J_* for your database
//	go run ./examples/embedded
//	go run ./examples/embedded -cleanup   # delete what it wrote afterwards
//
// Every node id starts with -id-prefix (default "example-embedded:"), so the
// example never touches other data. Exit status: 0 done, 1 failed, 2 bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument (exit status 2).
type usageError struct{ error }

// run is the whole program; environ replaces the process environment when
// not nil (tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ map[string]string) error {
	fs := flag.NewFlagSet("embedded", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", ".env", "optional .env file; the real environment wins")
	idPrefix := fs.String("id-prefix", "example-embedded:", "prefix of every node id written")
	label := fs.String("label", "", "extra label for every node written")
	chunkSize := fs.Int("chunk-size", 5, "nodes or relationships per transaction")
	cleanup := fs.Bool("cleanup", false, "delete the nodes written (ids starting with -id-prefix) before exiting")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if *cleanup && *idPrefix == "" {
		return usageError{errors.New("-cleanup needs a non-empty -id-prefix")}
	}

	// 1. Configuration: NEO4J_* from the environment or the .env file,
	// validated (every bad value is reported, naming its variable).
	cfg, err := atg.LoadNeo4jConfig(auth.Dev, atg.LoadOptions{DotenvFile: *envFile, Environ: environ})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "neo4j: %v\n", cfg) // the password is redacted

	// 2. A local client: operations run in this process, on a Neo4j pool
	// of its own. It connects on first use.
	client, err := atg.NewClient(atg.ClientOptions{
		Neo4j:  cfg,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))

	h, err := client.Health(ctx)
	if err != nil {
		return err
	}
	if h.Neo4jStatus != "connected" {
		return fmt.Errorf("neo4j is %s: start it (scripts/neo4j.sh start) or check NEO4J_URI and NEO4J_PASSWORD", h.Neo4jStatus)
	}
	fmt.Fprintf(stdout, "neo4j is %s (atg %s, environment %s)\n", h.Neo4jStatus, h.Version, h.Environment)

	// 3. Import a small tenant graph with the built-in "import" operation,
	// in committed chunks, printing each progress report.
	g := tenantGraph(*idPrefix, *label)
	g.ChunkSize = *chunkSize
	fmt.Fprintf(stdout, "importing %d nodes and %d relationships in chunks of %d\n", len(g.Nodes), len(g.Relationships), g.ChunkSize)
	raw, err := client.Run(ctx, atg.ImportTypeName, g, func(p operations.Progress) {
		fmt.Fprintf(stdout, "%5.1f%%  %s\n", p.Percent, p.Message)
	})
	if err != nil {
		// A failed operation is an *operations.Error: Code, Message and
		// Details say what was committed (importing again is safe).
		return fmt.Errorf("import: %w", err)
	}
	var res neo4jpool.ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d nodes (%d new) and %d relationships (%d new) in %d chunks\n",
		res.Nodes, res.NodesCreated, res.Relationships, res.RelationshipsCreated, res.Chunks)

	// 4. Query it back (a read transaction; values come back as JSON
	// values, numbers as json.Number, exactly as a remote client sees them).
	q, err := client.Query(ctx, transport.QueryRequest{
		Query: `MATCH (t:Tenant {id: $tenant})-[:CONTAINS]->(s:Subscription)-[:CONTAINS]->(g:ResourceGroup)-[:CONTAINS]->(r:Resource)
RETURN s.name AS subscription, g.name AS resource_group, r.name AS resource, r.type AS type, r.location AS location
ORDER BY subscription, resource_group, resource`,
		Parameters: map[string]any{"tenant": *idPrefix + "tenant"},
	})
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	fmt.Fprintf(stdout, "%d resources in tenant %q:\n", q.RowCount, *idPrefix+"tenant")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(q.Columns, "\t")))
	for _, row := range q.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// 5. Optionally delete what was written, with a write-mode query.
	if *cleanup {
		q, err := client.Query(ctx, transport.QueryRequest{
			Mode:       "write",
			Query:      "MATCH (n:GraphNode) WHERE n.id STARTS WITH $prefix DETACH DELETE n RETURN count(n) AS deleted",
			Parameters: map[string]any{"prefix": *idPrefix},
		})
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		fmt.Fprintf(stdout, "deleted %v nodes\n", q.Rows[0][0])
	}
	return nil
}

// tenantGraph is a small tenant: 2 subscriptions, 3 resource groups and 8
// resources, linked by CONTAINS. Every id starts with prefix; label, when
// set, is added to every node.
func tenantGraph(prefix, label string) atg.ImportParams {
	var g atg.ImportParams
	node := func(id, kind string, props map[string]any) {
		labels := []string{kind}
		if label != "" {
			labels = append(labels, label)
		}
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: prefix + id, Labels: labels, Properties: props})
	}
	contains := func(from, to string) {
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "CONTAINS", From: prefix + from, To: prefix + to})
	}
	node("tenant", "Tenant", map[string]any{"name": "Contoso"})
	for _, s := range []struct {
		id, name string
		groups   map[string][][3]string // group -> resources {name, type, location}
	}{
		{"sub-prod", "Contoso Production", map[string][][3]string{
			"rg-web": {
				{"app-web", "Microsoft.Web/sites", "westeurope"},
				{"asp-web", "Microsoft.Web/serverFarms", "westeurope"},
				{"kv-web", "Microsoft.KeyVault/vaults", "westeurope"},
			},
			"rg-data": {
				{"sql-main", "Microsoft.Sql/servers", "westeurope"},
				{"stdata", "Microsoft.Storage/storageAccounts", "northeurope"},
			},
		}},
		{"sub-dev", "Contoso Development", map[string][][3]string{
			"rg-sandbox": {
				{"vm-build", "Microsoft.Compute/virtualMachines", "eastus"},
				{"vnet-dev", "Microsoft.Network/virtualNetworks", "eastus"},
				{"crdev", "Microsoft.ContainerRegistry/registries", "eastus"},
			},
		}},
	} {
		node(s.id, "Subscription", map[string]any{"name": s.name})
		contains("tenant", s.id)
		for _, rg := range slices.Sorted(maps.Keys(s.groups)) {
			rgID := s.id + "/" + rg
			node(rgID, "ResourceGroup", map[string]any{"name": rg})
			contains(s.id, rgID)
			for _, r := range s.groups[rg] {
				id := rgID + "/" + r[0]
				node(id, "Resource", map[string]any{"name": r[0], "type": r[1], "location": r[2]})
				contains(rgID, id)
			}
		}
	}
	return g
}
