package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
)

// relKeyProp is the property that tells apart relationships of a type
// between the same two nodes.
func relKeyProp(typ string) string {
	switch typ {
	case RelHasRole:
		return "role_definition_id"
	case RelReferences:
		return "path"
	}
	return ""
}

func relPattern(typ string) string {
	if k := relKeyProp(typ); k != "" {
		return "[r:" + quote(typ) + " {" + k + ": row.key}]"
	}
	return "[r:" + quote(typ) + "]"
}

const relStmtWrite = "UNWIND $rows AS row " +
	"MATCH (a:" + LabelBase + " {tenant_id: $tenant, id: row.from}) " +
	"MATCH (b:" + LabelBase + " {tenant_id: $tenant, id: row.to}) " +
	"MERGE (a)-%s->(b) " +
	"WITH r, row, r.content_hash AS old, r.scan_id AS prev, r.first_seen AS fs " +
	"SET r = row.props, r.first_seen = coalesce(fs, $now) " +
	"RETURN row.sub AS sub, " +
	"sum(CASE WHEN prev = $scan THEN 0 WHEN old IS NULL THEN 1 ELSE 0 END) AS added, " +
	"sum(CASE WHEN prev = $scan OR old IS NULL THEN 0 WHEN old = row.hash THEN 0 ELSE 1 END) AS changed, " +
	"sum(CASE WHEN prev = $scan OR old IS NULL THEN 0 WHEN old = row.hash THEN 1 ELSE 0 END) AS unchanged"

const relStmtDiff = "UNWIND $rows AS row " +
	"OPTIONAL MATCH (:" + LabelBase + " {tenant_id: $tenant, id: row.from})-%s->(:" + LabelBase + " {tenant_id: $tenant, id: row.to}) " +
	"RETURN row.sub AS sub, " +
	"sum(CASE WHEN r IS NULL THEN 1 ELSE 0 END) AS added, " +
	"sum(CASE WHEN r IS NOT NULL AND r.content_hash <> row.hash THEN 1 ELSE 0 END) AS changed, " +
	"sum(CASE WHEN r IS NOT NULL AND r.content_hash = row.hash THEN 1 ELSE 0 END) AS unchanged"

type relRow struct {
	typ string
	row map[string]any
}

