package neo4jpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// DefaultBaseLabel is the label every imported node carries besides its own.
const DefaultBaseLabel = "GraphNode"

// Import phases reported in ImportProgress and ImportError.
const (
	PhaseNodes         = "nodes"
	PhaseRelationships = "relationships"
)

// Importer MERGEs graph documents into one environment, in chunks, one
// managed write transaction per chunk.
//
// How nodes are identified: every imported node carries a shared base label
// (BaseLabel, default "GraphNode") besides its own labels, and is MERGEd on
// (:BaseLabel {id}). Ids are therefore global across labels: importing a
// node again with other labels adds those labels to the same node (labels
// are never removed). Relationships MATCH both ends by (:BaseLabel {id}),
// which a uniqueness constraint on BaseLabel.id (created by Import unless
// SkipSchema) backs with an index, so each lookup is an index seek whatever
// the node's other labels; the relationship document needs no labels.
//
// Within a chunk, rows of one id are merged first (labels united, later
// properties winning), so the document's order decides the final values
// whatever the chunk size. Nodes are then grouped by label set and written with one
// UNWIND ... MERGE ... SET n:Labels SET n += row.props statement per group;
// relationships are grouped by type and written with UNWIND ... MATCH ...
// MATCH ... MERGE (a)-[r:TYPE]->(b) SET r += row.props. Labels and types are
// validated against IdentifierPattern before anything is sent and are the
// only values written into Cypher text; ids and properties are parameters.
// Importing the same document twice changes nothing. A relationship whose
// end node does not exist is skipped and counted (RelationshipsSkipped).
//
// The zero value is not usable: set Manager and Env.
type Importer struct {
	// Manager runs the transactions.
	Manager *Manager
	// Env is the environment written to.
	Env string
	// ChunkSize is the largest number of nodes or relationships per
	// transaction (1..MaxChunkSize; MaxChunkBytes may end a chunk sooner). Zero means DefaultChunkSize. Graph.ChunkSize, when
	// set, overrides it for one Import.
	ChunkSize int
	// BaseLabel is the shared label nodes are MERGEd on. Empty means
	// DefaultBaseLabel.
	BaseLabel string
	// SkipSchema stops Import from creating the uniqueness constraint on
	// BaseLabel.id (for users without schema privileges); Import then
	// looks for one (SHOW CONSTRAINTS). Without SkipSchema, the first
	// Import per Manager, environment and base label runs CREATE
	// CONSTRAINT ... IF NOT EXISTS; later ones skip it until the
	// environment is reconfigured.
	//
	// What the constraint promises: with it, ids stay unique however many
	// imports run at once, in any number of processes. Without it (not
	// found, not visible to the user, or blocked by an index the user made
	// on the same key), MERGE alone would create duplicates under
	// concurrency, so imports of this base label through one Manager run
	// one at a time (exact, but serial); imports from other processes or
	// Managers can still duplicate nodes, and every lookup scans the label
	// unless an index on BaseLabel.id exists. Have the constraint created
	// (EnsureConstraints) wherever imports run concurrently.
	SkipSchema bool
	// MaxChunkBytes bounds the estimated size of a chunk's properties
	// (and ids): a chunk ends early when the next item would take it past
	// this size, and an item larger than it is written in a transaction of
	// its own. Zero means DefaultMaxChunkBytes; negative means no bound
	// (chunks are then cut by count only).
	//
	// Why: Neo4j 5 slows down sharply when one transaction rewrites a
	// large property of an existing node and then updates many more list
	// properties (about 0.1 s per later update for a 16 MB value), so
	// re-importing a chunk that mixes a very large value with many nodes
	// could exceed the chunk timeout though the first import was fast.
	MaxChunkBytes int
	// InChunk, when set, runs inside each chunk's transaction after the
	// chunk's writes, with the import's progress as it will be once that
	// transaction commits (Result included). What it writes commits or
	// rolls back with the chunk: the place for a checkpoint that must
	// agree exactly with the data. An error aborts the chunk; the driver
	// retries it only if the error is transient, so return a plain error
	// to stop the import.
	InChunk func(ctx context.Context, tx neo4j.ManagedTransaction, p ImportProgress) error
}

