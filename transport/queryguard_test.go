package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/cypher"
	"github.com/atgraph/atg/internal/neo4jtest"
)

// corpusEntry is one statement of a testdata/queryguard corpus.
type corpusEntry struct {
	text  string
	write bool
}

// readCorpus reads testdata/queryguard/name (see the files' headers for
// the format), replacing each placeholder with its value.
func readCorpus(t *testing.T, name string, replace ...string) []corpusEntry {
	t.Helper()
	b, err := os.ReadFile("testdata/queryguard/" + name)
	must(t, err)
	var out []corpusEntry
	for _, block := range strings.Split(string(b), "\n---\n") {
		var lines []string
		e := corpusEntry{}
		for _, l := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(l, "# "):
			case l == "@write":
				e.write = true
			default:
				lines = append(lines, l)
			}
		}
		e.text = strings.TrimSpace(strings.Join(lines, "\n"))
		if e.text == "" {
			continue
		}
		e.text = strings.NewReplacer(replace...).Replace(e.text)
		out = append(out, e)
	}
	return out
}

// guardName is a unique lower-case name for users, indexes and constraints.
func guardName(t *testing.T) string {
	return "atg_guard_" + strings.ToLower(neo4jtest.Unique(t)[len(neo4jtest.Unique(t))-8:])
}

// dropGuardLeftovers removes what refused.cypher would create had the
// guard failed, so that a failing run leaves the shared database clean.
func dropGuardLeftovers(t *testing.T, f *fixture, name string) {
	t.Cleanup(func() {
		d := neo4jtest.Driver(t, f.settings)
		ctx := context.Background()
		for _, q := range []string{"DROP USER " + name + " IF EXISTS", "DROP INDEX " + name + " IF EXISTS", "DROP CONSTRAINT " + name + " IF EXISTS"} {
			if _, err := neo4j.ExecuteQuery(ctx, d, q, nil, neo4j.EagerResultTransformer); err != nil {
				t.Errorf("cleanup %q: %v", q, err)
			}
		}
	})
}

func TestQueryGuardRefusesAdministration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	name := guardName(t)
	dropGuardLeftovers(t, f, name)
	corpus := readCorpus(t, "refused.cypher", "{{U}}", name)
	if len(corpus) < 60 {
		t.Fatalf("the refused corpus has %d statements, want at least 60", len(corpus))
	}
	for _, e := range corpus {
		for _, who := range []struct{ key, mode string }{{"reader", "read"}, {"writer", "read"}, {"writer", "write"}} {
			resp := f.do("POST", "/api/v1/query", who.key, map[string]any{"query": e.text, "mode": who.mode})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s key, mode %s: %q answered %d %s, want 403", who.key, who.mode, e.text, resp.StatusCode, readBody(resp))
				continue
			}
			if er := wantError(t, resp, 403, CodeForbidden); !strings.Contains(er.Message, "'admin' scope") {
				t.Errorf("%q: refusal does not name the scope: %q", e.text, er.Message)
			}
		}
	}
	// Nothing ran: the user and the index the corpus names do not exist.
	d := neo4jtest.Driver(t, f.settings)
	res, err := neo4j.ExecuteQuery(context.Background(), d, "SHOW USERS YIELD user WHERE user = $u RETURN user", map[string]any{"u": name}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase("system"))
	must(t, err)
	if len(res.Records) != 0 {
		t.Errorf("user %s was created through the guard", name)
	}
	res, err = neo4j.ExecuteQuery(context.Background(), d, "SHOW INDEXES YIELD name WHERE name = $u RETURN name", map[string]any{"u": name}, neo4j.EagerResultTransformer)
	must(t, err)
	if len(res.Records) != 0 {
		t.Errorf("index %s was created through the guard", name)
	}
}