// writeRels writes (or diffs) the relationships collected while reading,
// once each, leaving out those with an end that is not a node of this
// scan.
func (sc *scan) writeRels(ctx context.Context) error {
	total := sc.rels.n
	rows := func(yield func(relRow, error) bool) {
		for r, err := range sc.rels.all() {
			if err != nil {
				yield(relRow{}, err)
				return
			}
			_, okFrom := sc.seen[idHash(r.From)]
			_, okTo := sc.seen[idHash(r.To)]
			if !okFrom || !okTo {
				sc.res.RelationshipsSkipped++
				continue
			}
			props := map[string]any{}
			for k, v := range r.Properties {
				props[k] = v
			}
			if k := relKeyProp(r.Type); k != "" {
				props[k] = r.Key
			}
			if r.Type == RelHasRole {
				if name := sc.m.RoleName(r.Key); name != "" {
					props["role_name"] = name
				}
			}
			hash := Hash([]string{r.Type}, props)
			// The stamps go into the same map (after hashing): one SET
			// writes them with the content.
			props["tenant_id"], props["scan_id"], props["subscription_id"], props["last_seen"], props["content_hash"] = sc.tenant, sc.cfg.ScanID, r.Subscription, sc.now, hash
			if r.ResourceGroup != "" {
				props["resource_group"] = r.ResourceGroup
			}
			row := map[string]any{"from": r.From, "to": r.To, "key": r.Key, "props": props, "hash": hash, "sub": r.Subscription}
			if !yield(relRow{typ: r.Type, row: row}, nil) {
				return
			}
		}
	}
	type written struct {
		diff          map[string]Diff
		rows, written int64 // distinct rows sent, relationships written
	}
	done := int64(0)
	// One chunk in the database at a time (relationships of different
	// chunks share nodes), the next one read and mapped meanwhile.
	_, err := neo4jpool.ChunkedWriteSeqConcurrent(ctx, sc.s.Manager, sc.s.Env, rows, sc.size, 1,
		func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []relRow) (written, error) {
			w := written{rows: int64(len(chunk)), diff: map[string]Diff{}}
			groups := map[string][]any{}
			var types []string
			dups := map[string]bool{} // one row per relationship in a statement
			for _, r := range chunk {
				k := r.typ + "\x00" + r.row["from"].(string) + "\x00" + r.row["to"].(string) + "\x00" + r.row["key"].(string)
				if dups[k] {
					w.rows--
					continue
				}
				dups[k] = true
				if _, ok := groups[r.typ]; !ok {
					types = append(types, r.typ)
				}
				groups[r.typ] = append(groups[r.typ], r.row)
			}
			for _, t := range types {
				stmt := fmt.Sprintf(relStmtWrite, relPattern(t))
				if sc.cfg.DryRun {
					stmt = fmt.Sprintf(relStmtDiff, relPattern(t))
				}
				if err := runDiff(ctx, tx, stmt, sc.params(map[string]any{"rows": groups[t]}), w.diff); err != nil {
					return written{}, err
				}
			}
			for _, d := range w.diff {
				w.written += d.Added + d.Changed + d.Unchanged
			}
			return w, nil
		},
		func(w written, n int) {
			done += int64(n)
			for sub, d := range w.diff {
				_, r := sc.counters(sub)
				r.add(d)
			}
			if !sc.cfg.DryRun {
				// Rows whose ends were seen but are not in the database
				// (their node chunk was not written: its read failed).
				sc.res.RelationshipsSkipped += w.rows - w.written
			}
			sc.progress(PhaseEdges, fmt.Sprintf("%d of %d relationships written", done, total), done, total)
		})
	return err
}

// pruneBatch returns the prune batch size.
func (sc *scan) pruneBatch() int {
	if sc.s.PruneBatch > 0 {
		return sc.s.PruneBatch
	}
	return DefaultPruneBatch
}

// scopeFilter is the Cypher condition (on variable v) and parameters of
// the resource group filter.
func (sc *scan) rgFilter(v string) string {
	if len(sc.cfg.ResourceGroups) == 0 {
		return ""
	}
	return " AND " + v + ".resource_group IN $rgs"
}

func (sc *scan) rgs() []string {
	out := make([]string, 0, len(sc.cfg.ResourceGroups))
	for _, g := range sc.cfg.ResourceGroups {
		out = append(out, strings.ToLower(g))
	}
	return out
}

