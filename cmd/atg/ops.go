package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// opsLong is the help of "atg ops".
const opsLong = `Manages the operations of an atg-server (remote mode only: in local mode
operations live inside one atg process and end with it).

watch and wait end with the operation; their exit status is its outcome
(0 completed, 1 failed, 5 failed because the database was unavailable,
6 cancelled). Ctrl-C stops them (exit 130) and leaves it running.`

// opsLocalMode explains why ops needs remote mode.
const opsLocalMode = `"atg ops" manages an atg-server's operations, but this is local mode, where operations run inside one atg process and end with it; ` +
	`use --remote (or set ATG_REMOTE_MODE=true) with ATG_SERVICE_URL and ATG_API_KEY`

// newOpsCommand returns "atg ops" and its subcommands.
func newOpsCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	ops := &cobra.Command{
		Use:   "ops <subcommand> [flags]",
		Short: "manage a server's operations: ops list|get|cancel|watch|wait",
		Long:  opsLong,
	}
	ops.RunE = runE(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			return usageError(e, "ops", "missing subcommand: list, get, cancel, watch or wait")
		}
		return usageError(e, "ops", fmt.Sprintf("unknown subcommand %q: want list, get, cancel, watch or wait", args[0]))
	})

	lf := &listFlags{}
	list := &cobra.Command{
		Use:   "list [--status S] [--type T] [--limit N] [--offset N] [--format table|json|jsonl|csv|tsv] [--no-headers]",
		Short: "your operations (admin keys: everyone's), newest first",
		Long: `Lists your operations (admin keys: everyone's), newest first, with their
times in RFC 3339 with the local zone. S is queued, running, completed,
failed or cancelled; --limit is 1 to 500, default 50.`,
		Args: noArgs,
	}
	lf.out = addOutputFlags(list, allFormats)
	list.Flags().StringVar(&lf.status, "status", "", "only operations in this status: queued, running, completed, failed or cancelled")
	list.Flags().StringVar(&lf.typ, "type", "", "only operations of this type")
	list.Flags().IntVar(&lf.limit, "limit", operations.DefaultListLimit, "page size, 1 to 500")
	list.Flags().IntVar(&lf.offset, "offset", 0, "operations to skip")
	_ = list.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"queued", "running", "completed", "failed", "cancelled"}, cobra.ShellCompDirectiveNoFileComp))
	list.RunE = runE(func(*cobra.Command, []string) int { return opsList(ctx, e, g, lf) })

	show := func(name, short, long string, do func(context.Context, *session, string) (*transport.OperationView, error)) *cobra.Command {
		cmd := &cobra.Command{
			Use:   name + " ID [--format table|json]",
			Short: short,
			Long:  long,
			Args:  exactArgs(1, "an operation ID"),
		}
		out := addOutputFlags(cmd, tableOrJSON)
		cmd.RunE = runE(func(_ *cobra.Command, args []string) int { return opsShow(ctx, e, g, "ops "+name, out, args[0], do) })
		return cmd
	}
	get := show("get", "one operation: status, progress, result or error, timestamps",
		"Shows one operation: status, progress, result or error, timestamps.",
		func(ctx context.Context, s *session, id string) (*transport.OperationView, error) {
			return s.Get(ctx, id)
		})
	cancel := show("cancel", "cancel a queued or running operation",
		`Cancels a queued or running operation (exit 1 if it already completed or
failed; cancelling a cancelled one is fine).`,
		func(ctx context.Context, s *session, id string) (*transport.OperationView, error) {
			return s.Cancel(ctx, id)
		})

	var noHistory bool
	watch := &cobra.Command{
		Use:   "watch ID [--no-history]",
		Short: "follow an operation to its end with progress; exit status = outcome",
		Long: `Follows an operation's events to its end with the same progress display as
"atg import", from its first event (--no-history: from now on), and prints
the result on stdout. The exit status is its outcome.`,
		Args: exactArgs(1, "an operation ID"),
	}
	watch.Flags().BoolVar(&noHistory, "no-history", false, "show only the events from now on, not those already past")
	watch.RunE = runE(func(_ *cobra.Command, args []string) int { return opsWatch(ctx, e, g, args[0], noHistory) })

	var timeout time.Duration
	wait := &cobra.Command{
		Use:   "wait ID [--timeout D]",
		Short: "wait quietly for an operation to end; exit status = outcome",
		Long: `Waits for an operation to end, showing nothing meanwhile, then prints the
result on stdout (or the error on stderr). The exit status is its outcome
(0 completed, 1 failed, 5 failed because the database was unavailable,
6 cancelled); 1 when --timeout passes first (the operation keeps running).`,
		Args: exactArgs(1, "an operation ID"),
	}
	wait.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (exit 1; 0: wait as long as it takes)")
	wait.RunE = runE(func(_ *cobra.Command, args []string) int { return opsWait(ctx, e, g, args[0], timeout) })

	ops.AddCommand(list, get, cancel, watch, wait)
	return ops
}

