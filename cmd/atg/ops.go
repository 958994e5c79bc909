package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// opsUsage is the help of "atg ops".
const opsUsage = `usage: atg ops <subcommand> [flags]

Manages the operations of an atg-server (remote mode only: in local mode
operations live inside one atg process and end with it).

subcommands:
  list [--status S] [--type T] [--limit N] [--offset N] [--format table|json]
         your operations (admin keys: everyone's), newest first; S is
         queued, running, completed, failed or cancelled; --limit is
         1 to 500, default 50
  get ID [--format table|json]
         one operation: status, progress, result or error, timestamps
  cancel ID [--format table|json]
         cancel a queued or running operation (exit 1 if it already
         completed or failed; cancelling a cancelled one is fine)
  watch ID
         follow an operation's events to its end with the same progress
         display as "atg import"; prints the result on stdout; the exit
         status is its outcome (0 completed, 1 failed, 5 failed because
         the database was unavailable, 6 cancelled).
         Ctrl-C stops watching (exit 130) and leaves it running
`

// opsLocalMode explains why ops needs remote mode.
const opsLocalMode = `"atg ops" manages an atg-server's operations, but this is local mode, where operations run inside one atg process and end with it; ` +
	`use --remote (or set ATG_REMOTE_MODE=true) with ATG_SERVICE_URL and ATG_API_KEY`

// runOps implements "atg ops".
func runOps(ctx context.Context, e *env, g *globals, args []string) int {
	if len(args) == 0 {
		return usageError(e, "ops", "missing subcommand: list, get, cancel or watch")
	}
	sub := map[string]func(context.Context, *env, *globals, []string) int{
		"list":   opsList,
		"get":    opsGet,
		"cancel": opsCancel,
		"watch":  opsWatch,
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, opsUsage)
		return exitOK
	}
	f, ok := sub[args[0]]
	if !ok {
		return usageError(e, "ops", fmt.Sprintf("unknown subcommand %q: want list, get, cancel or watch", args[0]))
	}
	return f(ctx, e, g, args[1:])
}

// opsList implements "atg ops list".
func opsList(ctx context.Context, e *env, g *globals, args []string) int {
	const cmd = "ops list"
	fs := g.flagSet(e, cmd, true)
	status := fs.String("status", "", "only operations in this status")
	typ := fs.String("type", "", "only operations of this type")
	limit := fs.Int("limit", operations.DefaultListLimit, "page size, 1 to 500")
	offset := fs.Int("offset", 0, "operations to skip")
	pos, code, ok := parseCommand(e, g, fs, cmd, opsUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, cmd, pos, 0, ""); !ok {
		return code
	}
	o := transport.ListOptions{Type: *typ, Limit: *limit, Offset: *offset}
	if *status != "" {
		st, err := operations.ParseStatus(*status)
		if err != nil {
			return usageError(e, cmd, "--status: "+err.Error())
		}
		o.Status = st
	}
	if *limit < 1 || *limit > transport.MaxListLimit {
		return usageError(e, cmd, fmt.Sprintf("--limit %d: want 1 to %d", *limit, transport.MaxListLimit))
	}
	if *offset < 0 {
		return usageError(e, cmd, fmt.Sprintf("--offset %d: must not be negative", *offset))
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
	if g.format == formatJSON {
		return jsonOrFail(ctx, e, g, s, list)
	}
	if len(list.Operations) == 0 {
		fmt.Fprintf(e.stdout, "no operations (%d in all)\n", list.Total)
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tPROGRESS\tCREATED\tFINISHED")
	for _, op := range list.Operations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, op.Type, op.Status, percent(op.Progress),
			op.CreatedAt.Local().Format(time.DateTime), timeOrDash(op.FinishedAt))
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "operations %d-%d of %d\n", list.Offset+1, list.Offset+len(list.Operations), list.Total)
	return exitOK
}

// opsGet implements "atg ops get ID".
func opsGet(ctx context.Context, e *env, g *globals, args []string) int {
	return opsShow(ctx, e, g, "ops get", args, func(ctx context.Context, s *session, id string) (*transport.OperationView, error) {
		return s.Get(ctx, id)
	})
}

// opsCancel implements "atg ops cancel ID".
func opsCancel(ctx context.Context, e *env, g *globals, args []string) int {
	return opsShow(ctx, e, g, "ops cancel", args, func(ctx context.Context, s *session, id string) (*transport.OperationView, error) {
		return s.Cancel(ctx, id)
	})
}

// opsShow runs do on the operation named in args and prints the operation
// it returns.
func opsShow(ctx context.Context, e *env, g *globals, cmd string, args []string,
	do func(context.Context, *session, string) (*transport.OperationView, error)) int {
	fs := g.flagSet(e, cmd, true)
	pos, code, ok := parseCommand(e, g, fs, cmd, opsUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, cmd, pos, 1, "an operation ID"); !ok {
		return code
	}
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	op, err := do(ctx, s, pos[0])
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	if g.format == formatJSON {
		return jsonOrFail(ctx, e, g, s, op)
	}
	writeOperation(e.stdout, op)
	return exitOK
}

// opsWatch implements "atg ops watch ID".
func opsWatch(ctx context.Context, e *env, g *globals, args []string) int {
	const cmd = "ops watch"
	fs := g.flagSet(e, cmd, false)
	pos, code, ok := parseCommand(e, g, fs, cmd, opsUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, cmd, pos, 1, "an operation ID"); !ok {
		return code
	}
	id := pos[0]
	s, err := g.open(ctx, e, opsLocalMode)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	d := newDisplay(e)
	t, err := follow(ctx, s, id, d)
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

// timeOrDash formats t as a local date and time, "-" when nil.
func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