// prune deletes (or counts, in a dry run) the nodes and relationships of
// the completed subscriptions srs (within the resource group filter) that
// this scan did not see: relationships first, then nodes with what is
// still attached, in batches spanning the subscriptions.
func (sc *scan) prune(ctx context.Context, srs []*SubscriptionResult) error {
	if len(srs) == 0 {
		return nil
	}
	bySub := map[string]*SubscriptionResult{}
	ids := make([]string, 0, len(srs))
	for _, sr := range srs {
		bySub[sr.SubscriptionID] = sr
		ids = append(ids, sr.SubscriptionID)
		sr.Pruned = true
	}
	p := sc.params(map[string]any{"subs": ids, "rgs": sc.rgs(), "batch": sc.pruneBatch()})
	// The relationships a subscription's read produced start at one of its
	// nodes or at a tenant-level node (the tenant, principals): following
	// only outgoing relationships from those reads each one once.
	relScope := func(cond string) string {
		part := func(from string) string {
			return "MATCH (a:" + LabelBase + " {tenant_id: $tenant}) WHERE " + from + " MATCH (a)-[r]->() " +
				"WHERE r.tenant_id = $tenant AND r.subscription_id IN $subs" + sc.rgFilter("r") + cond + " RETURN r"
		}
		return "CALL () { " + part("a.subscription_id IN $subs") + " UNION " + part("a.subscription_id IS NULL") + " } "
	}
	nodeScope := "MATCH (n:" + LabelBase + " {tenant_id: $tenant}) WHERE n.subscription_id IN $subs AND NOT n:" + LabelScan + sc.rgFilter("n")
	sc.progress(PhasePrune, fmt.Sprintf("pruning what this scan did not see in %d subscription(s)", len(srs)), 0, 0)
	if sc.cfg.DryRun {
		rels, err := sc.countBySub(ctx, relScope("")+"RETURN r.subscription_id, count(r)", p)
		if err != nil {
			return err
		}
		nodes, err := sc.countBySub(ctx, nodeScope+" RETURN n.subscription_id, count(n)", p)
		if err != nil {
			return err
		}
		for _, sr := range srs {
			sr.Relationships.Removed = max(0, rels[sr.SubscriptionID]-sr.Relationships.Changed-sr.Relationships.Unchanged)
			sr.Nodes.Removed = max(0, nodes[sr.SubscriptionID]-sr.Nodes.Changed-sr.Nodes.Unchanged)
		}
		return nil
	}
	err := sc.deleteLoop(ctx, relScope(" AND r.scan_id <> $scan")+"WITH r LIMIT $batch "+
		"WITH r, r.subscription_id AS sub DELETE r RETURN sub, count(*), 0", p, func(sub string, n, _ int64) {
		if sr := bySub[sub]; sr != nil {
			sr.Relationships.Removed += n
		}
	})
	if err != nil {
		return err
	}
	err = sc.deleteLoop(ctx, nodeScope+" AND n.scan_id <> $scan WITH n LIMIT $batch "+
		"WITH n, n.subscription_id AS sub, COUNT { (n)--() } AS d DETACH DELETE n RETURN sub, count(*), sum(d)", p, func(sub string, n, d int64) {
		if sr := bySub[sub]; sr != nil {
			sr.Nodes.Removed += n
			sr.Relationships.Removed += d
		}
	})
	if err != nil {
		return err
	}
	var nodes, rels int64
	for _, sr := range srs {
		nodes += sr.Nodes.Removed
		rels += sr.Relationships.Removed
	}
	sc.progress(PhasePrune, fmt.Sprintf("%d nodes and %d relationships removed", nodes, rels), nodes, 0)
	return nil
}

// countBySub runs a read query returning (subscription, count) records.
func (sc *scan) countBySub(ctx context.Context, stmt string, p map[string]any) (map[string]int64, error) {
	v, err := sc.s.Manager.ExecuteRead(ctx, sc.s.Env, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, stmt, p)
		if err != nil {
			return nil, err
		}
		out := map[string]int64{}
		for res.Next(ctx) {
			rec := res.Record()
			sub, _ := rec.Values[0].(string)
			out[sub] += asInt(rec.Values[1])
		}
		return out, res.Err()
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]int64), nil
}

// pruneTenant deletes (or counts) tenant-level nodes (principals) and the
// nodes of subscriptions no longer listed, after a complete scan of every
// subscription.
func (sc *scan) pruneTenant(ctx context.Context, subs []string) error {
	p := sc.params(map[string]any{"subs": subs, "batch": sc.pruneBatch()})
	scope := "MATCH (n:" + LabelBase + " {tenant_id: $tenant}) WHERE NOT n:" + LabelScan +
		" AND (n.subscription_id IS NULL OR NOT n.subscription_id IN $subs)"
	tl := &sc.res.TenantLevel
	if sc.cfg.DryRun {
		n, err := sc.count(ctx, scope+" RETURN count(n)", p)
		if err != nil {
			return err
		}
		tl.Nodes.Removed = max(0, n-tl.Nodes.Changed-tl.Nodes.Unchanged)
		return nil
	}
	return sc.deleteLoop(ctx, scope+" AND NOT n:"+LabelTenant+" AND n.scan_id <> $scan WITH n LIMIT $batch "+
		"WITH n, COUNT { (n)--() } AS d DETACH DELETE n RETURN '', count(*), sum(d)", p, func(_ string, n, d int64) {
		tl.Nodes.Removed += n
		tl.Relationships.Removed += d
	})
}