// DefaultMaxChunkBytes is Importer.MaxChunkBytes's default.
const DefaultMaxChunkBytes = 2 << 20

func (im *Importer) maxChunkBytes() int {
	switch {
	case im.MaxChunkBytes == 0:
		return DefaultMaxChunkBytes
	case im.MaxChunkBytes < 0:
		return 0
	}
	return im.MaxChunkBytes
}

// nodeSize returns the estimator of a node's size, or nil for no bound.
func nodeSize(maxBytes int) func(Node) int {
	if maxBytes <= 0 {
		return nil
	}
	return func(n Node) int { return len(n.ID) + propertiesSize(n.Properties) }
}

// relSize returns the estimator of a relationship's size, or nil for no
// bound.
func relSize(maxBytes int) func(Relationship) int {
	if maxBytes <= 0 {
		return nil
	}
	return func(r Relationship) int { return len(r.From) + len(r.To) + propertiesSize(r.Properties) }
}

// propertiesSize estimates the bytes of props as sent and stored: keys,
// strings and byte arrays by their length, other scalars at 8 bytes, lists
// element by element.
func propertiesSize(props map[string]any) int {
	n := 0
	for k, v := range props {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 1
	case string:
		return len(x)
	case []byte:
		return len(x)
	case json.Number:
		return len(x)
	case []string:
		n := 0
		for _, s := range x {
			n += len(s) + 1
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += valueSize(e)
		}
		return n
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		if rv.Type().Elem().Kind() == reflect.String {
			n := 0
			for i := 0; i < rv.Len(); i++ {
				n += rv.Index(i).Len() + 1
			}
			return n
		}
		return rv.Len() * 8
	}
	return 8
}

// ImportProgress is reported after each committed chunk.
type ImportProgress struct {
	// Phase is PhaseNodes or PhaseRelationships.
	Phase string `json:"phase"`
	// Done is the number of items of this phase committed so far.
	Done int `json:"done"`
	// Total is the number of items of this phase, or -1 when unknown.
	Total int `json:"total"`
	// Chunks is the number of chunks committed so far, both phases.
	Chunks int `json:"chunks"`
	// Result counts what is committed so far (what the import's result
	// would be if it stopped now).
	Result ImportResult `json:"-"`
}

// ImportResult counts what an import wrote.
type ImportResult struct {
	// Nodes is the number of nodes written (created or updated).
	Nodes int `json:"nodes"`
	// Relationships is the number of relationships written (created or
	// updated); relationships with a missing end node are not included.
	Relationships int `json:"relationships"`
	// Chunks is the number of transactions committed.
	Chunks int `json:"chunks"`
	// NodesCreated is the number of nodes that did not exist before.
	NodesCreated int `json:"nodes_created"`
	// RelationshipsCreated is the number of relationships that did not
	// exist before.
	RelationshipsCreated int `json:"relationships_created"`
	// RelationshipsSkipped counts relationships not written because an end
	// node does not exist.
	RelationshipsSkipped int `json:"relationships_skipped"`
}

// ImportError reports an import that stopped. Result counts what was
// committed; Offset is where to resume; Err (usually a *ChunkError) is the
// cause.
//
// To resume, import again the items not known to be committed: in the
// nodes phase, the nodes from Offset on and all relationships; in the
// relationships phase, the relationships from Offset on. Importing the
// whole document again is equally safe (imports are idempotent), only
// slower. When the error matches ErrCommitOutcomeUnknown the chunk at
// Offset may already be in the database; writing it again is harmless.
type ImportError struct {
	// Phase is the phase that failed.
	Phase string
	// Offset is the number of items of Phase (nodes, or relationships
	// counting skipped ones) known to be committed: the position, in the
	// document's list for Phase, to resume from. Result.Relationships is
	// not an offset: it leaves out skipped relationships.
	Offset int
	// Result counts what was committed before the failure.
	Result ImportResult
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *ImportError) Error() string {
	return fmt.Sprintf("neo4jpool: import stopped in the %s phase after %d node(s) and %d relationship(s) in %d chunk(s) were committed: %v",
		e.Phase, e.Result.Nodes, e.Result.Relationships, e.Result.Chunks, e.Err)
}