// listFlags are the flags of "atg ops list".
type listFlags struct {
	status, typ   string
	limit, offset int
	out           *output
}

// opsList implements "atg ops list".
func opsList(ctx context.Context, e *env, g *globals, lf *listFlags) int {
	const cmd = "ops list"
	if code, ok := lf.out.check(e, cmd); !ok {
		return code
	}
	o := transport.ListOptions{Type: lf.typ, Limit: lf.limit, Offset: lf.offset}
	if lf.status != "" {
		st, err := operations.ParseStatus(lf.status)
		if err != nil {
			return usageError(e, cmd, "--status: "+err.Error())
		}
		o.Status = st
	}
	if lf.limit < 1 || lf.limit > transport.MaxListLimit {
		return usageError(e, cmd, fmt.Sprintf("--limit %d: want 1 to %d", lf.limit, transport.MaxListLimit))
	}
	if lf.offset < 0 {
		return usageError(e, cmd, fmt.Sprintf("--offset %d: must not be negative", lf.offset))
	}
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	list, err := s.List(ctx, o)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	if err := writeOperations(e.stdout, lf.out, list); err != nil {
		return g.fail(ctx, e, s, err)
	}
	return exitOK
}

// writeOperations prints a page of operations in the format of out.
func writeOperations(w io.Writer, out *output, list *transport.ListResponse) error {
	switch out.format {
	case formatJSON:
		return writeJSON(w, list)
	case formatTable:
		if len(list.Operations) == 0 {
			if !out.noHeaders {
				fmt.Fprintf(w, "no operations (%d in all)\n", list.Total)
			}
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if !out.noHeaders {
			fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tPROGRESS\tCREATED\tFINISHED")
		}
		for _, op := range list.Operations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, op.Type, op.Status, percent(op.Progress),
				op.CreatedAt.Local().Format(time.RFC3339), rfc3339OrDash(op.FinishedAt))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if !out.noHeaders {
			fmt.Fprintf(w, "operations %d-%d of %d\n", list.Offset+1, list.Offset+len(list.Operations), list.Total)
		}
		return nil
	case formatJSONL:
		for _, op := range list.Operations {
			if _, err := fmt.Fprintf(w, "%s\n", compactJSON(op)); err != nil {
				return err
			}
		}
		return nil
	}
	rw := &rowWriter{w: w, format: out.format, noHeaders: out.noHeaders,
		columns: []string{"id", "type", "status", "progress_percent", "created_at", "finished_at"}}
	if err := rw.header(); err != nil {
		return err
	}
	for _, op := range list.Operations {
		var pct, finished any
		if op.Progress != nil {
			pct = op.Progress.Percent
		}
		if op.FinishedAt != nil {
			finished = op.FinishedAt.Local().Format(time.RFC3339)
		}
		if err := rw.row([]any{op.ID, op.Type, string(op.Status), pct, op.CreatedAt.Local().Format(time.RFC3339), finished}); err != nil {
			return err
		}
	}
	return nil
}

