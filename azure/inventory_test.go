package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atgraph/atg/azure/azuretest"
)

func countRows(t *testing.T, src Source, table Table, sub string) int {
	t.Helper()
	n := 0
	for row, err := range src.Rows(context.Background(), table, sub) {
		if err != nil {
			t.Fatal(err)
		}
		if TableOf(row) != table {
			t.Fatalf("row %v of table %s yielded for %s", row["id"], TableOf(row), table)
		}
		n++
	}
	return n
}

func TestInventorySampleAzResourceList(t *testing.T) {
	t.Parallel()
	inv := SampleInventory()
	if n := countRows(t, inv, TableResources, ""); n != 42 {
		t.Fatalf("%d resources, want 42", n)
	}
	if n := countRows(t, inv, TableResourceContainers, ""); n != 0 {
		t.Fatalf("%d containers, want 0", n)
	}
	a := countRows(t, inv, TableResources, "9b2e6f4c-1d3a-4e8b-a7c5-2f0d9e8b1c34")
	b := countRows(t, inv, TableResources, "4F8A2C1E-"+strings.ToUpper(findSub(t, inv, "4f8a2c1e")[9:]))
	if a == 0 || b == 0 || a+b != 42 {
		t.Fatalf("per subscription %d + %d, want 42", a, b)
	}
	for row, err := range inv.Rows(context.Background(), TableResources, "") {
		if err != nil {
			t.Fatal(err)
		}
		if row["subscriptionId"] == nil || row["resourceGroup"] == nil {
			t.Fatalf("row without subscriptionId/resourceGroup: %v", row["id"])
		}
		if sku, ok := row["sku"].(map[string]any); ok && sku["capacity"] != nil {
			if _, ok := sku["capacity"].(json.Number); !ok {
				t.Fatalf("sku.capacity %T, want json.Number", sku["capacity"])
			}
		}
	}
}

func findSub(t *testing.T, inv *Inventory, prefix string) string {
	for row, err := range inv.Rows(context.Background(), TableResources, "") {
		if err != nil {
			t.Fatal(err)
		}
		if s := row["subscriptionId"].(string); strings.HasPrefix(s, prefix) {
			return s
		}
	}
	t.Fatalf("no subscription %s", prefix)
	return ""
}

// TestInventoryAzGraphQuery writes the fake tenant in each shape `az graph
// query -o json` prints and reads it back: counts per table and
// subscription match, whatever file holds which table.
func TestInventoryAzGraphQuery(t *testing.T) {
	t.Parallel()
	tn := azuretest.NewTenant(5, 120, 2)
	dir := t.TempDir()
	dump := func(name, table string, wrap func([]map[string]any) any) string {
		var rows []map[string]any
		tn.Rows(table, nil, 0, 1<<30, func(r map[string]any) bool { rows = append(rows, r); return true })
		b, err := json.MarshalIndent(wrap(rows), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := []string{
		dump("resources.json", azuretest.TableResources, func(r []map[string]any) any {
			return map[string]any{"count": len(r), "data": r, "skip_token": nil, "total_records": len(r)}
		}),
		dump("containers.json", azuretest.TableResourceContainers, func(r []map[string]any) any { return map[string]any{"data": r} }),
		dump("auth.json", azuretest.TableAuthorizationResources, func(r []map[string]any) any { return r }),
	}
	inv, err := NewInventory(files...)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []Table{TableResources, TableResourceContainers, TableAuthorizationResources} {
		if got, want := countRows(t, inv, table, ""), tn.Counts()[string(table)]; got != want {
			t.Fatalf("%s: %d rows, want %d", table, got, want)
		}
		for _, sub := range tn.Subscriptions {
			if got, want := countRows(t, inv, table, sub), tn.CountsFor(sub)[string(table)]; got != want {
				t.Fatalf("%s/%s: %d rows, want %d", table, sub, got, want)
			}
		}
	}
	if inv.Stats().APICalls != 0 || inv.Stats().Pages == 0 {
		t.Fatalf("stats %+v", inv.Stats())
	}
}

func TestInventoryErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		item       int
	}{
		{"not JSON", "hello", -1},
		{"empty", "", -1},
		{"a number", "42", -1},
		{"object without data", `{"value": []}`, -1},
		{"data not an array", `{"data": {"columns": [], "rows": []}}`, -1},
		{"data twice", `{"data": [], "data": []}`, -1},
		{"element not an object", `[{"id": "/subscriptions/s", "type": "t"}, 7]`, 1},
		{"element without id", `[{"name": "x", "type": "t"}]`, 0},
		{"element without type", `[{"id": "/subscriptions/s/resourceGroups/g"}]`, 0},
		{"truncated", `[{"id": "/subscriptions/s", "type": "t"}`, -1},
		{"trailing data", `[] []`, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "inv.json")
			if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewInventory(p)
			var ie *InventoryError
			if !errors.Is(err, ErrInventory) || !errors.As(err, &ie) || ie.File != p || !strings.Contains(err.Error(), p) {
				t.Fatalf("err %v, want an InventoryError naming %s", err, p)
			}
			if tc.item >= 0 && ie.Item != tc.item {
				t.Fatalf("item %d, want %d (%v)", ie.Item, tc.item, err)
			}
		})
	}
	if _, err := NewInventory(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, ErrInventory) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := NewInventory(); !errors.Is(err, ErrInventory) {
		t.Fatalf("no files: %v", err)
	}
}

func FuzzParseInventory(f *testing.F) {
	f.Add(sampleInventory[:2000])
	f.Add([]byte(`{"count":1,"data":[{"id":"/subscriptions/s/resourceGroups/g/providers/p/t/n","type":"p/t","properties":{"n":1e400}}],"skip_token":null}`))
	f.Add([]byte(`[{"id":"/subscriptions/s","type":"microsoft.resources/subscriptions"}]`))
	f.Add([]byte(`{"x":{"data":[]},"data":[]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := ParseInventory(bytes.NewReader(data), func(row Row) bool {
			id, ok := row["id"].(string)
			if _, tok := row["type"].(string); !ok || !tok || !strings.HasPrefix(id, "/") {
				t.Fatalf("row without id/type yielded: %v", row)
			}
			parts := strings.Split(strings.Trim(id, "/"), "/")
			if len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
				if s, _ := row["subscriptionId"].(string); s == "" && parts[1] != "" {
					t.Fatalf("subscriptionId not filled for %s", id)
				}
			}
			_ = TableOf(row)
			n++
			return n < 1000
		})
		if err != nil && !errors.Is(err, ErrInventory) {
			t.Fatalf("error %v is not an ErrInventory", err)
		}
	})
}

func TestOpenChoosesTheSource(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "inv.json")
	if err := os.WriteFile(p, sampleInventory, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), Config{}, p)
	if _, ok := src.(*Inventory); err != nil || !ok {
		t.Fatalf("%T %v", src, err)
	}
	src, err = Open(context.Background(), Config{TenantID: "t", AccessToken: "x"})
	if _, ok := src.(*ResourceGraphSource); err != nil || !ok {
		t.Fatalf("%T %v", src, err)
	}
	if src, err := Open(context.Background(), Config{}); err == nil || src != nil {
		t.Fatalf("no tenant: %v %v", src, err)
	}
}
