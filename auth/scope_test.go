package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []Scope
		wantErr bool
	}{
		{in: "read,write", want: []Scope{ScopeRead, ScopeWrite}},
		{in: "write, read ,read", want: []Scope{ScopeRead, ScopeWrite}},
		{in: "admin", want: []Scope{ScopeAdmin}},
		{in: "admin,read,write", want: []Scope{ScopeRead, ScopeWrite, ScopeAdmin}},
		{in: "read,,", want: []Scope{ScopeRead}},
		{in: "", wantErr: true},
		{in: " , ", wantErr: true},
		{in: "read,delete", wantErr: true},
		{in: "READ", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScopes(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidScope) {
					t.Fatalf("ParseScopes(%q) error = %v, want ErrInvalidScope", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if FormatScopes(got) == "" {
				t.Error("FormatScopes empty")
			}
		})
	}
}

func TestIdentityHas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scopes []Scope
		want   map[Scope]bool
	}{
		{"read only", []Scope{ScopeRead}, map[Scope]bool{ScopeRead: true}},
		{"read write", []Scope{ScopeRead, ScopeWrite}, map[Scope]bool{ScopeRead: true, ScopeWrite: true}},
		{"write does not imply read", []Scope{ScopeWrite}, map[Scope]bool{ScopeWrite: true}},
		{"admin implies all", []Scope{ScopeAdmin}, map[Scope]bool{ScopeRead: true, ScopeWrite: true, ScopeAdmin: true}},
		{"none", nil, map[Scope]bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := Identity{Scopes: tt.scopes}
			for _, s := range []Scope{ScopeRead, ScopeWrite, ScopeAdmin, "", "delete"} {
				if got := id.Has(s); got != tt.want[s] {
					t.Errorf("Has(%q) = %v, want %v", s, got, tt.want[s])
				}
			}
		})
	}
}

func TestIdentityContext(t *testing.T) {
	t.Parallel()
	if _, ok := IdentityFrom(context.Background()); ok {
		t.Fatal("IdentityFrom(empty context) reported an identity")
	}
	want := Identity{KeyID: "key_000000000001", ClientID: "c", Environment: Dev, Scopes: []Scope{ScopeRead}}
	got, ok := IdentityFrom(WithIdentity(context.Background(), want))
	if !ok {
		t.Fatal("no identity")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
