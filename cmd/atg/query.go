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

	"github.com/atgraph/atg/transport"
)

// queryUsage is the help of "atg query".
const queryUsage = `usage: atg query CYPHER|- [--param name=value]... [--write] [--timeout 30s] [--format table|json]

Runs a Cypher query and prints its rows: an aligned table (long values cut
at 80 characters, nodes as (:Label {props}), relationships as [:TYPE
{props}]) followed by "N rows", or with --format json the API's answer
{"columns","rows","row_count","truncated","execution_time_ms"} in full.
"-" as CYPHER reads the query from stdin.

flags:
  --param name=value   a query parameter ($name), repeatable; the value is
                       JSON when it parses as JSON (42, 1.5, true, null,
                       [1,2], {"a":1}, "quoted"), otherwise a plain string
  --write              run in a write transaction (remote: needs the key's
                       write scope); queries are read-only by default
  --timeout DURATION   transaction timeout, 1ms to 10m (default 30s)
  --format FORMAT      table (default) or json
`

// paramFlag collects repeated --param values.
type paramFlag []string

// String implements flag.Value.
func (p *paramFlag) String() string { return strings.Join(*p, ", ") }

// Set implements flag.Value.
func (p *paramFlag) Set(v string) error { *p = append(*p, v); return nil }

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

// runQuery implements "atg query".
func runQuery(ctx context.Context, e *env, g *globals, args []string) int {
	fs := g.flagSet(e, "query", true)
	var params paramFlag
	fs.Var(&params, "param", "query parameter name=value (repeatable)")
	write := fs.Bool("write", false, "run in a write transaction")
	timeout := fs.Duration("timeout", transport.DefaultQueryTimeout, "transaction timeout")
	pos, code, ok := parseCommand(e, g, fs, "query", queryUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, "query", pos, 1, "the Cypher query (or - to read it from stdin)"); !ok {
		return code
	}
	if *timeout < time.Millisecond || *timeout > transport.MaxQueryTimeout {
		return usageError(e, "query", fmt.Sprintf("--timeout %s: want 1ms to %s", *timeout, transport.MaxQueryTimeout))
	}
	req := transport.QueryRequest{Query: pos[0], Mode: "read", TimeoutMS: timeout.Milliseconds()}
	if *write {
		req.Mode = "write"
	}
	for _, p := range params {
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
	if g.format == formatJSON {
		if err := writeJSON(e.stdout, resp); err != nil {
			return g.fail(ctx, e, s, err)
		}
		return exitOK
	}
	writeRows(e.stdout, resp)
	return exitOK
}

// writeRows prints a query result as an aligned table with a footer.
func writeRows(w io.Writer, resp *transport.QueryResponse) {
	if len(resp.Columns) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		cells := make([]string, len(resp.Columns))
		for i, c := range resp.Columns {
			cells[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
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
	footer := fmt.Sprintf("%d rows", resp.RowCount)
	if resp.RowCount == 1 {
		footer = "1 row"
	}
	if resp.Truncated {
		footer += " (truncated)"
	}
	fmt.Fprintln(w, footer)
}
