// Command remote-client talks to an atg-server: it submits a graph import,
// follows its event stream with a progress display, optionally cancels it
// part way (-cancel-after N progress events), and prints the final state.
//
// It reads ATG_SERVICE_URL and ATG_API_KEY (and ATG_REQUEST_TIMEOUT) from the
// environment or a .env file; it always runs in remote mode. With `make run`
// in another terminal:
//
//	export ATG_SERVICE_URL=http://127.0.0.1:8000 ATG_API_KEY=atg_dev_...   # the printed key
//	go run ./examples/remote-client                     # import and watch to the end
//	go run ./examples/remote-client -cancel-after 3     # cancel after 3 progress events
//
// Ctrl-C stops watching but leaves the operation running on the server.
// Every node id starts with -id-prefix (default "example-remote:").
// Exit status: 0 completed (or cancelled as asked), 1 failed, 2 bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/atgraph/atg"
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
		fmt.Fprintln(os.Stderr, "remote-client:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "remote-client:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument (exit status 2).
type usageError struct{ error }

// options are the flags.
type options struct {
	subscriptions, groups, resources int
	chunkSize, cancelAfter           int
	idPrefix, label                  string
	cleanup                          bool
}

// run is the whole program; environ replaces the process environment when
// not nil (tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ map[string]string) error {
	fs := flag.NewFlagSet("remote-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	envFile := fs.String("env-file", ".env", "optional .env file; the real environment wins")
	fs.IntVar(&o.subscriptions, "subscriptions", 3, "subscriptions in the generated tenant graph")
	fs.IntVar(&o.groups, "groups", 10, "resource groups per subscription")
	fs.IntVar(&o.resources, "resources", 100, "resources per resource group")
	fs.IntVar(&o.chunkSize, "chunk-size", 100, "nodes or relationships per transaction")
	fs.IntVar(&o.cancelAfter, "cancel-after", 0, "cancel the operation after this many progress events (0: never)")
	fs.StringVar(&o.idPrefix, "id-prefix", "example-remote:", "prefix of every node id written")
	fs.StringVar(&o.label, "label", "", "extra label for every node written")
	fs.BoolVar(&o.cleanup, "cleanup", false, "delete the nodes written (ids starting with -id-prefix) before exiting")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	case o.subscriptions < 1 || o.groups < 1 || o.resources < 0 || o.cancelAfter < 0:
		return usageError{errors.New("-subscriptions and -groups must be >= 1, -resources and -cancel-after >= 0")}
	case o.cleanup && o.idPrefix == "":
		return usageError{errors.New("-cleanup needs a non-empty -id-prefix")}
	}

	// 1. Configuration: ATG_SERVICE_URL and ATG_API_KEY are required in
	// remote mode; a missing or bad one is reported by name.
	cfg, err := atg.LoadClientConfig(atg.LoadOptions{DotenvFile: *envFile, Environ: environ})
	if err != nil {
		return err
	}
	cfg.RemoteMode = true // this example is remote whatever ATG_REMOTE_MODE says
	if err := cfg.Validate(); err != nil {
		return err
	}
	client, err := atg.NewClient(atg.ClientOptions{Config: cfg, UserAgent: "atg-example-remote-client"})
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(stdout, "client: %v\n", cfg) // the API key is redacted

	// 2. Who are we talking to, and as whom? (Health needs no key; Status
	// does: a bad key fails here with AUTHENTICATION_FAILED.)
	h, err := client.Health(ctx)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	fmt.Fprintf(stdout, "server %s: %s (atg %s, environment %s, neo4j %s)\n", cfg.ServiceURL, h.Status, h.Version, h.Environment, h.Neo4jStatus)
	st, err := client.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	fmt.Fprintf(stdout, "authenticated as %s (scopes %s); operation types: %s\n", st.ClientID, strings.Join(st.Scopes, ","), strings.Join(st.OperationTypes, ", "))

	// 3. Submit the import: it is queued at once and runs on the server.
	g := tenantGraph(o)
	sub, err := client.Submit(ctx, atg.ImportTypeName, g)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	fmt.Fprintf(stdout, "submitted %s: %d nodes and %d relationships in chunks of %d (%s)\n",
		sub.OperationID, len(g.Nodes), len(g.Relationships), g.ChunkSize, sub.Status)

	// 4. Watch its events, cancelling after -cancel-after progress events.
	askedToCancel, err := watch(ctx, client, sub.OperationID, o.cancelAfter, newProgressDisplay(stdout))
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "\ndetached: %s goes on on the server (GET %s)\n", sub.OperationID, sub.Links.Self)
		}
		return err
	}

	// 5. The final state, as any client would read it later.
	op, err := client.Get(ctx, sub.OperationID)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	printFinal(stdout, op)

	if o.cleanup {
		q, err := client.Query(ctx, transport.QueryRequest{
			Mode:       "write",
			Query:      "MATCH (n:GraphNode) WHERE n.id STARTS WITH $prefix DETACH DELETE n RETURN count(n) AS deleted",
			Parameters: map[string]any{"prefix": o.idPrefix},
		})
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		fmt.Fprintf(stdout, "deleted %v nodes\n", q.Rows[0][0])
	}

	switch {
	case op.Status == operations.Completed:
		return nil
	case op.Status == operations.Cancelled && askedToCancel:
		return nil
	case op.Error != nil:
		return fmt.Errorf("operation %s: %w", op.Status, op.Error)
	}
	return fmt.Errorf("operation %s", op.Status)
}

