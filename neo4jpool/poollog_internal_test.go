package neo4jpool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pinnedDriverVersion is the driver version whose log formats
// testdata/poollog/<version>.txt records.
const pinnedDriverVersion = "v5.28.4"

type goldenLine struct {
	lineNo                   int
	level                    logLevel
	name, msg, event, source string
}

func readGolden(t *testing.T) []goldenLine {
	t.Helper()
	path := filepath.Join("testdata", "poollog", pinnedDriverVersion+".txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenLine
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 5 {
			t.Fatalf("%s:%d: want 5 tab-separated columns, got %d", path, n, len(cols))
		}
		lv := map[string]logLevel{"ERROR": levelError, "WARN": levelWarn, "INFO": levelInfo, "DEBUG": levelDebug}[cols[0]]
		out = append(out, goldenLine{lineNo: n, level: lv, name: cols[1], msg: cols[2], event: cols[3], source: cols[4]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("golden file has only %d entries", len(out))
	}
	return out
}

func TestClassifyDriverLogGolden(t *testing.T) {
	for _, g := range readGolden(t) {
		got := classifyDriverLog(g.level, g.name, g.msg).String()
		if got != g.event {
			t.Errorf("line %d: %s %s %q: got event %s, want %s", g.lineNo, g.level, g.name, g.msg, got, g.event)
		}
	}
}

// TestGoldenFormatsInDriverSource checks that the module graph still pins
// the driver version the golden file was written for, and that every
// message of the golden file still occurs, as a string literal, in that
// version's source. A driver upgrade must re-check the formats.
func TestGoldenFormatsInDriverSource(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}\t{{.Dir}}", "github.com/neo4j/neo4j-go-driver/v5").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	version, dir, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if version != pinnedDriverVersion {
		t.Fatalf("go.mod requires neo4j-go-driver %s but testdata/poollog is for %s: re-read the driver's log formats "+
			"(neo4j/internal/pool, neo4j/internal/bolt), update poollog.go and add testdata/poollog/%s.txt", version, pinnedDriverVersion, version)
	}
	if dir == "" {
		t.Skip("driver source not in the module cache")
	}
	cache := map[string][]byte{}
	for _, g := range readGolden(t) {
		if g.source == "-" {
			continue
		}
		src, ok := cache[g.source]
		if !ok {
			src, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(g.source)))
			if err != nil {
				t.Fatalf("line %d: %v", g.lineNo, err)
			}
			cache[g.source] = src
		}
		if !bytes.Contains(src, []byte(strconv.Quote(g.msg))) {
			t.Errorf("line %d: message %q no longer occurs in %s of the driver", g.lineNo, g.msg, g.source)
		}
	}
}

func TestDriverLoggerCountsAndForwards(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: LevelTrace}))
	em := newEnvMetrics("dev", 0, nil)
	l := &driverLogger{env: "dev", logger: logger, metrics: em}

	l.Warnf("pool", "1", "Borrow queued")
	l.Warnf("pool", "1", "Borrow queued")
	l.Warnf("pool", "1", "Borrow time-out")
	l.Warnf("pool", "1", "Failed to connect to %s: %s", "127.0.0.1:1", "connection refused")
	l.Infof("bolt5", "bolt-1@x", "Connected")
	l.Infof("bolt5", "bolt-2@x", "Connected")
	l.Infof("bolt5", "bolt-1@x", "Close")
	l.Infof("bolt5", "bolt-1@x", "Close") // a second Close of the same connection is not counted twice
	l.Infof("bolt5", "bolt-9@x", "Close") // a connection that never logged in (e.g. wrong password)
	l.Debugf("pool", "1", "Trying to borrow connection from %s", []string{"x"})
	l.Error("session", "3", errors.New("boom"))

	s := em.snapshot()
	if s.BorrowQueued != 2 || s.AcquireTimeouts != 1 || s.ConnectionsFailed != 1 ||
		s.ConnectionsCreated != 2 || s.ConnectionsClosed != 1 || s.ConnectionsOpenEstimate != 1 {
		t.Errorf("counts: %+v", s)
	}
	if s.BorrowQueuedInWindow != 2 || s.AcquireTimeoutsInWindow != 1 {
		t.Errorf("window counts: queued %d timeouts %d", s.BorrowQueuedInWindow, s.AcquireTimeoutsInWindow)
	}
	text := buf.String()
	for _, want := range []string{
		`level=WARN msg="neo4j driver: Failed to connect to 127.0.0.1:1: connection refused" env=dev component=pool`,
		`level=DEBUG msg="neo4j driver: Borrow queued"`,
		`level=WARN msg="neo4j driver: Borrow time-out"`,
		`level=DEBUG-4 msg="neo4j driver: Trying to borrow connection from [x]"`,
		`level=DEBUG msg="neo4j driver: boom" env=dev component=session id=3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log output lacks %q:\n%s", want, text)
		}
	}
}

func TestDriverLoggerSkipsFormattingWhenDisabled(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := &driverLogger{env: "dev", logger: logger}
	called := false
	l.Debugf("pool", "1", "%v", stringerFunc(func() string { called = true; return "" }))
	if called {
		t.Error("a disabled debug line was formatted")
	}
	if !logger.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("handler setup")
	}
}

type stringerFunc func() string

func (f stringerFunc) String() string { return f() }
