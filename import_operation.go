package atg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// ImportTypeName is the name of the built-in graph import operation.
const ImportTypeName = "import"

// ImportParams are the parameters of the import operation: a graph document
// {"nodes":[{"id","labels","properties"}],"relationships":[{"type","from",
// "to","properties"}],"chunk_size":N}.
type ImportParams = neo4jpool.Graph

// ImportType returns the built-in "import" operation: it MERGEs a graph
// document into environment env of m in chunks (one transaction per chunk,
// nodes first), reporting progress after each committed chunk. Its result
// is a neo4jpool.ImportResult (nodes, relationships, chunks written). The
// document's shape, identifiers and chunk size are checked at submit.
func ImportType(m *neo4jpool.Manager, env string) operations.Type {
	return importType(m, env, false)
}

// importType is ImportType; with storeHere (the engine's operation store
// lives in environment env of m too) a replica saves its checkpoints in
// the chunks' own transactions, so that they agree exactly with the data.
func importType(m *neo4jpool.Manager, env string, storeHere bool) operations.Type {
	return operations.Type{
		Name:         ImportTypeName,
		Description:  "MERGE a graph document {nodes, relationships, chunk_size} in committed chunks",
		ParamsSchema: json.RawMessage(`{"$ref":"#/components/schemas/GraphDocument"}`),
		Validate: func(params json.RawMessage) error {
			_, err := decodeImportParams(params)
			return err
		},
		Resumable: true,
		Run: func(ctx context.Context, params json.RawMessage, r operations.Reporter) (any, error) {
			// Validated at submit; Importer.Import checks the graph again
			// before it sends anything, so decoding is enough here.
			g, err := decodeGraph(params)
			if err != nil {
				return nil, err
			}
			nodes, rels := int64(len(g.Nodes)), int64(len(g.Relationships))
			// A replica taking the import over continues after the
			// committed chunks of the last checkpoint.
			var from importCheckpoint
			if raw, ok := operations.ResumeFrom(ctx); ok {
				if err := json.Unmarshal(raw, &from); err != nil {
					return nil, fmt.Errorf("import: read its checkpoint: %w", err)
				}
				g = from.rest(g)
				r.Log("info", fmt.Sprintf("resuming after %d committed %s: %s from item %d", from.Result.Chunks, plural(from.Result.Chunks, "chunk", "chunks"), from.Phase, from.Offset))
			}
			// Another replica owning the import (this one lost its lease)
			// stops it at the next chunk.
			ctx, stop := context.WithCancelCause(ctx)
			defer stop(nil)
			im := neo4jpool.Importer{Manager: m, Env: env}
			_, _, inTx, _ := operations.CheckpointStatement(ctx, nil)
			inTx = inTx && storeHere
			if inTx {
				im.InChunk = func(ctx context.Context, tx neo4j.ManagedTransaction, p neo4jpool.ImportProgress) error {
					return checkpointInTx(ctx, tx, from.advance(p))
				}
			}
			res, err := im.Import(ctx, g, func(p neo4jpool.ImportProgress) {
				cp := from.advance(p)
				done := int64(cp.Offset)
				if p.Phase == neo4jpool.PhaseRelationships {
					done += nodes
				}
				r.Progress(operations.Progress{
					Phase: p.Phase, Done: done, Total: nodes + rels,
					Message: fmt.Sprintf("%s: %d of %d written (%d %s committed)", p.Phase, cp.Offset, phaseTotal(p.Phase, nodes, rels), cp.Result.Chunks, plural(cp.Result.Chunks, "chunk", "chunks")),
				})
				if inTx {
					return // saved with the chunk
				}
				if err := operations.SaveCheckpoint(ctx, cp); errors.Is(err, operations.ErrLeaseLost) {
					stop(err)
				} else if err != nil && ctx.Err() == nil {
					r.Log("warn", "could not save a checkpoint: "+err.Error())
				}
			})
			res = addImportResults(from.Result, res)
			if err != nil {
				var ie *neo4jpool.ImportError
				if errors.As(err, &ie) {
					ie.Result = addImportResults(from.Result, ie.Result)
				}
				return nil, importError(ctx, err)
			}
			return res, nil
		},
	}
}

// checkpointInTx saves cp in tx, the transaction of the chunk it counts;
// ErrLeaseLost (which rolls the chunk back) when another replica owns the
// operation now.
func checkpointInTx(ctx context.Context, tx neo4j.ManagedTransaction, cp importCheckpoint) error {
	stmt, params, _, err := operations.CheckpointStatement(ctx, cp)
	if err != nil {
		return err
	}
	res, err := tx.Run(ctx, stmt, params)
	if err != nil {
		return err
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return err
	}
	if held, _ := rec.Values[0].(bool); !held {
		return operations.ErrLeaseLost
	}
	return nil
}

