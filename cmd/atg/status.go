package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// newStatusCommand returns "atg status".
func newStatusCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--format table|json]",
		Short: "show the server's (remote) or the database's (local) status",
		Long: `Shows the status of the server (remote mode: the caller's identity, the
database, the connection pool, operations by status) or of the database
(local mode). Exits 5 when the database is disconnected.`,
		Args: noArgs,
	}
	out := addOutputFlags(cmd, tableOrJSON)
	cmd.RunE = runE(func(*cobra.Command, []string) int { return runStatus(ctx, e, g, out) })
	return cmd
}

// runStatus implements "atg status".
func runStatus(ctx context.Context, e *env, g *globals, out *output) int {
	if code, ok := out.check(e, "status"); !ok {
		return code
	}
	s, err := g.open(ctx, e, "")
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	st, err := s.Status(ctx)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	if out.format == formatJSON {
		if err := writeJSON(e.stdout, st); err != nil {
			return g.fail(ctx, e, s, err)
		}
	} else {
		writeStatusTable(e.stdout, s, st)
	}
	if st.Neo4j.Status != "connected" {
		msg := "database " + st.Neo4j.Status
		if st.Neo4j.Error != "" {
			msg += ": " + st.Neo4j.Error
		}
		g.printErr(e, msg)
		return exitUnavailable
	}
	return exitOK
}

// writeStatusTable prints st as aligned "key  value" lines.
func writeStatusTable(w io.Writer, s *session, st *transport.StatusResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("mode", "%s", s.mode())
	if s.Remote() {
		row("client", "%s (key %s, scopes %s)", st.ClientID, st.KeyID, strings.Join(st.Scopes, ", "))
	}
	row("environment", "%s", st.Environment)
	row("version", "%s", st.Version)
	neo := st.Neo4j.Status
	if st.Neo4j.Status == "connected" {
		neo += fmt.Sprintf(" (Neo4j %s %s, database %q, %.1f ms)", st.Neo4j.Version, st.Neo4j.Edition, st.Neo4j.Database, st.Neo4j.LatencyMS)
	} else if st.Neo4j.Error != "" {
		neo += ": " + st.Neo4j.Error
	}
	row("neo4j", "%s", neo)
	var snap neo4jpool.Snapshot
	if len(st.Pool) > 0 && json.Unmarshal(st.Pool, &snap) == nil {
		// TxActive counts transactions running, a lower bound of the
		// connections in use (the driver does not report those).
		row("pool", "%d transaction(s) running on a pool of %d connections (%.0f%%, peak %.0f%% in %s)", snap.TxActive, snap.PoolMax,
			snap.UtilizationPercent, snap.PeakUtilizationPercent, time.Duration(snap.WindowSeconds*float64(time.Second)))
		if snap.Recommendation.Action != "" {
			row("advice", "%s: %s", snap.Recommendation.Action, snap.Recommendation.Reason)
		}
	}
	if s.Remote() {
		// Local mode's operations live in this process: there are none yet.
		var counts []string
		for _, status := range operations.Statuses() {
			counts = append(counts, fmt.Sprintf("%d %s", st.Operations[string(status)], status))
		}
		row("operations", "%s", strings.Join(counts, ", "))
	}
	row("types", "%s (at most %d running at once)", strings.Join(st.OperationTypes, ", "), st.MaxConcurrent)
	if s.Remote() {
		row("uptime", "%s", time.Duration(st.UptimeSeconds)*time.Second)
	}
	_ = tw.Flush()
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
