package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// keyErrorMessage matches every message ParseKey may return. The only part
// that can come from the input is a quoted environment of at most 12 ASCII
// lower-case letters.
var keyErrorMessage = regexp.MustCompile(`^(` + strings.Join([]string{
	regexp.QuoteMeta("API key is required"),
	regexp.QuoteMeta("API key too short (expected at least 72 characters)"),
	regexp.QuoteMeta("invalid format: API key must start with 'atg_' prefix; expected atg_{environment}_{64-hex-chars}"),
	regexp.QuoteMeta("invalid format: API key missing environment or hex portion; expected atg_{environment}_{64-hex-chars}"),
	`invalid format: unsupported environment( '[a-z]{1,12}')?; expected dev, integration or production`,
	`invalid format: hex portion must be exactly 64 characters, got [0-9]+`,
	regexp.QuoteMeta("invalid format: hex portion contains non-hexadecimal characters; only 0-9 and a-f are allowed"),
}, "|") + `)$`)

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"", "atg_", "atg_dev_short", hex64,
		"atg_dev_" + hex64, "atg_integration_" + hex64, "atg_production_" + hex64,
		"atg_prod_" + hex64, "atg_dev_" + strings.ToUpper(hex64), "atg_dev_" + hex64 + "0",
		"atg_integration_" + hex64[:56], "atg_" + hex64 + "_dev", "atg__" + hex64 + "abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseKey(s)
		if err != nil {
			if env != "" {
				t.Fatalf("env %q returned with an error", env)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			var kfe *KeyFormatError
			if !errors.As(err, &kfe) {
				t.Fatalf("error %T is not a *KeyFormatError", err)
			}
			msg := err.Error()
			if !keyErrorMessage.MatchString(msg) {
				t.Fatalf("unexpected error message %q", msg)
			}
			if len(s) >= 16 && strings.Contains(msg, s) {
				t.Fatalf("error message %q contains the input", msg)
			}
			if r := Redact(s); r != "" && r != "***" && !strings.HasSuffix(r, "_***") {
				t.Fatalf("Redact = %q", r)
			}
			return
		}
		// Accepted: the key is exactly atg_{env}_{64 lowercase hex} and round-trips.
		if !env.Valid() {
			t.Fatalf("invalid env %q accepted", env)
		}
		prefix := "atg_" + string(env) + "_"
		hexPart, ok := strings.CutPrefix(s, prefix)
		if !ok || len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
			t.Fatalf("accepted %q, which is not %s + 64 lowercase hex", s, prefix)
		}
		if again, err := ParseKey(prefix + hexPart); err != nil || again != env {
			t.Fatalf("round trip: %q, %v", again, err)
		}
		if got := Redact(s); got != prefix+"***" {
			t.Fatalf("Redact = %q, want %q", got, prefix+"***")
		}
		if ValidateKey(s) != nil {
			t.Fatal("ValidateKey disagrees with ParseKey")
		}
	})
}
