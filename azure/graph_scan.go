package azure

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
)

// Scan phases reported through Scanner.Progress.
const (
	PhaseSubscriptions = "subscriptions"
	PhaseResources     = "resources"
	PhaseNodes         = "nodes"
	PhaseEdges         = "edges"
	PhasePrune         = "prune"
)

// DefaultPruneBatch is the number of nodes or relationships deleted per
// prune transaction.
const DefaultPruneBatch = 1000

var errNoSource = errors.New("azure: Scanner.Source is nil")

// ReadError reports a table of a subscription (or the tenant's
// ResourceContainers when Subscription is "") whose read failed: the scan
// kept that subscription's data as it was.
type ReadError struct {
	// Subscription is the subscription GUID, "" for the tenant.
	Subscription string
	// Table is the table being read.
	Table Table
	// Err is the Source's error.
	Err error
}

// Error implements error.
func (e *ReadError) Error() string {
	where := "tenant"
	if e.Subscription != "" {
		where = "subscription " + e.Subscription
	}
	return fmt.Sprintf("azure: read %s of %s: %v", e.Table, where, e.Err)
}

// Unwrap returns the cause.
func (e *ReadError) Unwrap() error { return e.Err }

// ScanConfig says what a Scanner reads and how it writes.
type ScanConfig struct {
	// TenantID is the tenant scanned (required; lower-cased).
	TenantID string
	// Subscriptions limits the scan to these subscription GUIDs; empty
	// means every subscription of the tenant's ResourceContainers.
	Subscriptions []string
	// ResourceGroups limits the scan to these resource groups (names,
	// compared case-insensitively) of the scanned subscriptions.
	ResourceGroups []string
	// Prune deletes, after the writes, what this scan did not see, only in
	// subscriptions whose reads all completed.
	Prune bool
	// DryRun reports the diff against the database and writes nothing.
	DryRun bool
	// ChunkSize is the number of nodes or relationships per transaction;
	// 0 means neo4jpool.DefaultChunkSize.
	ChunkSize int
	// ScanID names the scan (stamped as scan_id); empty means one made of
	// the time and a random suffix.
	ScanID string
}

// Diff counts what a scan did to one kind of item.
type Diff struct {
	// Added counts items that did not exist before.
	Added int64 `json:"added"`
	// Changed counts existing items whose content hash changed.
	Changed int64 `json:"changed"`
	// Unchanged counts existing items whose content hash is the same.
	Unchanged int64 `json:"unchanged"`
	// Removed counts items pruned (or, in a dry run, that would be).
	Removed int64 `json:"removed"`
}

func (d *Diff) add(o Diff) {
	d.Added += o.Added
	d.Changed += o.Changed
	d.Unchanged += o.Unchanged
	d.Removed += o.Removed
}

// SubscriptionResult is what a scan did in one subscription.
type SubscriptionResult struct {
	// SubscriptionID is the subscription GUID.
	SubscriptionID string `json:"subscription_id"`
	// Name is its display name, when ResourceContainers has it.
	Name string `json:"name,omitempty"`
	// Complete is true when every read of the subscription completed.
	Complete bool `json:"complete"`
	// Error says why it is not complete.
	Error string `json:"error,omitempty"`
	// Pruned is true when stale items of the subscription were deleted (or,
	// in a dry run, counted).
	Pruned bool `json:"pruned"`
	// Rows counts the rows of the subscription mapped to the graph.
	Rows int64 `json:"rows"`
	// Nodes and Relationships count what changed.
	Nodes         Diff `json:"nodes"`
	Relationships Diff `json:"relationships"`
	// Stats counts the Source's calls made for the subscription.
	Stats Stats `json:"stats"`
}

