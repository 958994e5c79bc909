// Package cypher is a small lexer for Cypher statements: enough to find the
// pre-parser options (CYPHER, EXPLAIN, PROFILE), clause keywords outside
// strings and comments, and the string literals to mask before a statement
// is written to a log.
//
// It is not a parser and never decides on its own that a statement is
// harmless: the query route asks Neo4j for the plan (EXPLAIN) and uses this
// package only to prepare that request, to refuse a few statements early,
// and to mask secrets.
//
//	toks, err := cypher.Lex(`ALTER USER bob SET PASSWORD 'hunter2'`)
//	// err == nil
//	masked := cypher.Mask(src, toks, cypher.MaskAllStrings)
//	// masked == `ALTER USER bob SET PASSWORD '***'`
package cypher
