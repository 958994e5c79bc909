package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// importUsage is the help of "atg import".
const importUsage = `usage: atg import FILE|- [--chunk-size N] [--cancel-on-interrupt]

Imports a graph document (FILE, or stdin for -) as an "import" operation
and follows it: a progress bar on a terminal, "progress ..." lines on
stderr otherwise. At the end it prints the result (nodes, relationships
and chunks written) as JSON on stdout. The document:

  {"nodes": [{"id": "t1", "labels": ["Tenant"], "properties": {...}}, ...],
   "relationships": [{"type": "CONTAINS", "from": "t1", "to": "s1", "properties": {...}}, ...],
   "chunk_size": 1000}

Nodes are MERGEd on their id and relationships on their ends and type, in
committed chunks, so importing the same document again changes nothing.

Ctrl-C in remote mode detaches (exit 130): the import keeps running on the
server; follow it with "atg ops watch ID" or cancel it with "atg ops cancel
ID". With --cancel-on-interrupt atg cancels it first (exit 6). In local
mode the import runs inside atg, so Ctrl-C cancels it (exit 6). Chunks
committed before a cancel stay in the graph.

flags:
  --chunk-size N          nodes or relationships per transaction
                          (1..100000), overriding the document's chunk_size
  --cancel-on-interrupt   remote mode: cancel the import on Ctrl-C instead
                          of detaching
`

// runImport implements "atg import".
func runImport(ctx context.Context, e *env, g *globals, args []string) int {
	fs := g.flagSet(e, "import", false)
	chunkSize := fs.Int("chunk-size", 0, "nodes or relationships per transaction")
	cancelOnInterrupt := fs.Bool("cancel-on-interrupt", false, "cancel the import on Ctrl-C instead of detaching")
	pos, code, ok := parseCommand(e, g, fs, "import", importUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, "import", pos, 1, "the graph document (a file, or - for stdin)"); !ok {
		return code
	}
	if *chunkSize < 0 || *chunkSize > neo4jpool.MaxChunkSize {
		return usageError(e, "import", fmt.Sprintf("--chunk-size %d: want 1 to %d", *chunkSize, neo4jpool.MaxChunkSize))
	}
	data, err := readInput(e, pos[0])
	if err != nil {
		return g.fail(ctx, e, nil, err)
	}
	params, err := graphParams(pos[0], data, *chunkSize)
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
	t, err := follow(ctx, s, id, d)
	if err != nil {
		if ctx.Err() != nil {
			return interruptImport(ctx, e, g, s, d, id, !s.Remote() || *cancelOnInterrupt)
		}
		d.end(false)
		if s.Remote() {
			// The operation may well be running on: say how to find it.
			g.printErr(e, fmt.Sprintf(`lost track of operation %s (%s); it may still be running: "atg ops watch %s"`, id, describe(err, s), id))
			return exitCode(err)
		}
		return g.fail(ctx, e, s, err)
	}
	return outcome(e, g, d, t)
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
