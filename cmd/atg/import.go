package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// importLong is the help of "atg import".
const importLong = `Imports a graph document (FILE, or stdin for -) as an "import" operation
and follows it: a progress bar on a terminal, "progress ..." lines on
stderr otherwise. At the end it prints the result (nodes, relationships
and chunks written) as JSON on stdout. The document:

  {"nodes": [{"id": "t1", "labels": ["Tenant"], "properties": {...}}, ...],
   "relationships": [{"type": "CONTAINS", "from": "t1", "to": "s1", "properties": {...}}, ...],
   "chunk_size": 1000}

Nodes are MERGEd on their id and relationships on their ends and type, in
committed chunks, so importing the same document again changes nothing.
A relationship whose end node does not exist is skipped: atg warns on
stderr, and with --strict exits 1.

Ctrl-C in remote mode detaches (exit 130): the import keeps running on the
server; follow it with "atg ops watch ID" or cancel it with "atg ops cancel
ID". With --cancel-on-interrupt atg cancels it first (exit 6). In local
mode the import runs inside atg, so Ctrl-C cancels it (exit 6). Chunks
committed before a cancel stay in the graph.`

// importFlags are the flags of "atg import".
type importFlags struct {
	chunkSize         int
	cancelOnInterrupt bool
	strict            bool
}

// newImportCommand returns "atg import".
func newImportCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	f := &importFlags{}
	cmd := &cobra.Command{
		Use:   "import FILE|- [--chunk-size N] [--cancel-on-interrupt] [--strict]",
		Short: "import a graph document with progress: import FILE|- [--chunk-size N]",
		Long:  importLong,
		Args:  exactArgs(1, "the graph document (a file, or - for stdin)"),
	}
	cmd.Flags().IntVar(&f.chunkSize, "chunk-size", 0, "nodes or relationships per transaction (1..100000), overriding the document's chunk_size")
	cmd.Flags().BoolVar(&f.cancelOnInterrupt, "cancel-on-interrupt", false, "remote mode: cancel the import on Ctrl-C instead of detaching")
	cmd.Flags().BoolVar(&f.strict, "strict", false, "exit 1 when relationships were skipped because an end node does not exist")
	cmd.RunE = runE(func(_ *cobra.Command, args []string) int { return runImport(ctx, e, g, f, args[0]) })
	return cmd
}

// runImport implements "atg import".
func runImport(ctx context.Context, e *env, g *globals, f *importFlags, file string) int {
	if f.chunkSize < 0 || f.chunkSize > neo4jpool.MaxChunkSize {
		return usageError(e, "import", fmt.Sprintf("--chunk-size %d: want 1 to %d", f.chunkSize, neo4jpool.MaxChunkSize))
	}
	data, err := readInput(e, file)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	params, err := graphParams(file, data, f.chunkSize)
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}

	s, err := g.open(ctx, e, "")
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	defer s.close(ctx)
	sub, err := s.Submit(ctx, atg.ImportTypeName, params)
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
			// The operation may well be running on: say how to find it.
			g.printErr(e, fmt.Sprintf(`lost track of operation %s (%s); it may still be running: "atg ops watch %s"`, id, describe(err, s), id))
			return exitCode(err)
		}
		return g.fail(ctx, e, s, err)
	}
	code := outcome(e, g, d, t)
	if code == exitOK {
		code = checkSkipped(e, g, t.Result, f.strict)
	}
	return code
}

// checkSkipped warns on stderr when an import's result counts skipped
// relationships, and returns exitFailure for them when strict.
func checkSkipped(e *env, g *globals, result json.RawMessage, strict bool) int {
	var res neo4jpool.ImportResult
	if json.Unmarshal(result, &res) != nil || res.RelationshipsSkipped == 0 {
		return exitOK
	}
	what := "1 relationship was"
	if n := res.RelationshipsSkipped; n != 1 {
		what = strconv.Itoa(n) + " relationships were"
	}
	msg := what + " skipped because an end node does not exist (relationships_skipped in the result)"
	if strict {
		g.printErr(e, "import: "+msg+"; failing because of --strict")
		return exitFailure
	}
	g.printErr(e, "warning: "+msg+"; --strict makes this an error")
	return exitOK
}

// graphParams checks that data (read from name) is one JSON object and
// returns it as the import's params, with chunk_size replaced when
// chunkSize > 0. The document's content is validated by the operation at
// submit.
func graphParams(name string, data []byte, chunkSize int) (map[string]json.RawMessage, error) {
	if name == "-" {
		name = "stdin"
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the document")
	}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		err = fmt.Errorf("%s (line %d)", se, 1+bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")))
	case errors.As(err, &te), err == nil && doc == nil:
		err = errors.New(`want a JSON object {"nodes": [...], "relationships": [...]}`)
	}
	if err != nil {
		return nil, &inputError{fmt.Errorf("%s is not a graph document: %w", name, err)}
	}
	if chunkSize > 0 {
		doc["chunk_size"] = json.RawMessage(strconv.Itoa(chunkSize))
	}
	return doc, nil
}

// interruptImport handles Ctrl-C while following operation id: it detaches
// (exit 130, the operation keeps running) or, when cancel is set (always
// in local mode, where the operation runs in this process), cancels it
// (exit 6).
func interruptImport(ctx context.Context, e *env, g *globals, s *session, d *display, id string, cancel bool) int {
	d.end(false)
	if !cancel {
		g.printErr(e, fmt.Sprintf("interrupted: detached from operation %s, which keeps running on the server; "+
			`follow it with "atg ops watch %s" or cancel it with "atg ops cancel %s"`, id, id, id))
		return exitInterrupted
	}
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer stop()
	_, err := s.Cancel(cctx, id)
	if errors.Is(err, transport.ErrNotCancellable) {
		// It ended in the meantime: say how.
		op, gerr := s.Get(cctx, id)
		if gerr == nil {
			return outcome(e, g, d, operations.TerminalData{OperationID: id, Status: op.Status, Result: op.Result, Error: op.Error})
		}
		err = gerr
	}
	if err != nil {
		g.printErr(e, fmt.Sprintf("interrupted, but cancelling operation %s failed (%s); it may still be running", id, describe(err, s)))
		return exitInterrupted
	}
	if s.Remote() {
		g.printErr(e, fmt.Sprintf("interrupted: cancelled operation %s on the server; chunks already committed stay, and importing the same document again is safe", id))
	} else {
		g.printErr(e, fmt.Sprintf("interrupted: cancelled operation %s (local mode runs it in this process, so Ctrl-C cancels it); "+
			"chunks already committed stay, and importing the same document again is safe", id))
	}
	return exitCancelled
}
