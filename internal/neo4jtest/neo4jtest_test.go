package neo4jtest

import (
	"bufio"
	"io"
	"maps"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestUnique(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	a, b := Unique(t), Unique(t)
	if a == b || !re.MatchString(a) || !strings.HasSuffix(a, "_TestUnique") {
		t.Errorf("Unique: %q %q", a, b)
	}
	t.Run("a very long sub-test name with spaces, dashes - and `backticks` that goes on and on", func(t *testing.T) {
		if u := Unique(t); !re.MatchString(u) {
			t.Errorf("%q", u)
		}
	})
}

func TestSettingsEnv(t *testing.T) {
	s := Settings{URI: "bolt://db:7687", User: "neo4j", Password: "pw", Database: "graph"}
	want := map[string]string{"NEO4J_URI": "bolt://db:7687", "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": "pw", "NEO4J_DATABASE": "graph"}
	got := s.Env()
	if !maps.Equal(got, want) {
		t.Errorf("Env() = %v, want %v", got, want)
	}
	got["EXTRA"] = "x"
	if again := s.Env(); !maps.Equal(again, want) {
		t.Errorf("Env() shares its map: %v", again)
	}
	if db, ok := (Settings{URI: "bolt://db"}).Env()["NEO4J_DATABASE"]; !ok || db != "" {
		t.Errorf("default database: NEO4J_DATABASE = %q, %v; want present and empty", db, ok)
	}
}

// fakeTB records Skip and Fatalf instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Skip(args ...any)          { f.skipped = true; f.msg = args[0].(string) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.failed = true; f.msg = s }

func TestRequireSkipsOrFails(t *testing.T) {
	t.Setenv(EnvURI, "")
	t.Setenv(EnvPassword, "")
	t.Setenv(EnvRequire, "")
	tb := &fakeTB{TB: t}
	Require(tb)
	if !tb.skipped || tb.failed || !strings.Contains(tb.msg, `eval "$(scripts/neo4j.sh env)"`) {
		t.Errorf("without ATG_REQUIRE_NEO4J: %+v", tb)
	}
	t.Setenv(EnvRequire, "1")
	tb = &fakeTB{TB: t}
	Require(tb)
	if tb.skipped || !tb.failed {
		t.Errorf("with ATG_REQUIRE_NEO4J=1: %+v", tb)
	}
	t.Setenv(EnvURI, "bolt://db:7687")
	t.Setenv(EnvPassword, "pw")
	t.Setenv(EnvUser, "")
	tb = &fakeTB{TB: t}
	s := Require(tb)
	if tb.skipped || tb.failed || s.User != "neo4j" || s.Address() != "db:7687" || strings.Contains(s.String(), "pw") {
		t.Errorf("configured: %+v %v", tb, s)
	}
}

func TestProxy(t *testing.T) {
	// An echo server stands in for the database.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	p := NewProxy(t, ln.Addr().String())

	roundTrip := func() error {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("forward: %v", err)
	}
	p.SetMode(Reject)
	if err := roundTrip(); err == nil {
		t.Error("reject mode relayed")
	}
	p.SetMode(Forward)
	p.Stop()
	if err := roundTrip(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("stopped proxy: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(); err != nil {
		t.Errorf("restarted: %v", err)
	}
	if p.Accepted() != 3 {
		t.Errorf("accepted %d", p.Accepted())
	}
	if p.URI("bolt") != "bolt://"+p.Addr() {
		t.Error(p.URI("bolt"))
	}
}
