// Command custom-operation shows how to add an operation type of your own to
// ATG: "inventory" (see InventoryType in inventory.go) reads an Azure resource inventory, the
// JSON printed by `az resource list -o json`, and writes Tenant, Subscription,
// ResourceGroup and Resource nodes linked by CONTAINS relationships, in
// committed chunks with progress.
//
// The same type runs three ways (-mode):
//
//	embedded  import in this process: a local atg.Client with the type
//	          registered, against NEO4J_URI / NEO4J_PASSWORD (default)
//	serve     an atg-server with the type registered (ATG_SERVER_*,
//	          ENVIRONMENT, ATG_API_KEYS, NEO4J_*), until Ctrl-C
//	remote    submit the import to ATG_SERVICE_URL with ATG_API_KEY
//
// Without -inventory it imports the bundled sample (testdata/az-resource-list.json,
// tenant d5b9c3a1-6e4f-4b2a-9c8d-7e1f0a3b5c26); -cleanup deletes the imported
// tenant and everything it contains afterwards. Your own tenant:
//
//	az resource list -o json > inventory.json
//	go run ./examples/custom-operation -inventory inventory.json \
//	    -tenant-id "$(az account show --query tenantId -o tsv)"
//
// Exit status: 0 done, 1 failed, 2 bad flags.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// SampleTenantID is the tenant of the bundled sample inventory.
const SampleTenantID = "d5b9c3a1-6e4f-4b2a-9c8d-7e1f0a3b5c26"

// sampleInventory is testdata/az-resource-list.json: 42 resources in 4
// resource groups of 2 subscriptions, as `az resource list -o json` prints them.
//
//go:embed testdata/az-resource-list.json
var sampleInventory []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "custom-operation:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "custom-operation:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument (exit status 2).
type usageError struct{ error }

// run is the whole program; environ replaces the process environment when
// not nil (tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ map[string]string) error {
	fs := flag.NewFlagSet("custom-operation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "embedded", "embedded (import in this process), serve (an atg-server with the inventory type) or remote (submit to ATG_SERVICE_URL)")
	envFile := fs.String("env-file", ".env", "optional .env file; the real environment wins")
	inventory := fs.String("inventory", "", "file printed by `az resource list -o json` (default: the bundled sample)")
	tenantID := fs.String("tenant-id", "", "tenant the inventory belongs to (default: the sample's tenant when -inventory and -path are not set)")
	path := fs.String("path", "", "send this file name instead of the inventory: the server reads it from its -inventory-dir")
	inventoryDir := fs.String("inventory-dir", "", "let imports name inventory files in this folder with \"path\" (embedded and serve)")
	label := fs.String("label", "", "extra label for every node written")
	idPrefix := fs.String("id-prefix", "", "prefix for every node id written")
	chunkSize := fs.Int("chunk-size", 0, "nodes or relationships per transaction (0: the default)")
	listen := fs.String("listen", "", "serve: listen on this address (e.g. 127.0.0.1:0) instead of ATG_SERVER_HOST:ATG_SERVER_PORT")
	cleanup := fs.Bool("cleanup", false, "delete the imported tenant and everything it contains before exiting")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if *mode != "embedded" && *mode != "serve" && *mode != "remote" {
		return usageError{fmt.Errorf("-mode %q: must be embedded, serve or remote", *mode)}
	}
	load := atg.LoadOptions{DotenvFile: *envFile, Environ: environ}

	if *mode == "serve" {
		return serve(ctx, load, *listen, *inventoryDir, *chunkSize, stdout, stderr)
	}

	params := InventoryParams{TenantID: *tenantID, Path: *path, Label: *label, IDPrefix: *idPrefix, ChunkSize: *chunkSize}
	switch {
	case *path != "" && *inventory != "":
		return usageError{errors.New("give -inventory or -path, not both")}
	case *path != "":
	case *inventory != "":
		data, err := os.ReadFile(*inventory)
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return fmt.Errorf("%s is not JSON: expected the output of `az resource list -o json`", *inventory)
		}
		params.Inventory = data
	default:
		params.Inventory = sampleInventory
		if params.TenantID == "" {
			params.TenantID = SampleTenantID
		}
	}

	var client *atg.Client
	switch *mode {
	case "embedded":
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		cfg, err := atg.LoadNeo4jConfig(auth.Dev, load)
		if err != nil {
			return err
		}
		// The inventory type works on the client's own Neo4j manager (one pool).
		inventoryType := func(db *neo4jpool.Manager, env string) operations.Type {
			return InventoryType(db, env, InventoryOptions{InventoryDir: *inventoryDir})
		}
		client, err = atg.NewClient(atg.ClientOptions{Neo4j: cfg, TypeFactories: []atg.TypeFactory{inventoryType}, Logger: log})
		if err != nil {
			return err
		}
	default: // remote
		cfg, err := atg.LoadClientConfig(load)
		if err != nil {
			return err
		}
		cfg.RemoteMode = true // this mode is remote whatever ATG_REMOTE_MODE says
		if err := cfg.Validate(); err != nil {
			return err
		}
		client, err = atg.NewClient(atg.ClientOptions{Config: cfg, UserAgent: "atg-example-custom-operation"})
		if err != nil {
			return err
		}
	}
	defer client.Close(context.WithoutCancel(ctx))
	tenant, err := importAndReport(ctx, client, params, stdout)
	if err != nil || !*cleanup {
		return err
	}
	q, err := client.Query(ctx, transport.QueryRequest{
		Mode:       "write",
		Query:      "MATCH (:Tenant {id: $tenant})-[:CONTAINS*0..3]->(n) WITH DISTINCT n DETACH DELETE n RETURN count(n) AS deleted",
		Parameters: map[string]any{"tenant": tenant},
	})
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	fmt.Fprintf(stdout, "deleted %v nodes\n", q.Rows[0][0])
	return nil
}