// Unwrap returns the cause.
func (e *ImportError) Unwrap() error { return e.Err }

func (im *Importer) baseLabel() string {
	if im.BaseLabel == "" {
		return DefaultBaseLabel
	}
	return im.BaseLabel
}

func (im *Importer) chunkSize(override int) int {
	switch {
	case override != 0:
		return override
	case im.ChunkSize != 0:
		return im.ChunkSize
	}
	return DefaultChunkSize
}

// check validates the importer's own settings.
func (im *Importer) check(chunkSize int) error {
	if im.Manager == nil {
		return errors.New("neo4jpool: Importer.Manager is nil")
	}
	if err := ValidateIdentifier("base label", im.baseLabel()); err != nil {
		return err
	}
	return ValidateChunkSize(chunkSize)
}

// Import validates g (ValidateGraph; nothing is sent when it is invalid),
// ensures the base-label constraint (unless SkipSchema), then writes all
// nodes and then all relationships in chunks, calling onProgress (if not
// nil) after each committed chunk.
func (im *Importer) Import(ctx context.Context, g Graph, onProgress func(ImportProgress)) (ImportResult, error) {
	size := im.chunkSize(g.ChunkSize)
	if err := im.check(size); err != nil {
		return ImportResult{}, err
	}
	if err := ValidateGraph(g); err != nil {
		return ImportResult{}, err
	}
	return im.run(ctx, size, slicesSeq(g.Nodes), len(g.Nodes), slicesSeq(g.Relationships), len(g.Relationships), false, onProgress)
}

// ImportStream is Import for nodes and relationships read from sequences,
// holding at most one chunk in memory. Each item is validated as it is
// read; an invalid item (or a sequence error) stops the import there, with
// the earlier chunks committed. rels may be nil. Progress totals are -1.
func (im *Importer) ImportStream(ctx context.Context, nodes iter.Seq2[Node, error], rels iter.Seq2[Relationship, error],
	onProgress func(ImportProgress)) (ImportResult, error) {
	size := im.chunkSize(0)
	if err := im.check(size); err != nil {
		return ImportResult{}, err
	}
	if nodes == nil {
		nodes = slicesSeq[Node](nil)
	}
	if rels == nil {
		rels = slicesSeq[Relationship](nil)
	}
	return im.run(ctx, size, nodes, -1, rels, -1, true, onProgress)
}

func slicesSeq[T any](items []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, it := range items {
			if !yield(it, nil) {
				return
			}
		}
	}
}

// validated yields the items of seq, stopping with an error at the first
// invalid one.
func validated[T any](seq iter.Seq2[T, error], kind string, check func(T) error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		i := 0
		for it, err := range seq {
			if err == nil {
				if verr := check(it); verr != nil {
					err = fmt.Errorf("%s %d: %w", kind, i, verr)
				}
			}
			if !yield(it, err) || err != nil {
				return
			}
			i++
		}
	}
}

