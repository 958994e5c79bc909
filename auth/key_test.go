package auth

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	const (
		msgRequired = "API key is required"
		msgShort    = "API key too short (expected at least 72 characters)"
		msgPrefix   = "invalid format: API key must start with 'atg_' prefix; expected atg_{environment}_{64-hex-chars}"
		msgParts    = "invalid format: API key missing environment or hex portion; expected atg_{environment}_{64-hex-chars}"
		msgNonHex   = "invalid format: hex portion contains non-hexadecimal characters; only 0-9 and a-f are allowed"
	)
	tests := []struct {
		name    string
		key     string
		wantEnv Environment
		problem KeyProblem
		wantMsg string
	}{
		{name: "AK-1 dev key, 72 chars", key: "atg_dev_" + hex64, wantEnv: Dev},
		{name: "AK-2 integration key, 80 chars", key: "atg_integration_" + hex64, wantEnv: Integration},
		{name: "production key, 79 chars", key: "atg_production_" + hex64, wantEnv: Production},
		{name: "empty", key: "", problem: KeyEmpty, wantMsg: msgRequired},
		{name: "AK-4 atg_dev_short", key: "atg_dev_short", problem: KeyTooShort, wantMsg: msgShort},
		{name: "AK-6 64 hex without prefix is too short", key: hex64, problem: KeyTooShort, wantMsg: msgShort},
		{name: "71 chars", key: "atg_dev_" + hex64[:63], problem: KeyTooShort, wantMsg: msgShort},
		{name: "AK-3 invalid_prefix", key: "invalid_prefix_" + hex64, problem: KeyBadPrefix, wantMsg: msgPrefix},
		{name: "AK-3 dev_ without atg", key: "dev_" + hex64 + "abcd", problem: KeyBadPrefix, wantMsg: msgPrefix},
		{name: "upper-case prefix", key: "ATG_dev_" + hex64, problem: KeyBadPrefix, wantMsg: msgPrefix},
		{name: "no second underscore", key: "atg_" + hex64 + "abcd", problem: KeyMissingParts, wantMsg: msgParts},
		{name: "empty environment", key: "atg__" + hex64 + "abc", problem: KeyMissingParts, wantMsg: msgParts},
		{name: "empty hex portion", key: "atg_" + hex64 + "abc_", problem: KeyMissingParts, wantMsg: msgParts},
		{
			name: "AK-3 atg_prod_ rejected", key: "atg_prod_" + hex64, problem: KeyBadEnvironment,
			wantMsg: "invalid format: unsupported environment 'prod'; expected dev, integration or production",
		},
		{
			name: "staging", key: "atg_staging_" + hex64, problem: KeyBadEnvironment,
			wantMsg: "invalid format: unsupported environment 'staging'; expected dev, integration or production",
		},
		{
			name: "upper-case environment not quoted", key: "atg_DEV_" + hex64, problem: KeyBadEnvironment,
			wantMsg: "invalid format: unsupported environment; expected dev, integration or production",
		},
		{
			name: "secret-looking environment not quoted", key: "atg_" + hex64 + "_dev", problem: KeyBadEnvironment,
			wantMsg: "invalid format: unsupported environment; expected dev, integration or production",
		},
		{
			name: "AK-C3 integration + 56 hex", key: "atg_integration_" + hex64[:56], problem: KeyBadHexLength,
			wantMsg: "invalid format: hex portion must be exactly 64 characters, got 56",
		},
		{
			name: "AK-C3 dev + 65 hex", key: "atg_dev_" + hex64 + "a", problem: KeyBadHexLength,
			wantMsg: "invalid format: hex portion must be exactly 64 characters, got 65",
		},
		{name: "AK-5 dev + g x64", key: "atg_dev_" + strings.Repeat("g", 64), problem: KeyNonHex, wantMsg: msgNonHex},
		{name: "AK-C2 upper-case hex rejected", key: "atg_dev_" + strings.ToUpper(hex64), problem: KeyNonHex, wantMsg: msgNonHex},
		{name: "one upper-case hex char", key: "atg_dev_A" + hex64[1:], problem: KeyNonHex, wantMsg: msgNonHex},
		{name: "underscore in hex portion", key: "atg_dev_" + hex64[:63] + "_", problem: KeyNonHex, wantMsg: msgNonHex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := ParseKey(tt.key)
			if tt.problem == 0 {
				if err != nil {
					t.Fatalf("ParseKey: unexpected error %v", err)
				}
				if env != tt.wantEnv {
					t.Errorf("env = %q, want %q", env, tt.wantEnv)
				}
				if err := ValidateKey(tt.key); err != nil {
					t.Errorf("ValidateKey: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKey accepted %q", tt.key)
			}
			if env != "" {
				t.Errorf("env = %q on error, want empty", env)
			}
			var kfe *KeyFormatError
			if !errors.As(err, &kfe) {
				t.Fatalf("error %T is not *KeyFormatError", err)
			}
			if kfe.Problem != tt.problem {
				t.Errorf("Problem = %d, want %d", kfe.Problem, tt.problem)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Error("errors.Is(err, ErrMalformed) = false")
			}
			if diff := cmp.Diff(tt.wantMsg, err.Error()); diff != "" {
				t.Errorf("message mismatch (-want +got):\n%s", diff)
			}
			if len(tt.key) >= 16 && strings.Contains(err.Error(), tt.key) {
				t.Errorf("error contains the key")
			}
			if err2 := ValidateKey(tt.key); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("ValidateKey = %v, want %v", err2, err)
			}
		})
	}
}

