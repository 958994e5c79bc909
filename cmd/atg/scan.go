package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/neo4jpool"
)

// scanUsage is the help of "atg scan".
const scanUsage = `usage: atg scan [--tenant-id ID] [--subscription ID]... [--resource-group NAME]...
                [--from-file F]... [--no-prune] [--dry-run] [--chunk-size N] [--cancel-on-interrupt]

Scans an Azure tenant into the graph as a "scan" operation and follows it:
a progress bar on a terminal, "progress ..." lines on stderr otherwise. At
the end it prints the result as JSON on stdout: per subscription the nodes
and relationships added, changed, unchanged and removed, whether its reads
completed, and the Resource Graph calls, pages and throttled waits.

In remote mode the server scans with its own credentials; in local mode atg
reads Azure itself: AZURE_ACCESS_TOKEN when set, else the managed identity
(ATG_USE_MANAGED_IDENTITY=true, the default; AZURE_CLIENT_ID for a
user-assigned one), else with ATG_USE_MANAGED_IDENTITY=false environment
credentials, workload identity or az login. --from-file reads inventory files
instead (local mode): "az resource list -o json" or "az graph query ... -o
json" output. Rescans update the graph in place. What a scan did not
see is deleted only in subscriptions whose reads completed: a subscription
read in part keeps its data, and the result says so (complete: false). The
graph model is described in the README ("Graph model").

flags:
  --tenant-id ID           tenant to scan (default ATG_TARGET_TENANT_ID)
  --subscription ID        scan only this subscription (repeatable; default all)
  --resource-group NAME    scan only this resource group (repeatable)
  --from-file F            read this inventory file instead of Azure
                           (repeatable; local mode)
  --no-prune               keep what the scan did not see
  --dry-run                report the diff and write nothing
  --chunk-size N           nodes or relationships per transaction (1..100000)
  --cancel-on-interrupt    remote mode: cancel the scan on Ctrl-C instead of
                           detaching
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// runScan implements "atg scan".
func runScan(ctx context.Context, e *env, g *globals, args []string) int {
	fs := g.flagSet(e, "scan", false)
	tenant := fs.String("tenant-id", "", "tenant to scan")
	var subs, groups, files listFlag
	fs.Var(&files, "from-file", "inventory file to read instead of Azure (repeatable)")
	fs.Var(&subs, "subscription", "subscription to scan (repeatable)")
	fs.Var(&groups, "resource-group", "resource group to scan (repeatable)")
	noPrune := fs.Bool("no-prune", false, "keep what the scan did not see")
	dryRun := fs.Bool("dry-run", false, "report the diff and write nothing")
	chunkSize := fs.Int("chunk-size", 0, "nodes or relationships per transaction")
	cancelOnInterrupt := fs.Bool("cancel-on-interrupt", false, "cancel the scan on Ctrl-C instead of detaching")
	pos, code, ok := parseCommand(e, g, fs, "scan", scanUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, "scan", pos, 0, ""); !ok {
		return code
	}
	if *chunkSize < 0 || *chunkSize > neo4jpool.MaxChunkSize {
		return usageError(e, "scan", fmt.Sprintf("--chunk-size %d: want 1 to %d", *chunkSize, neo4jpool.MaxChunkSize))
	}
	params := atg.ScanParams{TenantID: *tenant, Subscriptions: subs, ResourceGroups: groups, DryRun: *dryRun, ChunkSize: *chunkSize}
	if *noPrune {
		f := false
		params.Prune = &f
	}
	if len(files) > 0 && g.remote {
		return usageError(e, "scan", "--from-file reads files here: use it in local mode (the server reads Azure itself)")
	}
	// Local mode reads Azure (or the files) in this process.
	g.scanSource = func(ctx context.Context, p atg.ScanParams) (azure.Source, error) {
		if len(files) > 0 {
			return azure.Open(ctx, azure.Config{}, files...)
		}
		cfg, err := atg.LoadAzureSource(atg.LoadOptions{DotenvFile: g.envFile, Environ: e.environ}, p.TenantID)
		if err != nil {
			return nil, err
		}
		return azure.NewResourceGraphSource(ctx, cfg)
	}
	s, err := g.open(ctx, e, "")
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	if len(files) > 0 && s.Remote() {
		return usageError(e, "scan", "--from-file reads files here: use it in local mode (--local; the server reads Azure itself)")
	}
	if params.TenantID == "" && !s.Remote() {
		// Local mode scans here: ATG_TARGET_TENANT_ID of the .env file
		// or the environment. (A server uses its own.)
		params.TenantID = strings.TrimSpace(s.vars["ATG_TARGET_TENANT_ID"])
	}
	sub, err := s.Submit(ctx, atg.ScanTypeName, params)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	id := sub.OperationID
	fmt.Fprintf(e.stderr, "operation %s (%s) submitted; %s\n", id, sub.Type, s.mode())
	d := newDisplay(e)
	t, err := follow(ctx, s, id, d)
	if err != nil {
		if ctx.Err() != nil {
			return interruptImport(ctx, e, g, s, d, id, !s.Remote() || *cancelOnInterrupt)
		}
		d.end(false)
		if s.Remote() {
			g.printErr(e, fmt.Sprintf(`lost track of operation %s (%s); it may still be running: "atg ops watch %s"`, id, describe(err, s), id))
			return exitCode(err)
		}
		return g.fail(ctx, e, s, err)
	}
	return outcome(e, g, d, t)
}