func (im *Importer) run(ctx context.Context, size int,
	nodes iter.Seq2[Node, error], nodeTotal int,
	rels iter.Seq2[Relationship, error], relTotal int,
	validate bool, onProgress func(ImportProgress)) (ImportResult, error) {
	base := im.baseLabel()
	constrained, err := im.schema(ctx, base)
	if err != nil {
		return ImportResult{}, &ImportError{Phase: PhaseNodes, Err: err}
	}
	if !constrained {
		// MERGE alone does not keep ids unique under concurrency: without
		// the constraint, imports of this base label through this Manager
		// run one at a time.
		unlock, err := im.Manager.lockImports(ctx, im.Env, base)
		if err != nil {
			return ImportResult{}, &ImportError{Phase: PhaseNodes, Err: &ChunkError{Err: err}}
		}
		defer unlock()
	}
	if validate {
		nodes = validated(nodes, "node", ValidateNode)
		rels = validated(rels, "relationship", ValidateRelationship)
	}
	var res ImportResult

	// Statements and rows are built before each chunk's transaction begins
	// (prepare), not inside it, so a retry of the transaction reuses them.
	nw := &nodeWriter{base: im.baseLabel(), stmts: make(map[string]string)}
	maxBytes := im.maxChunkBytes()
	// counted is a chunk's prepared writes and its number of items.
	type counted struct {
		batches []batch
		items   int
	}
	// next is the result as it will be once the chunk in flight commits:
	// computed by its write (so InChunk can save it in the chunk's own
	// transaction), it becomes res when the commit is reported.
	var next ImportResult
	inChunk := func(ctx context.Context, tx neo4j.ManagedTransaction, p ImportProgress) error {
		if im.InChunk == nil {
			return nil
		}
		return im.InChunk(ctx, tx, p)
	}
	nodePrepare := func(chunk []Node) counted { return counted{nw.prepare(chunk), len(chunk)} }
	nodeWrite := func(ctx context.Context, tx neo4j.ManagedTransaction, c counted) error {
		if err := nw.write(ctx, tx, c.batches); err != nil {
			return err
		}
		next = res
		next.Nodes += c.items
		next.NodesCreated += nw.created
		next.Chunks++
		return inChunk(ctx, tx, ImportProgress{Phase: PhaseNodes, Done: next.Nodes, Total: nodeTotal, Chunks: next.Chunks, Result: next})
	}
	_, err = chunkedWriteSeq(ctx, im.Manager, im.Env, nodes, nodeTotal, size, byteBudget[Node]{nodeSize(maxBytes), maxBytes}, nodePrepare, nodeWrite, func(done, total int) {
		res = next
		if onProgress != nil {
			onProgress(ImportProgress{Phase: PhaseNodes, Done: done, Total: total, Chunks: res.Chunks, Result: res})
		}
	})
	if err != nil {
		return res, &ImportError{Phase: PhaseNodes, Offset: chunkOffset(err), Result: res, Err: err}
	}

	rw := &relWriter{base: im.baseLabel(), stmts: make(map[string]string)}
	relDone := 0 // relationship rows committed, skipped ones included
	relPrepare := func(chunk []Relationship) counted { return counted{rw.prepare(chunk), len(chunk)} }
	relWrite := func(ctx context.Context, tx neo4j.ManagedTransaction, c counted) error {
		if err := rw.write(ctx, tx, c.batches); err != nil {
			return err
		}
		next = res
		next.Relationships += rw.written
		next.RelationshipsSkipped += rw.rows - rw.written
		next.RelationshipsCreated += rw.created
		next.Chunks++
		return inChunk(ctx, tx, ImportProgress{Phase: PhaseRelationships, Done: relDone + c.items, Total: relTotal, Chunks: next.Chunks, Result: next})
	}
	_, err = chunkedWriteSeq(ctx, im.Manager, im.Env, rels, relTotal, size, byteBudget[Relationship]{relSize(maxBytes), maxBytes}, relPrepare, relWrite, func(done, total int) {
		relDone, res = done, next
		if onProgress != nil {
			onProgress(ImportProgress{Phase: PhaseRelationships, Done: done, Total: total, Chunks: res.Chunks, Result: res})
		}
	})
	if err != nil {
		return res, &ImportError{Phase: PhaseRelationships, Offset: chunkOffset(err), Result: res, Err: err}
	}
	return res, nil
}