// ScanResult is the outcome of a scan.
type ScanResult struct {
	// ScanID is the scan's id, stamped on everything it wrote.
	ScanID string `json:"scan_id"`
	// TenantID is the tenant scanned.
	TenantID string `json:"tenant_id"`
	// DryRun is true when nothing was written.
	DryRun bool `json:"dry_run"`
	// Prune echoes the prune parameter.
	Prune bool `json:"prune"`
	// Complete is true when every read completed.
	Complete bool `json:"complete"`
	// Subscriptions are the subscriptions scanned, in order.
	Subscriptions []SubscriptionResult `json:"subscriptions"`
	// TenantLevel counts tenant-level items: the Tenant, principals, and
	// (in a full, complete scan) items of subscriptions no longer listed.
	TenantLevel struct {
		Nodes         Diff  `json:"nodes"`
		Relationships Diff  `json:"relationships"`
		Stats         Stats `json:"stats"`
	} `json:"tenant"`
	// Nodes and Relationships are the totals.
	Nodes         Diff `json:"nodes"`
	Relationships Diff `json:"relationships"`
	// RelationshipsSkipped counts relationships not written because an end
	// is not a node of this scan.
	RelationshipsSkipped int64 `json:"relationships_skipped"`
	// Stats counts every call made to the Source.
	Stats Stats `json:"stats"`
	// Started and Finished bound the scan.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// ScanProgress is one progress report of a scan.
type ScanProgress struct {
	// Phase is one of the Phase* constants.
	Phase string
	// Message is a human-readable line, e.g. "subscription …: resources page 3".
	Message string
	// Done and Total count the phase's items (Total 0 when unknown).
	Done, Total int64
	// Percent estimates the whole scan's progress (0..100): reading and
	// writing nodes up to 70, relationships up to 95, then the prune.
	Percent float64
}

// Scanner reads a tenant from a Source and writes it into one Neo4j
// environment as the graph model (see Mapper): nodes first, in chunks, as
// rows stream in; relationships after every node is in; then the prune.
// Nodes are MERGEd on (:AzureNode {tenant_id, id}), so tenants never share
// or touch each other's nodes. Every node and relationship is stamped with
// tenant_id, scan_id, first_seen, last_seen and a content_hash.
//
// Memory: rows are not kept (nodes are written a chunk at a time as they
// stream in); the scan keeps a 64-bit hash of each node id seen, and the
// relationships it will write wait in a temporary file (in memory when no
// temporary file can be created). A node id met twice is written once,
// from its first row.
type Scanner struct {
	// Manager and Env say where to write.
	Manager *neo4jpool.Manager
	Env     string
	// Source yields the rows.
	Source Source
	// Progress, when set, receives progress reports.
	Progress func(ScanProgress)
	// PruneBatch is the number of items deleted per prune transaction; 0
	// means DefaultPruneBatch.
	PruneBatch int
	// NodeWriters is how many node chunks are written at once, each in its
	// own transaction (nodes of different chunks are distinct, so they do
	// not wait for each other); 0 means DefaultNodeWriters (2).
	// Relationships are written one chunk at a time: they share nodes.
	NodeWriters int
	// Now returns the time stamped as first_seen and last_seen; nil means
	// time.Now.
	Now func() time.Time
}

// DefaultNodeWriters is Scanner.NodeWriters's default.
const DefaultNodeWriters = 2

func (s *Scanner) nodeWriters() int {
	if s.NodeWriters > 0 {
		return s.NodeWriters
	}
	return DefaultNodeWriters
}

// scanLocks serialises scans of one tenant in one environment within a
// process: relationship MERGEs are not protected by a constraint.
var scanLocks sync.Map // env + "\x00" + tenant -> chan struct{}

func lockTenant(ctx context.Context, key string) (func(), error) {
	v, _ := scanLocks.LoadOrStore(key, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// scan is one run's state.
type scan struct {
	s      *Scanner
	cfg    ScanConfig
	tenant string
	now    time.Time
	size   int
	m      *Mapper
	res    *ScanResult
	seen   map[uint64]struct{}
	// containers holds the ids of subscriptions and resource groups
	// written, so that those only implied by resource ids are added.
	containers map[string]bool
	rels       *relSpool
	subs       map[string]*SubscriptionResult
	pages      int64
	// subIdx of subN is the subscription being read or pruned, for
	// ScanProgress.Percent.
	subIdx, subN int
}

// Scan runs one scan. A subscription whose read fails keeps its data (it
// is not pruned) and its SubscriptionResult says why; the scan goes on
// with the others and returns its result without error. A database error,
// or the end of ctx, stops the scan with an error (what was committed
// stays: a later scan completes it).
func (s *Scanner) Scan(ctx context.Context, cfg ScanConfig) (*ScanResult, error) {
	if s.Source == nil {
		return nil, errNoSource
	}
	if cfg.TenantID == "" {
		return nil, errors.New("azure: ScanConfig.TenantID is empty")
	}
	size := cfg.ChunkSize
	if size == 0 {
		size = neo4jpool.DefaultChunkSize
	}
	if err := neo4jpool.ValidateChunkSize(size); err != nil {
		return nil, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	tenant := strings.ToLower(cfg.TenantID)
	if cfg.ScanID == "" {
		cfg.ScanID = NewScanID(now())
	}
	unlock, err := lockTenant(ctx, s.Env+"\x00"+tenant)
	if err != nil {
		return nil, err
	}
	defer unlock()

	rgs := map[string]bool{}
	for _, g := range cfg.ResourceGroups {
		rgs[strings.ToLower(g)] = true
	}
	sc := &scan{s: s, cfg: cfg, tenant: tenant, now: now().UTC(), size: size,
		m:    &Mapper{TenantID: tenant, ResourceGroups: rgs},
		res:  &ScanResult{ScanID: cfg.ScanID, TenantID: tenant, DryRun: cfg.DryRun, Prune: cfg.Prune, Complete: true},
		seen: make(map[uint64]struct{}), subs: make(map[string]*SubscriptionResult), containers: make(map[string]bool), rels: newRelSpool()}
	defer sc.rels.close()
	sc.res.Started = sc.now
	if err := sc.run(ctx); err != nil {
		return sc.res, err
	}
	sc.res.Finished = now().UTC()
	return sc.res, nil
}

// NewScanID returns a scan id: the UTC time and a hash of it with the
// process's clock reading, e.g. "20261203T161500Z-1a2b3c4d".
func NewScanID(t time.Time) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d", time.Now().UnixNano())
	return fmt.Sprintf("%s-%08x", t.UTC().Format("20060102T150405Z"), h.Sum32())
}

func (sc *scan) progress(phase, msg string, done, total int64) {
	if sc.s.Progress == nil {
		return
	}
	frac := func(i, n int) float64 {
		if n <= 0 {
			return 0
		}
		return float64(i) / float64(n)
	}
	var pct float64
	switch phase {
	case PhaseSubscriptions:
		pct = 2
	case PhaseResources, PhaseNodes:
		pct = 5 + 65*frac(sc.subIdx, sc.subN)
	case PhaseEdges:
		pct = 70
		if total > 0 {
			pct += 25 * float64(done) / float64(total)
		}
	case PhasePrune:
		pct = 95 + 5*frac(sc.subIdx, sc.subN)
		if done < 0 { // the end
			pct, done = 100, 0
		}
	}
	sc.s.Progress(ScanProgress{Phase: phase, Message: msg, Done: done, Total: total, Percent: min(pct, 100)})
}

func (sc *scan) run(ctx context.Context) error {
	if !sc.cfg.DryRun {
		if err := sc.schema(ctx); err != nil {
			return err
		}
	}
	src := sc.s.Source
	before := src.Stats()

	wanted := map[string]bool{}
	var order []string
	for _, s := range sc.cfg.Subscriptions {
		s = strings.ToLower(s)
		if !wanted[s] {
			wanted[s] = true
			order = append(order, s)
			sc.subs[s] = &SubscriptionResult{SubscriptionID: s, Complete: true}
		}
	}
	explicit := len(order) > 0

	// One stream of nodes, written in chunks that may span tables and
	// subscriptions (fewer transactions): the tenant, subscriptions and
	// resource groups, then each subscription's resources and role
	// assignments. A subscription whose read fails is marked incomplete
	// and the stream goes on with the next one.
	var fatal error
	nodes := func(yield func(Node, error) bool) {
		sc.progress(PhaseSubscriptions, "reading subscriptions and resource groups", 0, 0)
		if !yield(sc.m.TenantNode(), nil) {
			return
		}
		for row, err := range src.Rows(ctx, TableResourceContainers, "") {
			if err != nil {
				re := &ReadError{Table: TableResourceContainers, Err: err}
				if !explicit || ctx.Err() != nil {
					fatal = re // nothing says which subscriptions to read
					yield(Node{}, re)
					return
				}
				sc.res.Complete = false
				for _, sr := range sc.subs {
					sr.Complete, sr.Error = false, re.Error()
				}
				break
			}
			c, ns, rs, ok := sc.m.ResourceContainer(row)
			if !ok {
				continue
			}
			sr := sc.subs[c.Subscription]
			if sr == nil {
				if explicit {
					continue
				}
				sr = &SubscriptionResult{SubscriptionID: c.Subscription, Complete: true}
				sc.subs[c.Subscription] = sr
				order = append(order, c.Subscription)
			}
			if c.IsSubscription {
				sr.Name = c.Name
			}
			sr.Rows++
			sc.rels.add(rs...)
			for _, n := range ns {
				sc.containers[n.ID] = true
				if !yield(n, nil) {
					return
				}
			}
		}
		if !explicit && len(order) == 0 {
			// No ResourceContainers rows (an `az resource list`
			// inventory): the subscriptions are those of the resources.
			for row, err := range src.Rows(ctx, TableResources, "") {
				if err != nil {
					fatal = &ReadError{Table: TableResources, Err: err}
					yield(Node{}, fatal)
					return
				}
				if !sc.m.sameTenant(row) {
					continue
				}
				if sub := ParseID(strings.ToLower(str(row["id"]))).Subscription; sub != "" && sc.subs[sub] == nil {
					sc.subs[sub] = &SubscriptionResult{SubscriptionID: sub, Complete: true}
					order = append(order, sub)
				}
			}
		}
		sc.res.TenantLevel.Stats = statsDelta(src.Stats(), before)
		sc.progress(PhaseSubscriptions, fmt.Sprintf("%d subscription(s) to read", len(order)), int64(len(order)), int64(len(order)))
		sc.subN = len(order)
		for i, sub := range order {
			sc.subIdx = i
			sr := sc.subs[sub]
			b := src.Stats()
			for _, table := range []Table{TableResources, TableAuthorizationResources} {
				var rerr error
				for n, err := range sc.subscriptionRows(ctx, table, sub, sr) {
					if err != nil {
						rerr = err
						break
					}
					if !yield(n, nil) {
						return
					}
				}
				if rerr != nil {
					if ctx.Err() != nil {
						fatal = rerr
						yield(Node{}, rerr)
						return
					}
					sc.res.Complete = false
					sr.Complete, sr.Error = false, rerr.Error()
					break // the subscription is partial: nothing of it is pruned
				}
			}
			sr.Stats = statsDelta(src.Stats(), b)
		}
	}
	if err := sc.writeNodes(ctx, nodes, "nodes"); err != nil {
		if fatal != nil {
			return sc.fail(ctx, fatal)
		}
		return sc.fail(ctx, err)
	}
	sc.res.Stats = statsDelta(src.Stats(), before)

	// 3. Relationships, after every node.
	if err := sc.writeRels(ctx); err != nil {
		return sc.fail(ctx, err)
	}

	// 4. Prune.
	if sc.cfg.Prune {
		var done []*SubscriptionResult
		for _, sub := range order {
			if sr := sc.subs[sub]; sr.Complete {
				done = append(done, sr)
			}
		}
		if err := sc.prune(ctx, done); err != nil {
			return sc.fail(ctx, err)
		}
		if !explicit && len(sc.cfg.ResourceGroups) == 0 && sc.res.Complete {
			if err := sc.pruneTenant(ctx, order); err != nil {
				return sc.fail(ctx, err)
			}
		}
	}
	for _, sub := range order {
		sr := sc.subs[sub]
		sc.res.Nodes.add(sr.Nodes)
		sc.res.Relationships.add(sr.Relationships)
		sc.res.Subscriptions = append(sc.res.Subscriptions, *sr)
	}
	sc.res.Nodes.add(sc.res.TenantLevel.Nodes)
	sc.res.Relationships.add(sc.res.TenantLevel.Relationships)
	if sc.res.Subscriptions == nil {
		sc.res.Subscriptions = []SubscriptionResult{}
	}
	sc.res.Finished = time.Now().UTC()
	if !sc.cfg.DryRun {
		if err := sc.writeScanNode(ctx); err != nil {
			return err
		}
	}
	sc.progress(PhasePrune, fmt.Sprintf("scan %s done: %d nodes added, %d changed, %d removed; %d relationships added, %d changed, %d removed",
		sc.cfg.ScanID, sc.res.Nodes.Added, sc.res.Nodes.Changed, sc.res.Nodes.Removed,
		sc.res.Relationships.Added, sc.res.Relationships.Changed, sc.res.Relationships.Removed), -1, 0)
	return nil
}

// fail returns err, the context's cause when ctx ended.
func (sc *scan) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("azure: scan stopped: %w", context.Cause(ctx))
	}
	return err
}

// subscriptionRows maps the rows of table for sub into nodes (collecting
// their relationships), reporting each new page.
func (sc *scan) subscriptionRows(ctx context.Context, table Table, sub string, sr *SubscriptionResult) iter.Seq2[Node, error] {
	return func(yield func(Node, error) bool) {
		src := sc.s.Source
		lastPages := src.Stats().Pages
		page := int64(0)
		for row, err := range src.Rows(ctx, table, sub) {
			if err != nil {
				yield(Node{}, &ReadError{Subscription: sub, Table: table, Err: err})
				return
			}
			if p := src.Stats().Pages; p != lastPages {
				page += p - lastPages
				lastPages = p
				sc.pages++
				sc.progress(PhaseResources, fmt.Sprintf("subscription %s: %s page %d", sub, table, page), sc.pages, 0)
			}
			var ns []Node
			var rs []Relationship
			var ok bool
			if table == TableResources {
				ns, rs, ok = sc.m.Resource(row, sub)
				if ok {
					p := ParseID(ns[0].ID)
					sid, gid := "/subscriptions/"+p.Subscription, p.ResourceGroupID()
					if !sc.containers[sid] || !sc.containers[gid] {
						cn, cr := sc.m.Containers(ns[0].ID, !sc.containers[sid], !sc.containers[gid])
						sc.containers[sid], sc.containers[gid] = true, true
						ns, rs = append(cn, ns...), append(cr, rs...)
					}
				}
			} else {
				ns, rs, ok = sc.m.RoleAssignment(row, sub)
			}
			if !ok {
				continue
			}
			sr.Rows++
			sc.rels.add(rs...)
			for _, n := range ns {
				if !yield(n, nil) {
					return
				}
			}
		}
	}
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// nodeRow is one node as sent to Neo4j.
type nodeRow struct {
	labels string // label key
	row    map[string]any
}

// writeNodes writes (or, in a dry run, diffs) the nodes of seq in chunks.
func (sc *scan) writeNodes(ctx context.Context, seq iter.Seq2[Node, error], what string) error {
	rows := func(yield func(nodeRow, error) bool) {
		for n, err := range seq {
			if err != nil {
				yield(nodeRow{}, err)
				return
			}
			h := idHash(n.ID)
			_, dup := sc.seen[h]
			sc.seen[h] = struct{}{}
			if dup {
				continue // written and counted once per scan: the first row wins
			}
			props := n.Properties
			if props == nil {
				props = map[string]any{}
			}
			if n.Subscription != "" {
				props["subscription_id"] = n.Subscription
			}
			if n.ResourceGroup != "" {
				props["resource_group"] = n.ResourceGroup
			}
			hash := Hash(n.Labels, props)
			// The stamps go into the same map (after hashing): one SET
			// writes them with the content.
			props["id"], props["tenant_id"], props["scan_id"], props["last_seen"], props["content_hash"] = n.ID, sc.tenant, sc.cfg.ScanID, sc.now, hash
			if !yield(nodeRow{labels: labelKey(n.Labels), row: map[string]any{"id": n.ID, "props": props, "hash": hash, "sub": n.Subscription}}, nil) {
				return
			}
		}
	}
	done := int64(0)
	// Nodes of different chunks are distinct (an id is written once per
	// scan), so chunks go to the database in parallel.
	_, err := neo4jpool.ChunkedWriteSeqConcurrent(ctx, sc.s.Manager, sc.s.Env, rows, sc.size, sc.s.nodeWriters(),
		sc.nodeChunk,
		func(diff map[string]Diff, n int) {
			for sub, d := range diff {
				nodes, _ := sc.counters(sub)
				nodes.add(d)
			}
			done += int64(n)
			sc.progress(PhaseNodes, fmt.Sprintf("%s: %d nodes written", what, done), done, 0)
		})
	if err != nil {
		var ce *neo4jpool.ChunkError
		var re *ReadError
		if errors.As(err, &ce) && errors.As(ce.Err, &re) {
			return re
		}
	}
	return err
}

// counters returns the node and relationship counters of subscription
// sub, or the tenant level's when sub is "" or not scanned.
func (sc *scan) counters(sub string) (nodes, rels *Diff) {
	if sr := sc.subs[sub]; sr != nil {
		return &sr.Nodes, &sr.Relationships
	}
	return &sc.res.TenantLevel.Nodes, &sc.res.TenantLevel.Relationships
}

func labelKey(labels []string) string {
	ls := slices.Clone(labels)
	slices.Sort(ls)
	return strings.Join(slices.Compact(ls), ":")
}

func quote(s string) string { return "`" + strings.ReplaceAll(s, "`", "") + "`" }

const nodeStmtWrite = "UNWIND $rows AS row MERGE (n:" + LabelBase + " {tenant_id: $tenant, id: row.id}) " +
	"WITH n, row, n.content_hash AS old, n.scan_id AS prev, n.first_seen AS fs " +
	"SET n = row.props, n.first_seen = coalesce(fs, $now) SET n%s " +
	"RETURN row.sub AS sub, " +
	"sum(CASE WHEN prev = $scan THEN 0 WHEN old IS NULL THEN 1 ELSE 0 END) AS added, " +
	"sum(CASE WHEN prev = $scan OR old IS NULL THEN 0 WHEN old = row.hash THEN 0 ELSE 1 END) AS changed, " +
	"sum(CASE WHEN prev = $scan OR old IS NULL THEN 0 WHEN old = row.hash THEN 1 ELSE 0 END) AS unchanged"

const nodeStmtDiff = "UNWIND $rows AS row OPTIONAL MATCH (n:" + LabelBase + " {tenant_id: $tenant, id: row.id}) " +
	"RETURN row.sub AS sub, " +
	"sum(CASE WHEN n IS NULL THEN 1 ELSE 0 END) AS added, " +
	"sum(CASE WHEN n IS NOT NULL AND n.content_hash <> row.hash THEN 1 ELSE 0 END) AS changed, " +
	"sum(CASE WHEN n IS NOT NULL AND n.content_hash = row.hash THEN 1 ELSE 0 END) AS unchanged"

func (sc *scan) params(extra map[string]any) map[string]any {
	p := map[string]any{"tenant": sc.tenant, "scan": sc.cfg.ScanID, "now": sc.now}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// nodeChunk writes one chunk, one statement per label set, and returns
// the counts per subscription.
func (sc *scan) nodeChunk(ctx context.Context, tx neo4j.ManagedTransaction, chunk []nodeRow) (map[string]Diff, error) {
	groups := map[string][]any{}
	var keys []string
	for _, r := range chunk {
		if _, ok := groups[r.labels]; !ok {
			keys = append(keys, r.labels)
		}
		groups[r.labels] = append(groups[r.labels], r.row)
	}
	out := map[string]Diff{}
	for _, k := range keys {
		stmt := nodeStmtDiff
		if !sc.cfg.DryRun {
			set := ""
			if k != "" {
				for l := range strings.SplitSeq(k, ":") {
					set += ":" + quote(l)
				}
			} else {
				set = ":" + LabelBase
			}
			stmt = fmt.Sprintf(nodeStmtWrite, set)
		}
		if err := runDiff(ctx, tx, stmt, sc.params(map[string]any{"rows": groups[k]}), out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runDiff runs a statement returning (sub, added, changed, unchanged)
// records and adds them to out.
func runDiff(ctx context.Context, tx neo4j.ManagedTransaction, stmt string, params map[string]any, out map[string]Diff) error {
	res, err := tx.Run(ctx, stmt, params)
	if err != nil {
		return err
	}
	for res.Next(ctx) {
		rec := res.Record()
		sub, _ := rec.Values[0].(string)
		d := out[sub]
		d.Added += asInt(rec.Values[1])
		d.Changed += asInt(rec.Values[2])
		d.Unchanged += asInt(rec.Values[3])
		out[sub] = d
	}
	return res.Err()
}

func asInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

func statsDelta(a, b Stats) Stats {
	return Stats{APICalls: a.APICalls - b.APICalls, Pages: a.Pages - b.Pages, Throttled: a.Throttled - b.Throttled, ThrottledFor: a.ThrottledFor - b.ThrottledFor}
}

// schemaDone remembers the managers and environments whose scan schema
// was ensured by this process.
var schemaDone sync.Map // *neo4jpool.Manager + env -> struct{}

type schemaKey struct {
	m   *neo4jpool.Manager
	env string
}

// schema creates the key constraint and the prune index if missing (once
// per Manager and environment).
func (sc *scan) schema(ctx context.Context) error {
	key := schemaKey{sc.s.Manager, sc.s.Env}
	if _, ok := schemaDone.Load(key); ok {
		return nil
	}
	for _, stmt := range []string{
		"CREATE CONSTRAINT atg_azure_node_key IF NOT EXISTS FOR (n:" + LabelBase + ") REQUIRE (n.tenant_id, n.id) IS UNIQUE",
		"CREATE INDEX atg_azure_node_scope IF NOT EXISTS FOR (n:" + LabelBase + ") ON (n.tenant_id, n.subscription_id)",
	} {
		_, err := sc.s.Manager.ExecuteWrite(ctx, sc.s.Env, func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, stmt, nil)
			if err != nil {
				return nil, err
			}
			_, err = res.Consume(ctx)
			return nil, err
		})
		if err != nil {
			return fmt.Errorf("azure: create the scan's schema: %w", err)
		}
	}
	schemaDone.Store(key, struct{}{})
	return nil
}
