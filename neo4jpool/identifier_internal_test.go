package neo4jpool

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// isIdentifier must agree with IdentifierPattern exactly.
func TestIsIdentifierMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(IdentifierPattern)
	alphabet := "aZ_09`) /-.:é\n\x00"
	r := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		if got, want := isIdentifier(s), re.MatchString(s); got != want {
			t.Errorf("isIdentifier(%q) = %v, pattern says %v", s, got, want)
		}
	}
	for _, s := range []string{"", "a", "_", "1", "a1", strings.Repeat("a", 64), strings.Repeat("a", 65), "Resource`) DETACH DELETE n //"} {
		check(s)
	}
	for range 20000 {
		n := r.IntN(8)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		check(b.String())
	}
}

func FuzzIsIdentifier(f *testing.F) {
	re := regexp.MustCompile(IdentifierPattern)
	f.Add("Resource")
	f.Add("Resource`) DETACH DELETE n //")
	f.Fuzz(func(t *testing.T, s string) {
		if isIdentifier(s) != re.MatchString(s) {
			t.Errorf("disagree on %q", s)
		}
	})
}

// labelKey gives a label set's key: sorted, deduplicated, without the base
// label.
func TestLabelKey(t *testing.T) {
	cases := []struct {
		labels []string
		key    string
	}{
		{nil, ""},
		{[]string{"GraphNode"}, ""},
		{[]string{"A"}, "A"},
		{[]string{"B", "A", "B", "GraphNode"}, "A:B"},
		{[]string{"A", "B"}, "A:B"},
		{[]string{"GraphNode", "A", "A"}, "A"},
	}
	for _, c := range cases {
		key, _ := labelKey(nil, nil, c.labels, "GraphNode")
		if string(key) != c.key {
			t.Errorf("%v: key %q, want %q", c.labels, key, c.key)
		}
	}
}