// importCheckpoint is how far a resumable import got: Offset items of
// Phase are committed (all nodes too, in the relationships phase), and
// Result counts what is committed.
type importCheckpoint struct {
	Phase  string                 `json:"phase"`
	Offset int                    `json:"offset"`
	Result neo4jpool.ImportResult `json:"result"`
}

// rest returns what of g is left to write after the checkpoint.
func (c importCheckpoint) rest(g neo4jpool.Graph) neo4jpool.Graph {
	switch c.Phase {
	case neo4jpool.PhaseNodes:
		g.Nodes = g.Nodes[min(c.Offset, len(g.Nodes)):]
	case neo4jpool.PhaseRelationships:
		g.Nodes = nil
		g.Relationships = g.Relationships[min(c.Offset, len(g.Relationships)):]
	}
	return g
}

// advance returns the checkpoint after progress p of the run that
// resumed from c (the zero c: a first run).
func (c importCheckpoint) advance(p neo4jpool.ImportProgress) importCheckpoint {
	offset := p.Done
	if p.Phase == c.Phase {
		offset += c.Offset
	}
	return importCheckpoint{Phase: p.Phase, Offset: offset, Result: addImportResults(c.Result, p.Result)}
}

func phaseTotal(phase string, nodes, rels int64) int64 {
	if phase == neo4jpool.PhaseRelationships {
		return rels
	}
	return nodes
}

func addImportResults(a, b neo4jpool.ImportResult) neo4jpool.ImportResult {
	return neo4jpool.ImportResult{
		Nodes: a.Nodes + b.Nodes, Relationships: a.Relationships + b.Relationships, Chunks: a.Chunks + b.Chunks,
		NodesCreated: a.NodesCreated + b.NodesCreated, RelationshipsCreated: a.RelationshipsCreated + b.RelationshipsCreated,
		RelationshipsSkipped: a.RelationshipsSkipped + b.RelationshipsSkipped,
	}
}

// decodeImportParams decodes a graph document (see decodeGraph) and
// validates it (neo4jpool.ValidateGraph), naming the first bad field.
func decodeImportParams(params json.RawMessage) (neo4jpool.Graph, error) {
	g, err := decodeGraph(params)
	if err != nil {
		return g, err
	}
	if err := neo4jpool.ValidateGraph(g); err != nil {
		var ve *neo4jpool.ValidationError
		if errors.As(err, &ve) && len(ve.Problems) > 0 {
			// The first problem's path is the error's Field, which
			// ValidationError.Error prints before the message: only the
			// others carry their path in the message.
			msgs := make([]string, len(ve.Problems))
			for i, p := range ve.Problems {
				msgs[i] = p.Path + ": " + p.Message
			}
			msgs[0] = ve.Problems[0].Message
			msg := strings.Join(msgs, "; ")
			if ve.Total > len(ve.Problems) {
				msg += fmt.Sprintf(" (and %d more)", ve.Total-len(ve.Problems))
			}
			return g, &operations.ValidationError{Field: ve.Problems[0].Path, Message: msg}
		}
		return g, &operations.ValidationError{Message: err.Error()}
	}
	if err := checkIntegerRange(g); err != nil {
		return g, err
	}
	return g, nil
}

// checkIntegerRange refuses property values written as integers (digits,
// no fraction or exponent) outside the 64-bit range of Neo4j integers,
// which would otherwise be stored as rounded floats.
func checkIntegerRange(g neo4jpool.Graph) error {
	var bad func(v any) bool
	bad = func(v any) bool {
		switch x := v.(type) {
		case json.Number:
			if _, err := x.Int64(); err != nil && !strings.ContainsAny(string(x), ".eE") {
				return true
			}
		case []any:
			for _, e := range x {
				if bad(e) {
					return true
				}
			}
		}
		return false
	}
	check := func(kind string, i int, props map[string]any) error {
		for k, v := range props {
			if bad(v) {
				return &operations.ValidationError{Field: fmt.Sprintf("%s[%d].properties.%s", kind, i, k),
					Message: "an integer outside the 64-bit range of Neo4j integers (-9223372036854775808 to 9223372036854775807); send it as a string, or as a float such as 1.5e20 if rounding is acceptable"}
			}
		}
		return nil
	}
	for i, n := range g.Nodes {
		if err := check("nodes", i, n.Properties); err != nil {
			return err
		}
	}
	for i, r := range g.Relationships {
		if err := check("relationships", i, r.Properties); err != nil {
			return err
		}
	}
	return nil
}