// watch follows operation id to its terminal event, showing progress, and
// cancels it after cancelAfter progress events (0: never). It reports
// whether it asked for the cancellation. The stream resumes by itself after
// a dropped connection, without losing or repeating an event.
func watch(ctx context.Context, client *atg.Client, id string, cancelAfter int, show *progressDisplay) (askedToCancel bool, err error) {
	stream, err := client.Watch(ctx, id, 0)
	if err != nil {
		return false, fmt.Errorf("watch: %w", err)
	}
	defer stream.Close()
	progressEvents := 0
	for {
		ev, err := stream.Next(ctx)
		if errors.Is(err, io.EOF) {
			show.done()
			return askedToCancel, nil
		}
		if err != nil {
			show.done()
			return askedToCancel, fmt.Errorf("watch: %w", err)
		}
		switch ev.Type {
		case operations.EventStatus:
			var d operations.StatusData
			_ = json.Unmarshal(ev.Data, &d)
			show.line(fmt.Sprintf("status: %s", d.Status))
		case operations.EventLog:
			var d operations.LogData
			_ = json.Unmarshal(ev.Data, &d)
			show.line(fmt.Sprintf("log [%s] %s", d.Level, d.Message))
		case operations.EventProgress:
			var d operations.ProgressData
			_ = json.Unmarshal(ev.Data, &d)
			show.progress(d.Progress)
			progressEvents++
			if cancelAfter > 0 && progressEvents == cancelAfter {
				askedToCancel = true
				op, err := client.Cancel(ctx, id)
				switch {
				case errors.Is(err, transport.ErrNotCancellable):
					show.line("cancel: too late, the operation has already finished")
				case err != nil:
					return true, fmt.Errorf("cancel: %w", err)
				default:
					show.line(fmt.Sprintf("cancel: requested after %d progress events; the operation is now %s", progressEvents, op.Status))
				}
			}
		case operations.EventComplete, operations.EventError:
			var d operations.TerminalData
			_ = json.Unmarshal(ev.Data, &d)
			show.line(fmt.Sprintf("%s: the operation is %s", ev.Type, d.Status))
		}
	}
}