// importAndReport runs an inventory import with client, printing progress, the result and
// a summary read back with a query. It returns the tenant's node id.
func importAndReport(ctx context.Context, client *atg.Client, params InventoryParams, stdout io.Writer) (string, error) {
	where := "in this process"
	if client.Remote() {
		where = "on the server"
	}
	sub, err := client.Submit(ctx, InventoryTypeName, params)
	if err != nil {
		// An unknown type or bad params: a *transport.Error with code
		// VALIDATION_ERROR naming the parameter (or the supported types).
		return "", fmt.Errorf("submit import: %w", err)
	}
	fmt.Fprintf(stdout, "inventory import %s submitted (%s)\n", sub.OperationID, where)
	raw, err := client.Wait(ctx, sub.OperationID, func(p operations.Progress) {
		fmt.Fprintf(stdout, "%5.1f%%  %s\n", p.Percent, p.Message)
	})
	if err != nil {
		if ctx.Err() != nil && client.Remote() {
			return "", fmt.Errorf("stopped waiting; import %s goes on on the server: %w", sub.OperationID, ctx.Err())
		}
		return "", fmt.Errorf("import %s: %w", sub.OperationID, err)
	}
	var res InventoryResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", fmt.Errorf("decode import result: %w", err)
	}
	fmt.Fprintf(stdout, "tenant %s: %d subscriptions, %d resource groups, %d resources (%d duplicate items skipped)\n",
		res.TenantID, res.Subscriptions, res.ResourceGroups, res.Resources, res.Duplicates)
	fmt.Fprintf(stdout, "wrote %d nodes (%d new) and %d relationships (%d new) in %d chunks\n",
		res.Nodes, res.NodesCreated, res.Relationships, res.RelationshipsCreated, res.Chunks)

	tenant := params.IDPrefix + "/tenants/" + res.TenantID
	q, err := client.Query(ctx, transport.QueryRequest{
		Query: `MATCH (:Tenant {id: $tenant})-[:CONTAINS]->(s:Subscription)-[:CONTAINS]->(g:ResourceGroup)-[:CONTAINS]->(r:Resource)
RETURN s.subscription_id AS subscription, g.name AS resource_group, count(r) AS resources, collect(DISTINCT r.location) AS locations
ORDER BY subscription, resource_group`,
		Parameters: map[string]any{"tenant": tenant},
	})
	if err != nil {
		return "", fmt.Errorf("query the imported tenant: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(q.Columns, "\t")))
	for _, row := range q.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = cell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tenant, tw.Flush()
}

// cell formats a query value (JSON types, numbers as json.Number).
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any: // collected sets: sorted for a stable display
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// serve runs an atg-server with the inventory type registered until ctx ends.
func serve(ctx context.Context, load atg.LoadOptions, listen, inventoryDir string, chunkSize int, stdout, stderr io.Writer) error {
	cfg, err := atg.LoadServerConfig(load)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	env := string(cfg.Environment)
	// The inventory type works on the server's own Neo4j manager (one pool).
	srv := &atg.Server{
		Config: cfg,
		Logger: log,
		TypeFactories: []atg.TypeFactory{func(db *neo4jpool.Manager, env string) operations.Type {
			return InventoryType(db, env, InventoryOptions{InventoryDir: inventoryDir, ChunkSize: chunkSize})
		}},
	}
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		srv.Listener = ln
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "atg-server with the %q operation type listening on %s (environment %s)\n", InventoryTypeName, srv.URL(), env)
	if key := srv.DevKey(); key != "" {
		fmt.Fprintf(stdout, "No API key configured: generated a dev key, valid until this process exits (shown once):\n%s\n", key)
	}
	fmt.Fprintf(stdout, "Import from another terminal: ATG_SERVICE_URL=%s ATG_API_KEY=<key> go run ./examples/custom-operation -mode remote\n", srv.URL())

	served := make(chan error, 1)
	go func() { served <- srv.Wait() }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = atg.DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "server stopped")
	return nil
}
