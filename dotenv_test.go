package atg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadDotenvGrammar(t *testing.T) {
	t.Parallel()
	got, err := ReadDotenv(filepath.Join("testdata", "dotenv", "grammar.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"EXPORTED":     "yes",
		"PLAIN":        "value with spaces",
		"SINGLE":       "single # quoted",
		"SINGLE2":      `literal $HOME \n # not a comment`,
		"DOUBLE":       "line1\nline2 \"quoted\" back\\slash",
		"INLINE":       "value",
		"HASH":         "abc#def",
		"EMPTY":        "",
		"EMPTY_QUOTED": "",
		"DOTTED.KEY":   "1",
		"EQUALS":       "a=b=c",
		"DUP":          "second",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadDotenv mismatch (-want +got):\n%s", diff)
	}
}

func TestReadDotenvMissingFileIsEmpty(t *testing.T) {
	t.Parallel()
	got, err := ReadDotenv(filepath.Join(t.TempDir(), "does-not-exist.env"))
	if err != nil {
		t.Fatalf("missing file: got error %v, want none", err)
	}
	if len(got) != 0 {
		t.Fatalf("missing file: got %v, want empty", got)
	}
}

func TestReadDotenvUnreadableIsError(t *testing.T) {
	t.Parallel()
	if _, err := ReadDotenv(t.TempDir()); err == nil { // a directory
		t.Fatal("reading a directory as .env: want an error")
	}
}

func TestParseDotenvMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		content  string
		wantLine int
		reason   string
	}{
		{"no equals", "A=1\nINVALID LINE WITHOUT EQUALS\n", 2, "no '='"},
		{"empty key", "=value", 1, "empty variable name"},
		{"bad key", "\n\nMY-VAR=1", 3, "variable name"},
		{"key starts with digit", "1A=1", 1, "variable name"},
		{"unterminated single", "A='abc", 1, "unterminated single"},
		{"unterminated double", "A=\"abc\\\"", 1, "unterminated double"},
		{"text after quote", "A='abc' def", 1, "after the closing quote"},
		{"text after double quote", "A=\"abc\" def", 1, "after the closing quote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDotenv("x.env", []byte(tc.content))
			var de *DotenvError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want *DotenvError", err)
			}
			if de.Line != tc.wantLine || !strings.Contains(de.Reason, tc.reason) || de.Path != "x.env" {
				t.Errorf("got %+v, want line %d reason containing %q", de, tc.wantLine, tc.reason)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Error("DotenvError should match ErrInvalidConfig")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "malformed") {
				t.Errorf("error %q should say malformed", err)
			}
		})
	}
}

func TestDotenvErrorNeverEchoesTheLine(t *testing.T) {
	t.Parallel()
	_, err := ReadDotenv(filepath.Join("testdata", "dotenv", "malformed.env"))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, leak := range []string{"INVALID LINE", "secretsecret"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q repeats file content %q", err, leak)
		}
	}
	if !strings.Contains(err.Error(), "malformed.env") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %q should name the file and line 2", err)
	}
}

func TestParseDotenvCRLFAndBOM(t *testing.T) {
	t.Parallel()
	got, err := ParseDotenv("w.env", []byte("\xef\xbb\xbfA=1\r\nB=\"two\"\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"A": "1", "B": "two"}, got); diff != "" {
		t.Error(diff)
	}
}

func FuzzParseDotenv(f *testing.F) {
	for _, name := range []string{"grammar.env", "client.env", "malformed.env"} {
		b, err := os.ReadFile(filepath.Join("testdata", "dotenv", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("A='x"))
	f.Add([]byte("export A=\"\\\"\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseDotenv("fuzz.env", data)
		if err != nil {
			var de *DotenvError
			if !errors.As(err, &de) {
				t.Fatalf("error of unexpected type %T: %v", err, err)
			}
			if de.Line < 1 {
				t.Fatalf("line %d < 1", de.Line)
			}
			return
		}
		for k := range vars {
			if !validDotenvKey(k) || k == "" {
				t.Fatalf("accepted invalid key %q", k)
			}
		}
		// Writing the parsed variables back in canonical form and parsing
		// them again must give exactly what was written.
		var b strings.Builder
		written := map[string]string{}
		for k, v := range vars {
			if strings.ContainsAny(v, "\n\r'") {
				continue // not representable single-quoted on one line
			}
			b.WriteString(k + "='" + v + "'\n")
			written[k] = v
		}
		again, err := ParseDotenv("again.env", []byte(b.String()))
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, b.String())
		}
		if diff := cmp.Diff(written, again); diff != "" {
			t.Fatalf("round trip changed the variables (-written +parsed):\n%s", diff)
		}
	})
}