// printFinal prints an operation's final state.
func printFinal(w io.Writer, op *transport.OperationView) {
	fmt.Fprintf(w, "final state of %s: %s", op.ID, op.Status)
	if op.StartedAt != nil && op.FinishedAt != nil {
		fmt.Fprintf(w, " after %s", op.FinishedAt.Sub(*op.StartedAt).Round(time.Millisecond))
	}
	if op.Progress != nil {
		fmt.Fprintf(w, " (progress %.1f%%: %s)", op.Progress.Percent, op.Progress.Message)
	}
	fmt.Fprintln(w)
	if len(op.Result) > 0 {
		var res neo4jpool.ImportResult
		if json.Unmarshal(op.Result, &res) == nil {
			fmt.Fprintf(w, "result: %d nodes (%d new) and %d relationships (%d new) in %d chunks\n",
				res.Nodes, res.NodesCreated, res.Relationships, res.RelationshipsCreated, res.Chunks)
		}
	}
	if op.Error != nil {
		fmt.Fprintf(w, "error: %s: %s\n", op.Error.Code, op.Error.Message)
	}
}

// progressDisplay draws progress as a bar: redrawn in place on a terminal,
// one line per report otherwise (logs, pipes, tests).
type progressDisplay struct {
	w        io.Writer
	terminal bool
	drawn    bool // a bar is on the current line
}

func newProgressDisplay(w io.Writer) *progressDisplay {
	f, ok := w.(*os.File)
	terminal := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			terminal = true
		}
	}
	return &progressDisplay{w: w, terminal: terminal}
}

func (d *progressDisplay) progress(p operations.Progress) {
	const width = 30
	filled := min(int(p.Percent*width/100+0.5), width)
	bar := fmt.Sprintf("[%s%s] %5.1f%%  %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Percent, p.Message)
	if d.terminal {
		fmt.Fprintf(d.w, "\r\033[K%s", bar)
		d.drawn = true
		return
	}
	fmt.Fprintln(d.w, bar)
}

// line prints a message on a line of its own.
func (d *progressDisplay) line(s string) {
	d.done()
	fmt.Fprintln(d.w, s)
}

// done ends a bar drawn in place.
func (d *progressDisplay) done() {
	if d.drawn {
		fmt.Fprintln(d.w)
		d.drawn = false
	}
}

// tenantGraph generates a tenant: o.subscriptions subscriptions, o.groups
// resource groups each, o.resources resources each, linked by CONTAINS.
func tenantGraph(o options) atg.ImportParams {
	g := atg.ImportParams{ChunkSize: o.chunkSize}
	add := func(id, kind string, props map[string]any) {
		labels := []string{kind}
		if o.label != "" {
			labels = append(labels, o.label)
		}
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: o.idPrefix + id, Labels: labels, Properties: props})
	}
	contains := func(from, to string) {
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "CONTAINS", From: o.idPrefix + from, To: o.idPrefix + to})
	}
	types := []string{"Microsoft.Compute/virtualMachines", "Microsoft.Storage/storageAccounts", "Microsoft.Network/virtualNetworks",
		"Microsoft.Web/sites", "Microsoft.KeyVault/vaults"}
	add("tenant", "Tenant", map[string]any{"name": "Fabrikam"})
	for s := range o.subscriptions {
		sub := fmt.Sprintf("sub-%02d", s)
		add(sub, "Subscription", map[string]any{"name": sub})
		contains("tenant", sub)
		for r := range o.groups {
			rg := fmt.Sprintf("%s/rg-%02d", sub, r)
			add(rg, "ResourceGroup", map[string]any{"name": fmt.Sprintf("rg-%02d", r)})
			contains(sub, rg)
			for x := range o.resources {
				id := fmt.Sprintf("%s/res-%04d", rg, x)
				add(id, "Resource", map[string]any{"name": fmt.Sprintf("res-%04d", x), "type": types[x%len(types)], "index": x})
				contains(rg, id)
			}
		}
	}
	return g
}