// TestQueryGuardPlanDecides shows that the decision rests on Neo4j's plan:
// with the lexer's early refusals left out, the plan alone refuses every
// statement of the corpus that Neo4j can plan.
func TestQueryGuardPlanDecides(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	ctx := context.Background()
	g := newQueryGuard(s.Database, 0)
	name := guardName(t)
	planned := 0
	for _, e := range readCorpus(t, "refused.cypher", "{{U}}", name) {
		parsed, err := cypher.Parse(e.text)
		must(t, err)
		st := &guardedStatement{src: e.text, parsed: parsed}
		session := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeRead, DatabaseName: s.Database})
		_, err = session.ExecuteRead(ctx, func(tx neo4j.ManagedTransaction) (any, error) { return nil, g.plan(ctx, tx, st) })
		_ = session.Close(ctx)
		var ne *neo4j.Neo4jError
		switch {
		case errors.As(err, &ne) && strings.HasPrefix(ne.Code, "Neo.ClientError."):
			t.Logf("Neo4j cannot plan %q (%s): the lexer refuses it", e.text, ne.Code)
			if p, _ := cypher.Parse(e.text); p.Command() == "" && !hasUse(p) && !p.LoadCSV() {
				t.Errorf("%q: neither the plan nor the lexer refuses it", e.text)
			}
		case err != nil:
			t.Fatalf("%q: %v", e.text, err)
		case !st.class.admin && hasUse(parsed):
			t.Logf("%q uses the configured database: the plan allows it, the lexer refuses every USE", e.text)
		case !st.class.admin:
			t.Errorf("the plan of %q was judged harmless", e.text)
		default:
			planned++
		}
	}
	if planned < 60 {
		t.Errorf("the plan decided %d statements, want at least 60", planned)
	}
}

func TestQueryGuardAllowsOrdinaryStatements(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, f.settings), f.settings, label)
	for _, e := range readCorpus(t, "allowed.cypher", "{{L}}", label) {
		key, mode := "reader", "read"
		if e.write {
			key, mode = "writer", "write"
		}
		if resp := f.do("POST", "/api/v1/query", key, map[string]any{"query": e.text, "mode": mode}); resp.StatusCode != 200 {
			t.Errorf("%s: %q answered %d %s", key, e.text, resp.StatusCode, readBody(resp))
		}
	}
	// The guard's verdicts are cached: the corpus again adds nothing.
	n := f.api.guard.cache.Len()
	for _, e := range readCorpus(t, "allowed.cypher", "{{L}}", label) {
		if !e.write {
			_ = f.do("POST", "/api/v1/query", "reader", map[string]any{"query": e.text})
		}
	}
	if got := f.api.guard.cache.Len(); got != n || n == 0 {
		t.Errorf("cache held %d classifications, then %d", n, got)
	}
}

func TestQueryGuardLetsAdminKeysAdminister(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	name := guardName(t)
	dropGuardLeftovers(t, f, name)
	for _, q := range []struct{ query, mode string }{
		{"SHOW USERS", "read"},
		{"CALL dbms.components() YIELD name RETURN name", "read"},
		{"SHOW TRANSACTIONS YIELD transactionId RETURN count(*) AS n", "read"},
		{"CREATE INDEX " + name + " IF NOT EXISTS FOR (n:AtgGuardLabel) ON (n.x)", "write"},
		{"DROP INDEX " + name + " IF EXISTS", "write"},
		{"MATCH (n:AtgGuardNoSuchLabel) RETURN n", "read"},
	} {
		if resp := f.do("POST", "/api/v1/query", "admin", map[string]any{"query": q.query, "mode": q.mode}); resp.StatusCode != 200 {
			t.Errorf("admin: %q answered %d %s", q.query, resp.StatusCode, readBody(resp))
		}
	}
}

