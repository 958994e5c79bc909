package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/neo4jpool"
)

// scanLong is the help of "atg scan".
const scanLong = `Scans an Azure tenant into the graph as a "scan" operation and follows it:
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
graph model is described in the README ("Graph model").`

// scanFlags are the flags of "atg scan".
type scanFlags struct {
	tenant              string
	subs, groups, files []string
	noPrune, dryRun     bool
	chunkSize           int
	cancelOnInterrupt   bool
}

// newScanCommand returns "atg scan".
func newScanCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan [--tenant-id ID] [--subscription ID]... [--resource-group NAME]... [--from-file F]... [--no-prune] [--dry-run]",
		Short: "scan an Azure tenant into the graph with progress: scan [--tenant-id ID] [--dry-run]",
		Long:  scanLong,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tenant, "tenant-id", "", "tenant to scan (default ATG_TARGET_TENANT_ID)")
	fl.StringSliceVar(&f.subs, "subscription", nil, "scan only this subscription (repeatable; default all)")
	fl.StringSliceVar(&f.groups, "resource-group", nil, "scan only this resource group (repeatable)")
	fl.StringSliceVar(&f.files, "from-file", nil, "read this inventory file instead of Azure (repeatable; local mode)")
	fl.BoolVar(&f.noPrune, "no-prune", false, "keep what the scan did not see")
	fl.BoolVar(&f.dryRun, "dry-run", false, "report the diff and write nothing")
	fl.IntVar(&f.chunkSize, "chunk-size", 0, "nodes or relationships per transaction (1..100000)")
	fl.BoolVar(&f.cancelOnInterrupt, "cancel-on-interrupt", false, "remote mode: cancel the scan on Ctrl-C instead of detaching")
	cmd.RunE = runE(func(*cobra.Command, []string) int { return runScan(ctx, e, g, f) })
	return cmd
}

// runScan implements "atg scan".
func runScan(ctx context.Context, e *env, g *globals, f *scanFlags) int {
	if f.chunkSize < 0 || f.chunkSize > neo4jpool.MaxChunkSize {
		return usageError(e, "scan", fmt.Sprintf("--chunk-size %d: want 1 to %d", f.chunkSize, neo4jpool.MaxChunkSize))
	}
	params := atg.ScanParams{TenantID: f.tenant, Subscriptions: f.subs, ResourceGroups: f.groups, DryRun: f.dryRun, ChunkSize: f.chunkSize}
	if f.noPrune {
		keep := false
		params.Prune = &keep
	}
	if len(f.files) > 0 && g.remote {
		return usageError(e, "scan", "--from-file reads files here: use it in local mode (the server reads Azure itself)")
	}
	// Local mode reads Azure (or the files) in this process, with the
	// configuration the session read (.env file and environment).
	var vars map[string]string
	g.scanSource = func(ctx context.Context, p atg.ScanParams) (azure.Source, error) {
		if len(f.files) > 0 {
			return azure.Open(ctx, azure.Config{}, f.files...)
		}
		cfg, err := atg.LoadAzureSource(atg.LoadOptions{Environ: vars}, p.TenantID)
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
	vars = s.vars
	if len(f.files) > 0 && s.Remote() {
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
	t, err := follow(ctx, s, id, d, 0)
	if err != nil {
		if ctx.Err() != nil {
			return interruptImport(ctx, e, g, s, d, id, !s.Remote() || f.cancelOnInterrupt)
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