// chunkOffset returns the resume offset of a chunked write's error.
func chunkOffset(err error) int {
	var ce *ChunkError
	if errors.As(err, &ce) {
		return ce.Committed
	}
	return 0
}

// EnsureConstraints creates, if missing, a uniqueness constraint on the id
// property for the base label and for each given label (each validated
// against IdentifierPattern first). Constraints are named
// "atg_id_unique_<Label>". Creating one fails if existing nodes with that
// label share an id.
func (im *Importer) EnsureConstraints(ctx context.Context, labels ...string) error {
	if im.Manager == nil {
		return errors.New("neo4jpool: Importer.Manager is nil")
	}
	all := append([]string{im.baseLabel()}, labels...)
	for _, l := range all {
		if err := ValidateIdentifier("label", l); err != nil {
			return err
		}
	}
	for _, l := range all {
		if err := im.ensureConstraint(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// codeIndexAlreadyExists is Neo4j's refusal to create a uniqueness
// constraint where an index on the same label and property exists.
const codeIndexAlreadyExists = "Neo.ClientError.Schema.IndexAlreadyExists"

// schema reports whether a uniqueness constraint (or node key) on
// label.id is known to exist, creating it unless SkipSchema. An index the
// user created on (:label {id}) blocks the constraint: the import then
// goes on without it (MERGE uses that index for its lookups) and is
// serialised like an import without the constraint. With SkipSchema the
// constraint is looked up (SHOW CONSTRAINTS); when that is not allowed,
// it is taken to be absent.
func (im *Importer) schema(ctx context.Context, label string) (bool, error) {
	m := im.Manager
	if m.schemaEnsured(im.Env, label) {
		return true, nil
	}
	if im.SkipSchema {
		ok, err := im.hasIDConstraint(ctx, label)
		if err != nil {
			if IsUnavailable(err) || ctx.Err() != nil {
				return false, err
			}
			return false, nil // not allowed to look: assume absent
		}
		if ok {
			m.markSchemaEnsured(im.Env, label)
		}
		return ok, nil
	}
	err := im.ensureConstraint(ctx, label)
	if err == nil {
		return true, nil
	}
	var ne *neo4j.Neo4jError
	if errors.As(err, &ne) && neo4jCode(ne) == codeIndexAlreadyExists {
		m.logger().Warn("neo4jpool: an index on the import key blocks the id uniqueness constraint; importing without it, one import at a time",
			slog.String("env", im.Env), slog.String("label", label), slog.String("neo4j_message", ne.Msg))
		return false, nil
	}
	return false, err
}

// hasIDConstraint reports whether a uniqueness constraint or node key on
// exactly label.id exists.
func (im *Importer) hasIDConstraint(ctx context.Context, label string) (bool, error) {
	n, err := im.Manager.ExecuteRead(ctx, im.Env, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "+
			"WHERE type IN ['UNIQUENESS', 'NODE_KEY'] AND labelsOrTypes = [$label] AND properties = ['id'] RETURN count(*) AS n",
			map[string]any{"label": label})
		if err != nil {
			return nil, err
		}
		rec, err := res.Single(ctx)
		if err != nil {
			return nil, err
		}
		return rec.Values[0], nil
	})
	if err != nil {
		return false, err
	}
	c, _ := n.(int64)
	return c > 0, nil
}

func (im *Importer) ensureConstraint(ctx context.Context, label string) error {
	stmt := "CREATE CONSTRAINT " + quoteIdentifier("atg_id_unique_"+label) + " IF NOT EXISTS FOR (n:" +
		quoteIdentifier(label) + ") REQUIRE n.id IS UNIQUE"
	_, err := im.Manager.ExecuteWrite(ctx, im.Env, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, stmt, nil)
		if err != nil {
			return nil, err
		}
		_, err = res.Consume(ctx)
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("neo4jpool: ensure uniqueness constraint on %s.id: %w", label, err)
	}
	im.Manager.markSchemaEnsured(im.Env, label)
	return nil
}