func TestQueryAuditMasksSecrets(t *testing.T) {
	t.Parallel()
	var auditBuf, logBuf syncBuffer
	f := newFixture(t, fixtureOpts{db: true, audit: &auditBuf, log: &logBuf})
	name := guardName(t)
	dropGuardLeftovers(t, f, name)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, f.settings), f.settings, label)
	secrets := []string{"Atg-Audit-Secret-1", "Atg-Audit-Secret-2", "Atg-Audit-Secret-3", "Atg-Audit-Secret-4"}
	for _, q := range []struct {
		key, mode, query string
		status           int
	}{
		{"admin", "write", "ALTER USER " + name + " IF EXISTS SET PASSWORD '" + secrets[0] + "'", 200},
		{"writer", "write", "CREATE USER " + name + " SET PASSWORD '" + secrets[1] + "'", 403},
		{"reader", "read", "ALTER USER " + name + " SET PASSWORD \"" + secrets[2] + "\"", 403},
		{"writer", "write", "CREATE (n:" + label + " {note: 'kept'}) SET n.password = '" + secrets[3] + "' RETURN n.note", 200},
	} {
		if resp := f.do("POST", "/api/v1/query", q.key, map[string]any{"query": q.query, "mode": q.mode}); resp.StatusCode != q.status {
			t.Fatalf("%s: %q answered %d %s", q.key, q.query, resp.StatusCode, readBody(resp))
		}
	}
	audited, logged := auditBuf.String(), logBuf.String()
	for _, s := range secrets {
		if strings.Contains(audited, s) || strings.Contains(logged, s) {
			t.Errorf("secret %s reached the audit log or the log:\n%s\n%s", s, audited, logged)
		}
	}
	for _, want := range []string{`"event":"query_admin"`, `"event":"query_refused"`, `"event":"query_write"`, `SET PASSWORD '***'`, `{note: 'kept'}`} {
		if !strings.Contains(audited, want) {
			t.Errorf("audit lacks %s:\n%s", want, audited)
		}
	}
}

// TestQueryErrorPositionsAreTheCallers checks that a statement the guard
// plans first reports Neo4j's error as if it had run as written.
func TestQueryErrorPositionsAreTheCallers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	d := neo4jtest.Driver(t, f.settings)
	for _, q := range []string{"RETRUN 1", "MATCH (n)\nRETURN n\n  WHERE x", "RETURN 1 +", "PROFILE RETURN $x AS y UNION RETURN 1 AS z"} {
		_, direct := neo4j.ExecuteQuery(context.Background(), d, q, nil, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(f.settings.Database))
		var ne *neo4j.Neo4jError
		if !errors.As(direct, &ne) {
			t.Fatalf("%q ran: %v", q, direct)
		}
		e := wantError(t, f.do("POST", "/api/v1/query", "reader", map[string]any{"query": q}), 400, CodeQuery)
		if e.Message != ne.Msg {
			t.Errorf("%q:\n got %q\nwant %q", q, e.Message, ne.Msg)
		}
	}
}

func TestQueryTimeoutsAreNever5xx(t *testing.T) {
	t.Parallel()
	// A retry time of 1 s, shorter than the queries' timeouts: the query
	// route must neither cut them at the retry time nor answer 5xx.
	f := newFixture(t, fixtureOpts{db: true, retryTime: time.Second})
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, f.settings)
	neo4jtest.CleanupLabel(t, d, f.settings, label)
	ctx := context.Background()
	_, err := neo4j.ExecuteQuery(ctx, d, "CREATE (:"+label+" {id: 1})", nil, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(f.settings.Database))
	must(t, err)
	// Hold the node's write lock for the whole test.
	session := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: f.settings.Database})
	defer session.Close(ctx)
	tx, err := session.BeginTransaction(ctx)
	must(t, err)
	defer tx.Close(ctx)
	res, err := tx.Run(ctx, "MATCH (n:"+label+") SET n.locked = true", nil)
	must(t, err)
	_, err = res.Consume(ctx)
	must(t, err)

	for _, tc := range []struct {
		name, mode, query string
		timeoutMS         int64
	}{
		{"write waiting on a lock", "write", "MATCH (n:" + label + ") SET n.x = 1 RETURN n.x", 3000},
		{"read busy computing", "read", "UNWIND range(1, 2000000000) AS x WITH x WHERE x < 0 RETURN count(x)", 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp := f.do("POST", "/api/v1/query", "writer", map[string]any{"query": tc.query, "mode": tc.mode, "timeout_ms": tc.timeoutMS})
			took := time.Since(start)
			e := wantError(t, resp, 400, CodeQuery)
			if !strings.Contains(e.Message, fmt.Sprintf("%d ms", tc.timeoutMS)) || e.Details["timeout_ms"] != float64(tc.timeoutMS) {
				t.Errorf("timeout answer %+v", e)
			}
			if took < time.Duration(tc.timeoutMS)*time.Millisecond-200*time.Millisecond {
				t.Errorf("answered after %s: cut before its %d ms timeout", took, tc.timeoutMS)
			}
		})
	}
}