func TestKeyLengths(t *testing.T) {
	t.Parallel()
	want := map[Environment]int{Dev: 72, Integration: 80, Production: 79}
	for _, env := range Environments() {
		if got := len(mustGenerate(t, env)); got != want[env] {
			t.Errorf("len(%s key) = %d, want %d", env, got, want[env])
		}
	}
	if MinKeyLen != 72 {
		t.Errorf("MinKeyLen = %d, want 72", MinKeyLen)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, env := range Environments() {
		t.Run(string(env), func(t *testing.T) {
			t.Parallel()
			seen := make(map[string]bool, 100)
			for range 100 {
				k := mustGenerate(t, env)
				prefix := "atg_" + string(env) + "_"
				if !strings.HasPrefix(k, prefix) {
					t.Fatalf("key does not start with %q", prefix)
				}
				if strings.Trim(k[len(prefix):], "0123456789abcdef") != "" || len(k)-len(prefix) != 64 {
					t.Fatalf("hex portion of %s key is not 64 lowercase hex characters", env)
				}
				got, err := ParseKey(k)
				if err != nil || got != env {
					t.Fatalf("ParseKey(generated) = %q, %v", got, err)
				}
				if seen[k] {
					t.Fatal("duplicate key generated")
				}
				seen[k] = true
			}
			if len(seen) != 100 {
				t.Fatalf("%d distinct keys, want 100", len(seen))
			}
		})
	}
	for _, bad := range []Environment{"", "prod", "DEV", "staging"} {
		if _, err := Generate(bad); !errors.Is(err, ErrInvalidEnvironment) {
			t.Errorf("Generate(%q) error = %v, want ErrInvalidEnvironment", bad, err)
		}
	}
}

func TestParseEnvironment(t *testing.T) {
	t.Parallel()
	for _, env := range Environments() {
		got, err := ParseEnvironment(string(env))
		if err != nil || got != env {
			t.Errorf("ParseEnvironment(%q) = %q, %v", env, got, err)
		}
	}
	for _, s := range []string{"", "prod", "Dev", " dev", "integration ", "staging"} {
		if _, err := ParseEnvironment(s); !errors.Is(err, ErrInvalidEnvironment) {
			t.Errorf("ParseEnvironment(%q) error = %v, want ErrInvalidEnvironment", s, err)
		}
	}
	if diff := cmp.Diff([]Environment{Dev, Integration, Production}, Environments()); diff != "" {
		t.Errorf("Environments() (-want +got):\n%s", diff)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"atg_dev_" + hex64, "atg_dev_***"},
		{"atg_integration_" + hex64, "atg_integration_***"},
		{"atg_production_" + hex64, "atg_production_***"},
		{"atg_dev_short", "atg_dev_***"},
		{"atg_prod_" + hex64, "***"},
		{"atg_" + hex64 + "_dev", "***"},
		{"secret", "***"},
		{"atg_dev", "***"},
		{hex64, "***"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%.12q…) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	// SHA-256("abc"), FIPS 180-2 test vector.
	got := Digest("abc")
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if h := hex.EncodeToString(got[:]); h != want {
		t.Errorf("Digest(abc) = %s, want %s", h, want)
	}
}