// emptyProps is sent for items without properties (SET n += {}); the driver
// only reads it.
var emptyProps = map[string]any{}

// batch is one statement of a chunk's transaction with its rows.
type batch struct {
	stmt string
	rows []any
}

// nodeWriter writes node chunks; created holds the counts of the last
// successful attempt (the driver may run write more than once).
type nodeWriter struct {
	base    string
	stmts   map[string]string // label-set key -> statement
	created int

	keyBuf  []byte   // labelKey's buffer, reused across nodes
	scratch []string // labelKey's sorting space, reused across nodes
}

// prepare groups a chunk of nodes by label set (in order of first
// appearance) and builds each group's statement and rows, before the
// chunk's transaction begins. An id repeated within the chunk is written
// once, merged as collapseNodes says, so that grouping cannot reorder its
// rows: the later row in the document wins at any chunk size.
func (w *nodeWriter) prepare(chunk []Node) []batch {
	chunk = collapseNodes(chunk)
	var out []batch
	index := make(map[string]int) // label-set key -> position in out
	for i := range chunk {
		n := &chunk[i]
		w.keyBuf, w.scratch = labelKey(w.keyBuf[:0], w.scratch[:0], n.Labels, w.base)
		j, ok := index[string(w.keyBuf)] // no allocation for the lookup
		if !ok {
			key := string(w.keyBuf)
			j = len(out)
			index[key] = j
			out = append(out, batch{stmt: w.statement(key)})
		}
		props := emptyProps
		if len(n.Properties) > 0 {
			props = normalizeProperties(n.Properties)
		}
		out[j].rows = append(out[j].rows, map[string]any{"id": n.ID, "props": props})
	}
	return out
}

// collapseNodes returns chunk with every repeated id merged into its first
// occurrence: labels united, properties merged in document order (a later
// value, nil included, replaces an earlier one). Writing the merged node
// has the same effect as writing the rows one after another (labels are
// only added; SET n += applies keys in turn, nil removing). It returns
// chunk itself, without allocating a copy, when no id repeats, and never
// modifies chunk's nodes.
func collapseNodes(chunk []Node) []Node {
	if len(chunk) < 2 {
		return chunk
	}
	seen := make(map[string]struct{}, len(chunk))
	dup := false
	for i := range chunk {
		if _, ok := seen[chunk[i].ID]; ok {
			dup = true
			break
		}
		seen[chunk[i].ID] = struct{}{}
	}
	if !dup {
		return chunk
	}
	out := make([]Node, 0, len(chunk))
	pos := make(map[string]int, len(chunk))
	for _, n := range chunk {
		j, ok := pos[n.ID]
		if !ok {
			pos[n.ID] = len(out)
			out = append(out, n) // shares Labels and Properties until merged
			continue
		}
		m := &out[j]
		m.Labels = append(slices.Clip(m.Labels), n.Labels...)
		props := make(map[string]any, len(m.Properties)+len(n.Properties))
		maps.Copy(props, m.Properties)
		maps.Copy(props, n.Properties)
		m.Properties = props
	}
	return out
}

// write runs the prepared statements of one chunk in tx.
func (w *nodeWriter) write(ctx context.Context, tx neo4j.ManagedTransaction, batches []batch) error {
	w.created = 0
	created := 0
	for _, b := range batches {
		res, err := tx.Run(ctx, b.stmt, map[string]any{"rows": b.rows})
		if err != nil {
			return err
		}
		summary, err := res.Consume(ctx)
		if err != nil {
			return err
		}
		created += summary.Counters().NodesCreated()
	}
	w.created = created
	return nil
}

