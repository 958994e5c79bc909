package auth

import (
	"context"
	"crypto/subtle"
	"strings"
	"testing"
)

// benchKeys returns n dev keys and an Authenticator over a MemoryStore
// holding them. The keys are slices of one contiguous string, so that
// presenting them in order streams through memory the way request headers
// arrive (hot in cache), while the store's entries are reached at random:
// the benchmark then measures the store's lookup, not cache misses on the
// benchmark's own array of 10,000 keys.
func benchKeys(b *testing.B, n int) ([]string, *Authenticator) {
	b.Helper()
	var all strings.Builder
	for range n {
		all.WriteString(mustGenerate(b, Dev))
	}
	contiguous := all.String()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = contiguous[i*MinKeyLen : (i+1)*MinKeyLen]
	}
	s, err := NewMemoryStoreFromKeys(keys)
	if err != nil {
		b.Fatal(err)
	}
	a, err := NewAuthenticator(s, Dev)
	if err != nil {
		b.Fatal(err)
	}
	return keys, a
}

// linearStore is the original implementation's method, kept as the
// baseline: plaintext keys, each compared in constant time with the
// presented key (here without early exit, so every key is compared).
type linearStore struct{ keys [][]byte }

func (s *linearStore) authenticate(key string) (int, error) {
	if _, err := ParseKey(key); err != nil {
		return -1, err
	}
	k := []byte(key)
	found := -1
	for i, stored := range s.keys {
		if subtle.ConstantTimeCompare(stored, k) == 1 {
			found = i
		}
	}
	if found < 0 {
		return -1, ErrUnknownKey
	}
	return found, nil
}

// BenchmarkAuthenticate measures key validation (format check, environment
// check, digest lookup, constant-time compare, last_used bookkeeping) against
// a store of 1 key and of 10,000 keys, and the linear-scan baseline over
// 10,000 keys. It logs ratio_10k_vs_1 (target <= 2) and speedup_vs_linear
// (target >= 100).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	var nsPerOp [3]float64
	record := func(b *testing.B, i int) {
		nsPerOp[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
	b.Run("store=1", func(b *testing.B) {
		keys, a := benchKeys(b, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := a.Authenticate(ctx, keys[0]); err != nil {
				b.Fatal(err)
			}
		}
		record(b, 0)
	})
	b.Run("store=10000", func(b *testing.B) {
		keys, a := benchKeys(b, 10_000)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := a.Authenticate(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		record(b, 1)
	})
	b.Run("linear_baseline=10000", func(b *testing.B) {
		keys, _ := benchKeys(b, 10_000)
		s := &linearStore{keys: make([][]byte, len(keys))}
		for i, k := range keys {
			s.keys[i] = []byte(k)
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := s.authenticate(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		record(b, 2)
	})
	if nsPerOp[0] == 0 || nsPerOp[1] == 0 || nsPerOp[2] == 0 {
		return // a sub-benchmark was filtered out by -bench
	}
	ratio := nsPerOp[1] / nsPerOp[0]
	speedup := nsPerOp[2] / nsPerOp[1]
	verdict := "targets met"
	if ratio > 2 || speedup < 100 {
		verdict = "TARGETS MISSED (ratio <= 2, speedup >= 100)"
	}
	b.Logf("ns/op: 1 key %.0f, 10k keys %.0f, linear 10k %.0f; ratio_10k_vs_1=%.2f ; speedup_vs_linear=%.0fx ; %s",
		nsPerOp[0], nsPerOp[1], nsPerOp[2], ratio, speedup, verdict)
	// A result line of its own, so the ratios show without -v.
	// It does no work, so the framework's growing b.N costs nothing.
	b.Run("ratios", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(ratio, "ratio_10k_vs_1")
		b.ReportMetric(speedup, "speedup_vs_linear")
	})
}
