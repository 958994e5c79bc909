package azuretest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// page posts one Resource Graph request the way Microsoft documents it.
func page(t *testing.T, s *Server, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestResourceGraphPagesEveryRowOnce(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Seed: 7, Resources: 500, Subscriptions: 3, MaxPageSize: 70})
	for _, tc := range []struct {
		table string
		sub   string
		want  int
	}{
		{TableResources, "", s.Tenant.Counts()[TableResources]},
		{TableResourceContainers, "", s.Tenant.Counts()[TableResourceContainers]},
		{TableAuthorizationResources, "", s.Tenant.Counts()[TableAuthorizationResources]},
		{TableResources, s.Tenant.Subscriptions[1], s.Tenant.CountsFor(s.Tenant.Subscriptions[1])[TableResources]},
		{TableAuthorizationResources, s.Tenant.Subscriptions[2], s.Tenant.CountsFor(s.Tenant.Subscriptions[2])[TableAuthorizationResources]},
	} {
		t.Run(tc.table+tc.sub, func(t *testing.T) {
			seen := map[string]bool{}
			token := ""
			for pages := 0; ; pages++ {
				opts := map[string]any{"resultFormat": "objectArray", "$top": 1000}
				if token != "" {
					opts["$skipToken"] = token
				}
				body := map[string]any{"query": tc.table + " | project id, name | where type =~ 'x'", "options": opts}
				if tc.sub != "" {
					body["subscriptions"] = []string{tc.sub}
				}
				st, out := page(t, s, body)
				if st != 200 {
					t.Fatalf("status %d: %v", st, out)
				}
				data := out["data"].([]any)
				if int(out["count"].(float64)) != len(data) || len(data) > 70 || int(out["totalRecords"].(float64)) != tc.want {
					t.Fatalf("count %v, len %d, total %v, want total %d", out["count"], len(data), out["totalRecords"], tc.want)
				}
				for _, r := range data {
					row := r.(map[string]any)
					id := row["id"].(string)
					if seen[id] {
						t.Fatalf("row %s twice", id)
					}
					if _, ok := row["properties"]; !ok {
						t.Fatalf("row %s projected: %v", id, row)
					}
					if tc.sub != "" && row["subscriptionId"] != tc.sub {
						t.Fatalf("row %s of another subscription", id)
					}
					seen[id] = true
				}
				tok, ok := out["$skipToken"].(string)
				if !ok {
					break
				}
				token = tok
			}
			if len(seen) != tc.want {
				t.Fatalf("%d rows, want %d", len(seen), tc.want)
			}
		})
	}
}

func TestResourceGraphRefusesBadToken(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	s.Token = "not-issued"
	if st, _ := page(t, s, map[string]any{"query": "Resources"}); st != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", st)
	}
}

func TestTenantIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := NewTenant(3, 100, 2), NewTenant(3, 100, 2)
	var ra, rb []byte
	a.Rows(TableResources, nil, 0, 1000, func(r map[string]any) bool { x, _ := json.Marshal(r); ra = append(ra, x...); return true })
	b.Rows(TableResources, nil, 0, 1000, func(r map[string]any) bool { x, _ := json.Marshal(r); rb = append(rb, x...); return true })
	if !bytes.Equal(ra, rb) || len(ra) == 0 {
		t.Fatal("same seed and size gave different tenants")
	}
}