// labelKey appends to buf the label set of labels (sorted, without
// duplicates and without base) joined by ':', using scratch for sorting
// only when labels are not already sorted. It allocates nothing once buf
// and scratch have grown. Labels match IdentifierPattern, which admits no
// ':', so the key splits back into the set.
func labelKey(buf []byte, scratch, labels []string, base string) ([]byte, []string) {
	sorted := true
	for i := 1; i < len(labels); i++ {
		if labels[i-1] >= labels[i] {
			sorted = false
			break
		}
	}
	ls := labels
	if !sorted {
		scratch = append(scratch, labels...)
		slices.Sort(scratch)
		ls = scratch
	}
	prev := ""
	for i, l := range ls {
		if l == base || (i > 0 && l == prev) {
			prev = l
			continue
		}
		prev = l
		if len(buf) > 0 {
			buf = append(buf, ':')
		}
		buf = append(buf, l...)
	}
	return buf, scratch
}

// statement returns the MERGE statement for the label set key (see
// labelKey), building it on first use.
func (w *nodeWriter) statement(key string) string {
	if s, ok := w.stmts[key]; ok {
		return s
	}
	var b strings.Builder
	b.WriteString("UNWIND $rows AS row MERGE (n:")
	b.WriteString(quoteIdentifier(w.base))
	b.WriteString(" {id: row.id})")
	if key != "" {
		b.WriteString(" SET n")
		for l := range strings.SplitSeq(key, ":") {
			b.WriteString(":")
			b.WriteString(quoteIdentifier(l))
		}
	}
	b.WriteString(" SET n += row.props")
	s := b.String()
	w.stmts[key] = s
	return s
}

// relWriter writes relationship chunks; rows, written and created hold the
// counts of the last successful attempt.
type relWriter struct {
	base                   string
	stmts                  map[string]string // type -> statement
	rows, written, created int
}

// prepare groups a chunk of relationships by type (in order of first
// appearance) and builds each group's statement and rows, before the
// chunk's transaction begins.
func (w *relWriter) prepare(chunk []Relationship) []batch {
	var out []batch
	index := make(map[string]int) // type -> position in out
	for i := range chunk {
		r := &chunk[i]
		j, ok := index[r.Type]
		if !ok {
			j = len(out)
			index[r.Type] = j
			out = append(out, batch{stmt: w.statement(r.Type)})
		}
		props := emptyProps
		if len(r.Properties) > 0 {
			props = normalizeProperties(r.Properties)
		}
		// i tells rows apart, so that a row matching several nodes (ids
		// duplicated by imports without the constraint) counts once.
		out[j].rows = append(out[j].rows, map[string]any{"i": len(out[j].rows), "from": r.From, "to": r.To, "props": props})
	}
	return out
}

// write runs the prepared statements of one chunk in tx.
func (w *relWriter) write(ctx context.Context, tx neo4j.ManagedTransaction, batches []batch) error {
	w.rows, w.written, w.created = 0, 0, 0
	rows, written, created := 0, 0, 0
	for _, b := range batches {
		rows += len(b.rows)
		res, err := tx.Run(ctx, b.stmt, map[string]any{"rows": b.rows})
		if err != nil {
			return err
		}
		rec, err := res.Single(ctx)
		if err != nil {
			return err
		}
		if n, ok := rec.Values[0].(int64); ok {
			written += int(n)
		}
		summary, err := res.Consume(ctx)
		if err != nil {
			return err
		}
		created += summary.Counters().RelationshipsCreated()
	}
	w.rows, w.written, w.created = rows, written, created
	return nil
}

func (w *relWriter) statement(typ string) string {
	if s, ok := w.stmts[typ]; ok {
		return s
	}
	base := quoteIdentifier(w.base)
	s := "UNWIND $rows AS row MATCH (a:" + base + " {id: row.from}) MATCH (b:" + base +
		" {id: row.to}) MERGE (a)-[r:" + quoteIdentifier(typ) + "]->(b) SET r += row.props RETURN count(DISTINCT row.i) AS written"
	w.stmts[typ] = s
	return s
}
