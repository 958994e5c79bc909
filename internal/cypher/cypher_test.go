package cypher

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func texts(src string, toks []Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Text(src)
	}
	return out
}

func TestLex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want []string
	}{
		{"MATCH (n) RETURN n", []string{"MATCH", "(", "n", ")", "RETURN", "n"}},
		{"RETURN 'a // not a comment' // a comment\n, 1", []string{"RETURN", "'a // not a comment'", ",", "1"}},
		{"RETURN /* SHOW USERS */ 1", []string{"RETURN", "1"}},
		{`RETURN "it\"s", 'it\'s'`, []string{"RETURN", `"it\"s"`, ",", `'it\'s'`}},
		{"MATCH (`a``b`) RETURN $p, $`q r`, $0", []string{"MATCH", "(", "`a``b`", ")", "RETURN", "$p", ",", "$`q r`", ",", "$0"}},
		{"RETURN 1.5e-3, 0x1F, 2..3", []string{"RETURN", "1.5e-3", ",", "0x1F", ",", "2", ".", ".", "3"}},
		{"RETURN été, n.x", []string{"RETURN", "été", ",", "n", ".", "x"}},
		{"// only a comment", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			toks, err := Lex(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, texts(tt.src, toks)); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLexUnterminated(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"RETURN 'abc", `RETURN "a\"`, "RETURN /* x", "MATCH (`x) RETURN 1", "RETURN $`p"} {
		_, err := Lex(src)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrUnterminated) {
			t.Errorf("Lex(%q) = %v, want an unterminated *SyntaxError", src, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src              string
		body             string // text of the first body token
		explain, profile bool
		command          string
		use, loadCSV     bool
	}{
		{src: "MATCH (n) RETURN n", body: "MATCH"},
		{src: "CYPHER 5 runtime=slotted EXPLAIN MATCH (n) RETURN n", body: "MATCH", explain: true},
		{src: "profile cypher 5 show users", body: "show", profile: true, command: "SHOW"},
		{src: "/* c */ Show Transactions", body: "Show", command: "SHOW"},
		{src: "create user bob set password 'x'", body: "create", command: "CREATE USER"},
		{src: "CREATE OR REPLACE DATABASE x", body: "CREATE", command: "CREATE OR"},
		{src: "CREATE (n:User) RETURN n", body: "CREATE"},
		{src: "CREATE INDEX i FOR (n:X) ON (n.y)", body: "CREATE", command: "CREATE INDEX"},
		{src: "DROP CONSTRAINT c", body: "DROP", command: "DROP"},
		{src: "USE system SHOW USERS", body: "USE", command: "SHOW", use: true},
		{src: "MATCH (n) CALL { USE neo4j RETURN 1 AS x } RETURN x", body: "MATCH", use: true},
		{src: "RETURN 1 AS x UNION ALL USE neo4j RETURN 2 AS x", body: "RETURN", use: true},
		{src: "MATCH (use) RETURN use, {use: 1}, n.use", body: "MATCH"},
		{src: "load csv from 'file:///x' as r return r", body: "load", loadCSV: true},
		{src: "RETURN 'LOAD CSV' /* LOAD CSV */", body: "RETURN"},
		{src: "EXPLAIN", explain: true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			s, err := Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			body := ""
			if s.Body < len(s.Tokens) {
				body = s.Tokens[s.Body].Text(s.Src)
			}
			_, use := s.Use()
			got := []any{body, s.Explain, s.Profile, s.Command(), use, s.LoadCSV()}
			want := []any{tt.body, tt.explain, tt.profile, tt.command, tt.use, tt.loadCSV}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body, explain, profile, command, use, loadCSV (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForExplain(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"MATCH (n) RETURN n":                  "EXPLAIN MATCH (n) RETURN n",
		"PROFILE MATCH (n) RETURN n":          "EXPLAIN         MATCH (n) RETURN n",
		"CYPHER 5 explain RETURN 1":           "EXPLAIN CYPHER 5         RETURN 1",
		"RETURN 'PROFILE' AS profile":         "EXPLAIN RETURN 'PROFILE' AS profile",
		"EXPLAIN PROFILE RETURN 1 // comment": "EXPLAIN                 RETURN 1 // comment",
	}
	for src, want := range tests {
		s, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		got := s.ForExplain()
		if got != want {
			t.Errorf("ForExplain(%q) = %q, want %q", src, got, want)
		}
		if len(got) != len(src)+len(ExplainPrefix) {
			t.Errorf("ForExplain(%q) shifts offsets by %d", src, len(got)-len(src))
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src    string
		policy MaskPolicy
		want   string
	}{
		{`ALTER USER neo4j SET PASSWORD 'hunter2'`, MaskPasswords, `ALTER USER neo4j SET PASSWORD '***'`},
		{`ALTER CURRENT USER SET PASSWORD FROM "old" TO "new"`, MaskPasswords, `ALTER CURRENT USER SET PASSWORD FROM "***" TO "***"`},
		{`CREATE (n {name: 'x'}) RETURN n`, MaskPasswords, `CREATE (n {name: 'x'}) RETURN n`},
		{`CREATE USER bob SET PASSWORD 'it\'s' CHANGE NOT REQUIRED`, MaskAllStrings, `CREATE USER bob SET PASSWORD '***' CHANGE NOT REQUIRED`},
		{`TERMINATE TRANSACTIONS "neo4j-transaction-7"`, MaskAllStrings, `TERMINATE TRANSACTIONS "***"`},
		{`ALTER USER bob SET PASSWORD 'unterminated`, MaskPasswords, `ALTER USER bob SET PASSWORD ***`},
		{`RETURN 1 /* set password 'x'`, MaskAllStrings, `RETURN 1 ***`},
		{"SET PASSWORD $p", MaskPasswords, "SET PASSWORD $p"},
	}
	for _, tt := range tests {
		if got := Mask(tt.src, tt.policy); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}

// FuzzLex checks that Lex never panics, that its tokens are ordered and in
// bounds, and that Mask(MaskAllStrings) leaves no string literal behind.
func FuzzLex(f *testing.F) {
	for _, s := range []string{
		"MATCH (n) RETURN n", "ALTER USER x SET PASSWORD 'p'", "RETURN 'a\\'b' // c\n", "/* x */ `a``b` $`p`",
		"CYPHER 5 runtime=slotted PROFILE RETURN 1.5e-3", "RETURN \"", "é'", "RETURN 0x", "$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		toks, err := Lex(src)
		prev := 0
		for _, tk := range toks {
			if tk.Start < prev || tk.End <= tk.Start || tk.End > len(src) {
				t.Fatalf("token %+v out of order or bounds (prev end %d, len %d)", tk, prev, len(src))
			}
			prev = tk.End
		}
		masked := Mask(src, MaskAllStrings)
		mt, merr := Lex(masked)
		if err == nil && merr != nil {
			t.Fatalf("Mask(%q) = %q, which no longer lexes: %v", src, masked, merr)
		}
		for _, tk := range mt {
			if tk.Kind == String {
				if txt := tk.Text(masked); len(txt) != len(Masked)+2 || !strings.Contains(txt, Masked) {
					t.Fatalf("Mask(%q) = %q left literal %q", src, masked, txt)
				}
			}
		}
		if s, err := Parse(src); err == nil && len(s.ForExplain()) != len(src)+len(ExplainPrefix) {
			t.Fatalf("ForExplain(%q) changed offsets", src)
		}
	})
}
