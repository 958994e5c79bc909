package transport

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/cypher"
)

// Neo4j Community has no role-based access control: every database user is
// an administrator. The query route therefore decides, before a statement
// runs, whether it administers the database, and runs such statements only
// for keys with the admin scope. The decision rests on what Neo4j reports:
// the statement is planned with EXPLAIN (in the transaction that then runs
// it) and the plan's operators, procedures and databases are checked. A
// small lexer (internal/cypher) only refuses a few statements early (for
// example USE, which chooses another database, and LOAD CSV) and masks
// literals for the audit log.

// DefaultQueryGuardCacheSize is how many statement classifications the query
// route keeps (least recently used go first).
const DefaultQueryGuardCacheSize = 4096

// dataProcedures may be called by keys without the admin scope: they read
// or write graph data, or describe the schema, and nothing else.
var dataProcedures = map[string]bool{
	"db.labels": true, "db.relationshipTypes": true, "db.propertyKeys": true,
	"db.schema.visualization": true, "db.schema.nodeTypeProperties": true, "db.schema.relTypeProperties": true,
	"db.index.fulltext.queryNodes": true, "db.index.fulltext.queryRelationships": true,
	"db.index.vector.queryNodes": true, "db.index.vector.queryRelationships": true,
	"db.create.setNodeVectorProperty": true, "db.create.setRelationshipVectorProperty": true,
	"db.create.setVectorProperty": true, "db.ping": true,
}

// schemaOperators are the plan operators of schema commands (which also
// report a schema-write statement type).
var schemaOperators = map[string]bool{
	"CreateIndex": true, "DropIndex": true, "CreateConstraint": true, "DropConstraint": true,
}

// queryClass is what the guard concluded about a statement.
type queryClass struct {
	// admin: the statement administers the database (needs the admin scope).
	admin bool
	// reason says why, for the 403 message and the audit record.
	reason string
}

// queryGuard classifies statements and caches the classifications by the
// statement's SHA-256. The zero value is not usable; see newQueryGuard.
type queryGuard struct {
	// database is the configured database ("" means the server's default);
	// operators planned on any other database mean a USE of it.
	database string
	cache    *lru.Cache[[sha256.Size]byte, queryClass]
}

func newQueryGuard(database string, size int) *queryGuard {
	if size <= 0 {
		size = DefaultQueryGuardCacheSize
	}
	c, _ := lru.New[[sha256.Size]byte, queryClass](size) // size > 0: no error
	return &queryGuard{database: database, cache: c}
}

// guardedStatement is a statement being classified.
type guardedStatement struct {
	src    string
	parsed *cypher.Statement // nil when the lexer failed (Neo4j then reports the syntax error)
	sum    [sha256.Size]byte
	class  queryClass
	known  bool // class is final: from the lexer or the cache
}

// prepare looks at src without asking Neo4j: the lexer's early refusals
// and the cache. When the result is not known, plan must be called in the
// statement's transaction.
func (g *queryGuard) prepare(src string) *guardedStatement {
	st := &guardedStatement{src: src, sum: sha256.Sum256([]byte(src))}
	if c, ok := g.cache.Get(st.sum); ok {
		st.class, st.known = c, true
		return st
	}
	parsed, err := cypher.Parse(src)
	if err != nil {
		return st // an unterminated string or comment: EXPLAIN gives Neo4j's own error
	}
	st.parsed = parsed
	switch {
	case parsed.Command() != "":
		st.class = queryClass{admin: true, reason: parsed.Command() + " is an administration or schema command"}
	case hasUse(parsed):
		st.class = queryClass{admin: true, reason: "USE chooses a database; the route runs on its configured one"}
	case parsed.LoadCSV():
		st.class = queryClass{admin: true, reason: "LOAD CSV reads files and URLs from the database server"}
	default:
		return st
	}
	st.known = true
	g.cache.Add(st.sum, st.class)
	return st
}

func hasUse(s *cypher.Statement) bool {
	_, ok := s.Use()
	return ok
}

// plan classifies st by planning it with EXPLAIN in tx, and caches the
// result. A statement Neo4j cannot plan returns Neo4j's error, with
// positions as in the caller's text.
func (g *queryGuard) plan(ctx context.Context, tx neo4j.ManagedTransaction, st *guardedStatement) error {
	text := cypher.ExplainPrefix + st.src
	if st.parsed != nil {
		text = st.parsed.ForExplain()
	}
	res, err := tx.Run(ctx, text, nil)
	if err != nil {
		return unexplainError(err, st.src)
	}
	sum, err := res.Consume(ctx)
	if err != nil {
		return unexplainError(err, st.src)
	}
	st.class = g.classifyPlan(sum.StatementType(), sum.Plan())
	st.known = true
	g.cache.Add(st.sum, st.class)
	return nil
}

