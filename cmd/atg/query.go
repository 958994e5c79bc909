package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg/transport"
)

// queryLong is the help of "atg query".
const queryLong = `Runs a Cypher query and prints its rows: an aligned table (long values cut
at 80 characters, nodes as (:Label {props}), relationships as [:TYPE
{props}], strings that would read as another value quoted: "null", "42",
"") followed by "N rows"; with --format json the API's answer
{"columns","rows","row_count","truncated","execution_time_ms"} in full;
with jsonl one object per row; with csv or tsv a header line and the rows
(csv: a null is an empty field, an empty string ""; tsv: a null is \N).
"-" as CYPHER reads the query from stdin.

--param name=value is a query parameter ($name), repeatable; the value is
JSON when it parses as JSON (42, 1.5, true, null, [1,2], {"a":1},
"quoted"), otherwise a plain string.`

// paramFlag collects repeated --param values.
type paramFlag []string

// String implements pflag.Value.
func (p *paramFlag) String() string { return strings.Join(*p, ", ") }

// Set implements pflag.Value.
func (p *paramFlag) Set(v string) error { *p = append(*p, v); return nil }

// Type implements pflag.Value.
func (p *paramFlag) Type() string { return "name=value" }

// paramName is what a parameter may be called on the command line.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseParam parses one --param name=value. The value is decoded as JSON
// (numbers kept exact as json.Number) when it is valid JSON, otherwise it
// is the string as given.
func parseParam(s string) (string, any, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", nil, fmt.Errorf("--param %q: want name=value", s)
	}
	if !paramName.MatchString(name) {
		return "", nil, fmt.Errorf("--param %q: the name must be letters, digits and _, not starting with a digit", s)
	}
	if !json.Valid([]byte(value)) {
		return name, value, nil
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return name, value, nil
	}
	return name, v, nil
}

// newQueryCommand returns "atg query".
func newQueryCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	q := &queryFlags{}
	cmd := &cobra.Command{
		Use:   "query CYPHER|- [--param name=value]... [--write] [--timeout 30s] [--format table|json|jsonl|csv|tsv] [--no-headers]",
		Short: "run a Cypher query: query CYPHER|- [--param k=v]... [--write]",
		Long:  queryLong,
		Args:  exactArgs(1, "the Cypher query (or - to read it from stdin)"),
	}
	q.out = addOutputFlags(cmd, allFormats)
	cmd.Flags().Var(&q.params, "param", "query parameter name=value (repeatable; JSON when it parses as JSON)")
	cmd.Flags().BoolVar(&q.write, "write", false, "run in a write transaction (remote: needs the key's write scope); read-only by default")
	cmd.Flags().DurationVar(&q.timeout, "timeout", transport.DefaultQueryTimeout, "transaction timeout, 1ms to 10m")
	cmd.RunE = runE(func(_ *cobra.Command, args []string) int { return runQuery(ctx, e, g, q, args[0]) })
	return cmd
}

// queryFlags are the flags of "atg query".
type queryFlags struct {
	params  paramFlag
	write   bool
	timeout time.Duration
	out     *output
}

// runQuery implements "atg query".
func runQuery(ctx context.Context, e *env, g *globals, q *queryFlags, query string) int {
	if code, ok := q.out.check(e, "query"); !ok {
		return code
	}
	if q.timeout < time.Millisecond || q.timeout > transport.MaxQueryTimeout {
		return usageError(e, "query", fmt.Sprintf("--timeout %s: want 1ms to %s", q.timeout, transport.MaxQueryTimeout))
	}
	req := transport.QueryRequest{Query: query, Mode: "read", TimeoutMS: q.timeout.Milliseconds()}
	if q.write {
		req.Mode = "write"
	}
	for _, p := range q.params {
		name, v, err := parseParam(p)
		if err != nil {
			return usageError(e, "query", err.Error())
		}
		if req.Parameters == nil {
			req.Parameters = map[string]any{}
		}
		if _, dup := req.Parameters[name]; dup {
			return usageError(e, "query", fmt.Sprintf("--param %s given twice", name))
		}
		req.Parameters[name] = v
	}
	if req.Query == "-" {
		b, err := readInput(e, "-")
		if err != nil {
			return g.fail(ctx, e, nil, err)
		}
		req.Query = string(b)
	}
	if strings.TrimSpace(req.Query) == "" {
		return usageError(e, "query", "the query is empty")
	}

	s, err := g.open(ctx, e, "")
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	resp, err := s.Query(ctx, req)
	if err != nil {
		return g.fail(ctx, e, s, err)
	}
	if err := writeQueryResult(e, q.out, resp); err != nil {
		return g.fail(ctx, e, s, err)
	}
	return exitOK
}

// writeQueryResult prints a query result in the format of out.
func writeQueryResult(e *env, out *output, resp *transport.QueryResponse) error {
	switch out.format {
	case formatJSON:
		return writeJSON(e.stdout, resp)
	case formatTable:
		writeRows(e.stdout, resp, out.noHeaders)
		return nil
	}
	rw := &rowWriter{w: e.stdout, format: out.format, columns: resp.Columns, noHeaders: out.noHeaders}
	if err := rw.header(); err != nil {
		return err
	}
	for _, row := range resp.Rows {
		if err := rw.row(row); err != nil {
			return err
		}
	}
	if resp.Truncated {
		fmt.Fprintf(e.stderr, "atg: warning: the result was truncated to %d rows\n", resp.RowCount)
	}
	return nil
}

// writeRows prints a query result as an aligned table with a footer, or
// only its rows when noHeaders.
func writeRows(w io.Writer, resp *transport.QueryResponse, noHeaders bool) {
	if len(resp.Columns) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		cells := make([]string, len(resp.Columns))
		for i, c := range resp.Columns {
			cells[i] = cell(c)
		}
		if !noHeaders {
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		for _, row := range resp.Rows {
			for i := range cells {
				cells[i] = ""
				if i < len(row) {
					cells[i] = cell(row[i])
				}
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		_ = tw.Flush()
	}
	if noHeaders {
		return
	}
	footer := fmt.Sprintf("%d rows", resp.RowCount)
	if resp.RowCount == 1 {
		footer = "1 row"
	}
	if resp.Truncated {
		footer += " (truncated)"
	}
	fmt.Fprintln(w, footer)
}
