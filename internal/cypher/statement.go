package cypher

import "strings"

// Statement is a lexed statement with its pre-parser options (CYPHER
// version and options, EXPLAIN, PROFILE) located.
type Statement struct {
	// Src is the statement text.
	Src string
	// Tokens are Src's tokens.
	Tokens []Token
	// Body indexes the first token of Tokens after the pre-parser options
	// (len(Tokens) when there is none).
	Body int
	// Explain and Profile report the statement's own EXPLAIN / PROFILE.
	Explain, Profile bool
	// prefix holds the indexes of the EXPLAIN/PROFILE tokens.
	prefix []int
}

// Parse lexes src and locates its pre-parser options. Its error is Lex's.
func Parse(src string) (*Statement, error) {
	toks, err := Lex(src)
	if err != nil {
		return nil, err
	}
	s := &Statement{Src: src, Tokens: toks}
	i := 0
	for i < len(toks) {
		t := toks[i]
		switch {
		case t.Is(src, "CYPHER"):
			i++
			if i < len(toks) && toks[i].Kind == Number {
				i++
			}
			// key=value options: runtime=slotted, planner=cost, ...
			for i+2 < len(toks) && toks[i].Kind == Word && toks[i+1].Kind == Symbol && src[toks[i+1].Start] == '=' {
				i += 3
			}
		case t.Is(src, "EXPLAIN"):
			s.Explain = true
			s.prefix = append(s.prefix, i)
			i++
		case t.Is(src, "PROFILE"):
			s.Profile = true
			s.prefix = append(s.prefix, i)
			i++
		default:
			s.Body = i
			return s, nil
		}
	}
	s.Body = len(toks)
	return s, nil
}

// ExplainPrefix is what ForExplain puts in front of a statement.
const ExplainPrefix = "EXPLAIN "

// ForExplain returns the statement with ExplainPrefix in front and its own
// EXPLAIN and PROFILE keywords blanked out, so that Neo4j plans it without
// running it; every byte offset in it is the original's plus
// len(ExplainPrefix).
func (s *Statement) ForExplain() string {
	if len(s.prefix) == 0 {
		return ExplainPrefix + s.Src
	}
	b := []byte(s.Src)
	for _, i := range s.prefix {
		for j := s.Tokens[i].Start; j < s.Tokens[i].End; j++ {
			b[j] = ' '
		}
	}
	return ExplainPrefix + string(b)
}

// Use returns the first USE clause (its keyword token) and true when the
// statement chooses a database: USE at the start of the body, of a
// subquery, or of a UNION part.
func (s *Statement) Use() (Token, bool) {
	for i := s.Body; i < len(s.Tokens); i++ {
		t := s.Tokens[i]
		if !t.Is(s.Src, "USE") || i+1 >= len(s.Tokens) {
			continue
		}
		if next := s.Tokens[i+1]; next.Kind != Word && next.Kind != Quoted && next.Kind != Param {
			continue // a map key ({use: 1}) or an operator
		}
		if i == s.Body {
			return t, true
		}
		prev := s.Tokens[i-1]
		if (prev.Kind == Symbol && (s.Src[prev.Start] == '{' || s.Src[prev.Start] == ';')) || prev.Is(s.Src, "UNION") || prev.Is(s.Src, "ALL") || prev.Is(s.Src, "DISTINCT") {
			return t, true
		}
	}
	return Token{}, false
}

// LoadCSV reports whether the statement has a LOAD CSV clause.
func (s *Statement) LoadCSV() bool {
	for i := s.Body; i+1 < len(s.Tokens); i++ {
		if s.Tokens[i].Is(s.Src, "LOAD") && s.Tokens[i+1].Is(s.Src, "CSV") {
			return true
		}
	}
	return false
}

// adminFirstWords start an administration command wherever they begin a
// statement: Cypher has no data clause of these names.
var adminFirstWords = map[string]bool{
	"SHOW": true, "TERMINATE": true, "GRANT": true, "DENY": true, "REVOKE": true,
	"START": true, "STOP": true, "ENABLE": true, "ALTER": true, "RENAME": true,
	"DEALLOCATE": true, "REALLOCATE": true, "DRYRUN": true, "DROP": true,
}

// adminAfterCreate follow CREATE in administration and schema commands
// (CREATE (n) and CREATE p = (...) are data).
var adminAfterCreate = map[string]bool{
	"USER": true, "ROLE": true, "DATABASE": true, "COMPOSITE": true, "ALIAS": true,
	"INDEX": true, "CONSTRAINT": true, "RANGE": true, "TEXT": true, "POINT": true,
	"LOOKUP": true, "FULLTEXT": true, "VECTOR": true, "BTREE": true, "SERVER": true,
	"OR": true,
}

// Command returns the leading keyword of an administration or schema
// command ("SHOW", "CREATE USER", ...) when the statement's body (after a
// USE clause, if any) starts with one, and "" otherwise. It is a fast,
// conservative first look; the plan decides the rest.
func (s *Statement) Command() string {
	i := s.Body
	if i < len(s.Tokens) && s.Tokens[i].Is(s.Src, "USE") && i+1 < len(s.Tokens) {
		i += 2
	}
	if i >= len(s.Tokens) || s.Tokens[i].Kind != Word {
		return ""
	}
	w := strings.ToUpper(s.Tokens[i].Text(s.Src))
	if adminFirstWords[w] {
		return w
	}
	if w == "CREATE" && i+1 < len(s.Tokens) && s.Tokens[i+1].Kind == Word {
		if next := strings.ToUpper(s.Tokens[i+1].Text(s.Src)); adminAfterCreate[next] {
			return w + " " + next
		}
	}
	return ""
}