// count runs a read query returning one integer.
func (sc *scan) count(ctx context.Context, stmt string, p map[string]any) (int64, error) {
	v, err := sc.s.Manager.ExecuteRead(ctx, sc.s.Env, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, stmt, p)
		if err != nil {
			return nil, err
		}
		var n int64
		if res.Next(ctx) {
			n = asInt(res.Record().Values[0])
		}
		return n, res.Err()
	})
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// deleteLoop runs a batched delete returning (subscription, count,
// attached) records, one transaction per batch, until a batch deletes
// fewer than the batch size; add receives each record's figures.
func (sc *scan) deleteLoop(ctx context.Context, stmt string, p map[string]any, add func(sub string, n, attached int64)) error {
	batch := int64(sc.pruneBatch())
	for {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		type rec struct {
			sub     string
			n, attd int64
		}
		v, err := sc.s.Manager.ExecuteWrite(ctx, sc.s.Env, func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, stmt, p)
			if err != nil {
				return nil, err
			}
			var out []rec
			for res.Next(ctx) {
				r := res.Record()
				sub, _ := r.Values[0].(string)
				out = append(out, rec{sub, asInt(r.Values[1]), asInt(r.Values[2])})
			}
			return out, res.Err()
		})
		if err != nil {
			return err
		}
		total := int64(0)
		for _, r := range v.([]rec) {
			add(r.sub, r.n, r.attd)
			total += r.n
		}
		if total < batch {
			return nil
		}
	}
}

// writeScanNode records the scan as (:Tenant)-[:HAS_SCAN]->(:Scan).
func (sc *scan) writeScanNode(ctx context.Context) error {
	r := sc.res
	complete := 0
	for _, s := range r.Subscriptions {
		if s.Complete {
			complete++
		}
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	props := map[string]any{
		"started": r.Started, "finished": r.Finished, "complete": r.Complete, "prune": r.Prune,
		"subscriptions": int64(len(r.Subscriptions)), "subscriptions_complete": int64(complete),
		"nodes_added": r.Nodes.Added, "nodes_changed": r.Nodes.Changed, "nodes_unchanged": r.Nodes.Unchanged, "nodes_removed": r.Nodes.Removed,
		"relationships_added": r.Relationships.Added, "relationships_changed": r.Relationships.Changed,
		"relationships_unchanged": r.Relationships.Unchanged, "relationships_removed": r.Relationships.Removed,
		"relationships_skipped": r.RelationshipsSkipped,
		"api_calls":             r.Stats.APICalls, "pages": r.Stats.Pages, "throttled_waits": r.Stats.Throttled,
		"result": string(doc),
	}
	stmt := "MATCH (t:" + LabelBase + " {tenant_id: $tenant, id: $tenant}) " +
		"MERGE (s:" + LabelBase + " {tenant_id: $tenant, id: 'scan/' + $scan}) SET s:" + LabelScan + " SET s += $props, " +
		"s.scan_id = $scan, s.first_seen = $now, s.last_seen = $now " +
		"MERGE (t)-[h:" + RelHasScan + "]->(s) SET h.tenant_id = $tenant, h.scan_id = $scan, h.first_seen = $now, h.last_seen = $now"
	_, err = sc.s.Manager.ExecuteWrite(ctx, sc.s.Env, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, stmt, sc.params(map[string]any{"props": props}))
		if err != nil {
			return nil, err
		}
		_, err = res.Consume(ctx)
		return nil, err
	})
	return err
}