// TestTenantReferencesResolve: every ARM id a row names (managedBy, any
// "id" in properties or identity) is a row, a subnet or a child of one,
// case-insensitively, so a mapping can link everything.
func TestTenantReferencesResolve(t *testing.T) {
	t.Parallel()
	tn := NewTenant(11, 100, 2)
	ids := map[string]bool{}
	var rows []map[string]any
	for _, table := range []string{TableResources, TableResourceContainers} {
		tn.Rows(table, nil, 0, 1<<30, func(r map[string]any) bool {
			ids[strings.ToLower(r["id"].(string))] = true
			rows = append(rows, r)
			return true
		})
	}
	var walk func(v any, f func(string))
	walk = func(v any, f func(string)) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "id" {
					f(s)
				}
				if k == "userAssignedIdentities" {
					for id := range e.(map[string]any) {
						f(id)
					}
				}
				walk(e, f)
			}
		case []any:
			for _, e := range x {
				walk(e, f)
			}
		}
	}
	for _, r := range rows {
		if p, ok := r["properties"].(map[string]any); ok {
			for _, sn := range asSlice(p["subnets"]) {
				ids[strings.ToLower(sn.(map[string]any)["id"].(string))] = true
			}
		}
	}
	for _, r := range rows {
		check := func(id string) {
			l := strings.ToLower(id)
			for l != "" && !ids[l] {
				i := strings.LastIndex(l, "/")
				if i < 0 {
					break
				}
				l = l[:i]
				if j := strings.LastIndex(l, "/"); j >= 0 {
					l = l[:j]
				}
			}
			if l == "" || strings.Count(l, "/") < 4 {
				t.Errorf("%s names %s, which is not in the tenant", r["id"], id)
			}
		}
		if m, _ := r["managedBy"].(string); m != "" {
			check(m)
		}
		walk(r["properties"], check)
		walk(r["identity"], check)
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// TestBlockMatchesRows: every id Block lists is a row (or a subnet of
// one), and the links it claims are in the rows.
func TestBlockMatchesRows(t *testing.T) {
	t.Parallel()
	tn := NewTenant(9, 50, 2)
	rows := map[string]map[string]any{}
	for _, table := range []string{TableResources, TableResourceContainers, TableAuthorizationResources} {
		tn.Rows(table, nil, 0, 1<<30, func(r map[string]any) bool { rows[strings.ToLower(r["id"].(string))] = r; return true })
	}
	has := func(id string) map[string]any {
		t.Helper()
		r, ok := rows[strings.ToLower(id)]
		if !ok {
			t.Fatalf("no row %s", id)
		}
		return r
	}
	for b := range tn.Blocks {
		blk := tn.Block(b)
		for _, id := range []string{blk.ResourceGroup, blk.Subscription, blk.VNet, blk.NSG, blk.Identity, blk.Storage, blk.KeyVault, blk.SQLServer, blk.Databases[0], blk.Databases[1], blk.PrivateEndpoint} {
			has(id)
		}
		vnet, _ := json.Marshal(has(blk.VNet))
		for _, sn := range blk.Subnets {
			if !strings.Contains(string(vnet), sn) {
				t.Fatalf("subnet %s not in the VNet's row", sn)
			}
		}
		for _, vm := range blk.VMs {
			row, _ := json.Marshal(has(vm.ID))
			nic, _ := json.Marshal(has(vm.NIC))
			disk := has(vm.OSDisk)
			if !strings.Contains(string(row), vm.NIC) || !strings.Contains(string(nic), blk.Subnets[0]) ||
				!strings.EqualFold(disk["managedBy"].(string), vm.ID) ||
				strings.Contains(string(nic), blk.NSG) != vm.SecuredByNSG ||
				(vm.PublicIP != "") != strings.Contains(string(nic), "publicIPAddress") ||
				(vm.PrincipalID != "") != strings.Contains(string(row), "principalId") ||
				vm.UserAssigned != strings.Contains(string(row), blk.Identity) {
				t.Fatalf("VM %+v does not match its rows", vm)
			}
		}
		for _, ra := range blk.RoleAssignments {
			has(ra.ID)
			if ra.RoleName == "" || ra.Scope == "" {
				t.Fatalf("%+v", ra)
			}
			if !strings.HasPrefix(ra.Scope, "/subscriptions/") {
				t.Fatalf("scope %s", ra.Scope)
			}
		}
	}
}

// TestResourceGraphDocumentedOptions: $top defaults to 100 and is capped
// at 1000, $skip offsets, a foreign $skipToken is refused, and an unknown
// table is a 400.
func TestResourceGraphDocumentedOptions(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Resources: 1200})
	cases := []struct {
		name   string
		body   map[string]any
		status int
		rows   int
	}{
		{"default top", map[string]any{"query": "Resources"}, 200, 100},
		{"skip", map[string]any{"query": "resources | limit 5", "options": map[string]any{"$skip": 1190, "$top": 50}}, 200, s.Tenant.Counts()[TableResources] - 1190},
		{"top too large", map[string]any{"query": "Resources", "options": map[string]any{"$top": 5000}}, 400, 0},
		{"foreign skip token", map[string]any{"query": "Resources", "options": map[string]any{"$skipToken": "bm90LW91cnM"}}, 400, 0},
		{"unknown table", map[string]any{"query": "SecurityResources | take 1"}, 400, 0},
		{"unknown subscription", map[string]any{"query": "Resources", "subscriptions": []string{"nope"}}, 400, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, out := page(t, s, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, out)
			}
			if st == 200 && len(out["data"].([]any)) != tc.rows {
				t.Fatalf("%d rows, want %d", len(out["data"].([]any)), tc.rows)
			}
			if st != 200 && out["error"] == nil {
				t.Fatalf("no ARM error body: %v", out)
			}
		})
	}
	if e := s.Env(); e["AZURE_ACCESS_TOKEN"] != s.Token || e["SSL_CERT_FILE"] != s.CAFile {
		t.Fatalf("Env %v", e)
	}
}
