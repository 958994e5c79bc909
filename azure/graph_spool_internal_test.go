package azure

import (
	"os"
	"slices"
	"testing"
)

// TestRelSpool keeps relationships in a temporary file (deleted by close)
// or, without one, in memory, and gives them back in order either way.
func TestRelSpool(t *testing.T) {
	t.Parallel()
	rels := []Relationship{
		{Type: RelHasRole, From: "p", To: "/subscriptions/s", Key: "/r", Properties: map[string]any{"principal_type": "User"}, Subscription: "s"},
		{Type: RelReferences, From: "/a", To: "/b", Key: "properties.x.id", Properties: map[string]any{"path": "properties.x.id"}, Subscription: "s", ResourceGroup: "rg"},
	}
	for _, s := range []*relSpool{newRelSpool(), {}} {
		s.add(rels...)
		var got []Relationship
		for r, err := range s.all() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		if len(got) != 2 || s.n != 2 || !slices.EqualFunc(got, rels, func(a, b Relationship) bool {
			return a.Type == b.Type && a.From == b.From && a.To == b.To && a.Key == b.Key && a.ResourceGroup == b.ResourceGroup &&
				a.Properties[relKeyProp(a.Type)] == b.Properties[relKeyProp(b.Type)] && a.Properties["principal_type"] == b.Properties["principal_type"]
		}) {
			t.Errorf("file=%v: got %+v", s.f != nil, got)
		}
		var name string
		if s.f != nil {
			name = s.f.Name()
		}
		s.close()
		if name != "" {
			if _, err := os.Stat(name); !os.IsNotExist(err) {
				t.Errorf("spool file %s left behind: %v", name, err)
			}
		}
	}
}