// decodeGraph decodes a graph document strictly: unknown fields are
// rejected, numbers keep their exact value, chunk_size may be written 500
// or 500.0.
func decodeGraph(params json.RawMessage) (neo4jpool.Graph, error) {
	var doc struct {
		Nodes         json.RawMessage `json:"nodes"`
		Relationships json.RawMessage `json:"relationships"`
		ChunkSize     json.RawMessage `json:"chunk_size"` // 500 and 500.0 alike
	}
	var g neo4jpool.Graph
	if err := strictDecode(params, &doc); err != nil {
		return g, &operations.ValidationError{Message: "not a graph document: " + err.Error()}
	}
	if err := decodeList(doc.Nodes, &g.Nodes); err != nil {
		return g, &operations.ValidationError{Field: "nodes", Message: err.Error()}
	}
	if err := decodeList(doc.Relationships, &g.Relationships); err != nil {
		return g, &operations.ValidationError{Field: "relationships", Message: err.Error()}
	}
	if len(doc.ChunkSize) > 0 {
		f, err := strconv.ParseFloat(string(doc.ChunkSize), 64)
		if err != nil || f != math.Trunc(f) || f < 0 || f > neo4jpool.MaxChunkSize {
			return g, &operations.ValidationError{Field: "chunk_size", Message: fmt.Sprintf("must be an integer between 1 and %d (0 or absent: %d)", neo4jpool.MaxChunkSize, neo4jpool.DefaultChunkSize)}
		}
		g.ChunkSize = int(f)
	}
	return g, nil
}

// strictDecode decodes one JSON value into v, rejecting unknown fields and
// keeping numbers exact.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// decodeList decodes an optional JSON array; absent and null (what Go
// encodes for a nil slice) mean empty.
func decodeList[T any](raw json.RawMessage, out *[]T) error {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil
	case raw[0] != '[':
		return errors.New("must be an array")
	}
	return strictDecode(raw, out)
}

// importError describes a stopped import to its owner: what was committed
// (so it can be resumed or re-run; imports are idempotent) and a code.
// CANCELLED means the operation's own context ended (its owner cancelled
// it, or the server stopped it); a context error from inside the driver or
// the retry-time bound is never reported as a cancellation.
func importError(ctx context.Context, err error) error {
	var res neo4jpool.ImportResult
	phase, offset := "", 0
	var ie *neo4jpool.ImportError
	if errors.As(err, &ie) {
		res, phase, offset = ie.Result, ie.Phase, ie.Offset
	}
	unknown := errors.Is(err, neo4jpool.ErrCommitOutcomeUnknown)
	details := map[string]any{
		"phase": phase, "nodes_committed": res.Nodes, "relationships_committed": res.Relationships, "chunks_committed": res.Chunks,
		// offset: items of phase known committed, the position in the
		// document's list for phase to resume from (relationships_committed
		// leaves out skipped ones, so it is not an offset).
		"offset": offset, "outcome_unknown": unknown,
	}
	code, msg := "IMPORT_FAILED", "import failed"
	if errors.Is(err, neo4jpool.ErrRetryTimeExceeded) {
		details["retry_time_exceeded"] = true
	}
	switch {
	case ctx.Err() != nil:
		code, msg = operations.CodeCancelled, "import cancelled"
	case neo4jpool.IsUnavailable(err):
		code, msg = operations.CodeUnavailable, "database unavailable"
	default:
		var rte *neo4jpool.RetryTimeError
		if errors.As(err, &rte) {
			msg = fmt.Sprintf("import failed: still failing when the retry time (%s) ran out", rte.Limit)
		}
		if c := neo4jCode(err); c != "" {
			details["neo4j_code"] = c
			msg += ": " + c
		}
	}
	if unknown {
		msg += "; the last chunk may or may not have been committed"
	}
	return &operations.Error{
		Code:    code,
		Message: fmt.Sprintf("%s after %d chunk(s) were committed (%d nodes, %d relationships; resume the %s at offset %d); importing the same document again is safe", msg, res.Chunks, res.Nodes, res.Relationships, phaseNoun(phase), offset),
		Details: details, Err: err,
	}
}

// phaseNoun names the list a phase writes.
func phaseNoun(phase string) string {
	if phase == neo4jpool.PhaseRelationships {
		return "relationships"
	}
	return "nodes"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// neo4jCode returns the Neo4j status code in err's chain, or "".
func neo4jCode(err error) string {
	var ne *neo4j.Neo4jError
	if errors.As(err, &ne) {
		return ne.Code
	}
	return ""
}