func TestQueryMaxBytes(t *testing.T) {
	t.Parallel()
	const maxBytes = 1 << 20
	f := newFixture(t, fixtureOpts{db: true, queryMaxBytes: maxBytes})
	big := strings.Repeat("x", 200_000)
	q := func(query string) (*http.Response, []byte) {
		resp := f.do("POST", "/api/v1/query", "reader", map[string]any{"query": query, "parameters": map[string]any{"s": big}})
		b := []byte(readBody(resp))
		return resp, b
	}
	resp, body := q("UNWIND range(1, 20) AS i RETURN i, $s AS s")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body[:min(len(body), 500)])
	}
	qr := decodeBytes[QueryResponse](t, body)
	if !qr.Truncated || qr.TruncatedReason != TruncatedMaxBytes || qr.RowCount != 5 || len(qr.Rows) != 5 {
		t.Errorf("truncated %v (%q), %d rows, want 5 rows cut by max_bytes", qr.Truncated, qr.TruncatedReason, qr.RowCount)
	}
	if len(body) > maxBytes+1024 {
		t.Errorf("response of %d bytes for a cap of %d", len(body), maxBytes)
	}
	if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(body))
	}
	// A single row above the cap: no rows, and the reason.
	_, body = q("RETURN $s + $s + $s + $s + $s + $s AS s")
	if qr := decodeBytes[QueryResponse](t, body); qr.RowCount != 0 || !qr.Truncated || qr.TruncatedReason != TruncatedMaxBytes {
		t.Errorf("one huge row: %+v", qr)
	}
	// Under the cap nothing changes.
	_, body = q("UNWIND range(1, 3) AS i RETURN i, $s AS s")
	if qr := decodeBytes[QueryResponse](t, body); qr.RowCount != 3 || qr.Truncated || qr.TruncatedReason != "" {
		t.Errorf("under the cap: %d rows, truncated %v %q", qr.RowCount, qr.Truncated, qr.TruncatedReason)
	}
	// Embedded callers get the same answer.
	er, err := RunQuery(context.Background(), f.api.opts.DB, "dev", QueryRequest{Query: "UNWIND range(1, 20) AS i RETURN i, $s AS s", Parameters: map[string]any{"s": big}}, QueryLimits{MaxBytes: maxBytes})
	must(t, err)
	if er.RowCount != 5 || er.TruncatedReason != TruncatedMaxBytes || len(er.Rows) != 5 {
		t.Errorf("RunQuery: %d rows, %q", er.RowCount, er.TruncatedReason)
	}
}

func decodeBytes[T any](t *testing.T, b []byte) T {
	t.Helper()
	return decode[T](t, &http.Response{Body: io.NopCloser(bytes.NewReader(b))})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestQueryErrorPastTheTimeoutIsATimeout(t *testing.T) {
	t.Parallel()
	cut := &neo4j.ConnectivityError{Inner: errors.New("read tcp: i/o timeout")}
	for _, tc := range []struct {
		took time.Duration
		code string
	}{
		{took: 3 * time.Second, code: CodeQuery},
		{took: 500 * time.Millisecond, code: CodeUnavailable},
	} {
		var e *Error
		if err := queryError(context.Background(), cut, 2*time.Second, tc.took); !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("after %s: %v, want %s", tc.took, err, tc.code)
		}
	}
}