// opsShow runs do on operation id and prints the operation it returns.
func opsShow(ctx context.Context, e *env, g *globals, cmd string, out *output, id string,
	do func(context.Context, *session, string) (*transport.OperationView, error)) int {
	if code, ok := out.check(e, cmd); !ok {
		return code
	}
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	op, err := do(ctx, s, id)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	if out.format == formatJSON {
		return jsonOrFail(ctx, e, g, s, op)
	}
	writeOperation(e.stdout, op)
	return exitOK
}

// opsWatch implements "atg ops watch ID": from the operation's first event,
// or with noHistory from its current state on.
func opsWatch(ctx context.Context, e *env, g *globals, id string, noHistory bool) int {
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	d := newDisplay(e)
	var after int64
	if noHistory {
		op, err := s.Get(ctx, id)
		if err != nil {
			return g.fail(ctx, e, s, err)
		}
		if op.Status.Terminal() {
			return outcome(e, g, d, operations.TerminalData{OperationID: id, Status: op.Status, Result: op.Result, Error: op.Error})
		}
		d.line("status " + string(op.Status))
		if op.Progress != nil {
			d.progress(*op.Progress)
		}
		after = op.LastEventID
	}
	t, err := follow(ctx, s, id, d, after)
	if err != nil {
		d.end(false)
		if ctx.Err() != nil {
			g.printErr(e, fmt.Sprintf(`interrupted: stopped watching operation %s, which keeps running; watch it again with "atg ops watch %s"`, id, id))
			return exitInterrupted
		}
		return g.fail(ctx, e, s, err)
	}
	return outcome(e, g, d, t)
}

// opsWait implements "atg ops wait ID": it shows nothing until the
// operation ends, then reports the outcome as watch does. A timeout > 0
// gives up after that long (exit 1).
func opsWait(ctx context.Context, e *env, g *globals, id string, timeout time.Duration) int {
	if timeout < 0 {
		return usageError(e, "ops wait", fmt.Sprintf("--timeout %s: must not be negative", timeout))
	}
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	quiet := &display{w: io.Discard}
	op, err := s.Get(wctx, id)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	t := operations.TerminalData{OperationID: id, Status: op.Status, Result: op.Result, Error: op.Error}
	if !op.Status.Terminal() {
		t, err = follow(wctx, s, id, quiet, op.LastEventID)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		g.printErr(e, fmt.Sprintf(`interrupted: stopped waiting for operation %s, which keeps running`, id))
		return exitInterrupted
	case err != nil && wctx.Err() != nil:
		g.printErr(e, fmt.Sprintf("timed out after %s waiting for operation %s, which keeps running", timeout, id))
		return exitFailure
	case err != nil:
		return g.fail(ctx, e, s, err)
	}
	return outcome(e, g, quiet, t)
}

// jsonOrFail prints v as JSON and returns the exit status.
func jsonOrFail(ctx context.Context, e *env, g *globals, s *session, v any) int {
	if err := writeJSON(e.stdout, v); err != nil {
		return g.fail(ctx, e, s, err)
	}
	return exitOK
}

// writeOperation prints an operation as aligned "key  value" lines.
func writeOperation(w io.Writer, op *transport.OperationView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("id", op.ID)
	row("type", op.Type)
	row("status", string(op.Status))
	row("client", op.ClientID)
	if p := op.Progress; p != nil {
		v := percent(p)
		if msg := progressText(*p); msg != "" {
			v += " " + escapeControls(msg)
		}
		row("progress", v)
	}
	row("created", op.CreatedAt.Local().Format(time.RFC3339))
	row("started", rfc3339OrDash(op.StartedAt))
	row("finished", rfc3339OrDash(op.FinishedAt))
	if op.Error != nil {
		row("error", escapeControls(op.Error.Error()))
	}
	if len(op.Result) > 0 {
		row("result", escapeControls(strings.TrimSpace(string(op.Result))))
	}
	_ = tw.Flush()
}

// percent formats a progress's percent, "-" when there is none.
func percent(p *operations.Progress) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", p.Percent)
}

// rfc3339OrDash formats t in local RFC 3339, "-" when nil.
func rfc3339OrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