// classifyPlan decides from a plan: schema writes, administration and
// SHOW/TERMINATE operators, LOAD CSV, procedures that are not data
// procedures, and operators on another database need admin.
func (g *queryGuard) classifyPlan(typ neo4j.StatementType, plan neo4j.Plan) queryClass {
	if typ == neo4j.StatementTypeSchemaWrite {
		// procedures such as dbms.* report a schema write too: name them
		if c := g.walk(plan); c.admin {
			return c
		}
		return queryClass{admin: true, reason: "schema commands (indexes, constraints) need the admin scope"}
	}
	if plan == nil {
		return queryClass{admin: true, reason: "Neo4j returned no plan for the statement"}
	}
	return g.walk(plan)
}

func (g *queryGuard) walk(p neo4j.Plan) queryClass {
	if p == nil {
		return queryClass{}
	}
	op, db, _ := strings.Cut(p.Operator(), "@")
	switch {
	case db == "system" || (g.database != "" && db != "" && db != g.database):
		return queryClass{admin: true, reason: fmt.Sprintf("the statement runs on database %q", db)}
	case op == "AdministrationCommand" || strings.HasPrefix(op, "Show") || strings.HasPrefix(op, "Terminate"):
		return queryClass{admin: true, reason: "administration commands (" + op + ") need the admin scope"}
	case op == "LoadCSV":
		return queryClass{admin: true, reason: "LOAD CSV reads files and URLs from the database server"}
	case strings.Contains(op, "Procedure"):
		name := procedureName(p.Arguments())
		if !dataProcedures[name] {
			if name == "" {
				name = "a procedure"
			}
			return queryClass{admin: true, reason: "calling " + name + " needs the admin scope"}
		}
	case schemaOperators[op] || strings.HasPrefix(op, "DoNothingIf"):
		return queryClass{admin: true, reason: "schema commands (" + op + ") need the admin scope"}
	}
	for _, c := range p.Children() {
		if cl := g.walk(c); cl.admin {
			return cl
		}
	}
	return queryClass{}
}

// procedureName reads the procedure's name from a ProcedureCall's Details
// ("db.labels() :: (label :: STRING)"); "" when it has none.
func procedureName(args map[string]any) string {
	d, _ := args["Details"].(string)
	name, _, ok := strings.Cut(d, "(")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(strings.TrimSpace(name), "`", "")
}

// positionInMessage matches the position Neo4j puts in syntax errors.
var positionInMessage = regexp.MustCompile(`\(line (\d+), column (\d+) \(offset: (\d+)\)\)`)

// unexplainError returns err with the EXPLAIN the guard put in front of
// src taken out of Neo4j's message: positions, the quoted line and its
// caret are those of the caller's text.
func unexplainError(err error, src string) error {
	var ne *neo4j.Neo4jError
	if !errors.As(err, &ne) {
		return err
	}
	shift := len(cypher.ExplainPrefix)
	onFirstLine := false
	msg := positionInMessage.ReplaceAllStringFunc(ne.Msg, func(m string) string {
		g := positionInMessage.FindStringSubmatch(m)
		line, _ := strconv.Atoi(g[1])
		col, _ := strconv.Atoi(g[2])
		off, _ := strconv.Atoi(g[3])
		if line == 1 {
			onFirstLine = true
			col = max(col-shift, 1)
		}
		return fmt.Sprintf("(line %d, column %d (offset: %d))", line, col, max(off-shift, 0))
	})
	if onFirstLine {
		lines := strings.Split(msg, "\n")
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, `"`+cypher.ExplainPrefix):
				first, _, _ := strings.Cut(src, "\n")
				lines[i] = `"` + first + `"`
			case i > 0 && strings.HasPrefix(lines[i-1], `"`) && strings.HasPrefix(l, strings.Repeat(" ", shift)) && strings.TrimSpace(l) == "^":
				lines[i] = l[shift:]
			}
		}
		msg = strings.Join(lines, "\n")
	}
	out := *ne
	out.Msg = msg
	return &out
}
