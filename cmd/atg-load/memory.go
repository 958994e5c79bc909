package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// MemSample is the server's memory at one instant.
type MemSample struct {
	// RSSBytes is the resident set size (VmRSS of /proc/<pid>/status).
	RSSBytes int64 `json:"rss_bytes"`
	// RSSPeakBytes is the process's peak resident set size so far (VmHWM).
	RSSPeakBytes int64 `json:"rss_peak_bytes"`
	// Heap is the Go runtime's view; nil when the server is not
	// observable from here (an external server).
	Heap *HeapStats `json:"go_heap,omitempty"`
	// AfterGC says whether a garbage collection was forced just before
	// (then Heap.AllocBytes is the live heap).
	AfterGC bool `json:"after_gc"`
}

// HeapStats are the figures of runtime.MemStats that matter here.
type HeapStats struct {
	// AllocBytes is HeapAlloc: bytes of allocated heap objects (live ones,
	// plus garbage not yet collected unless AfterGC).
	AllocBytes uint64 `json:"heap_alloc_bytes"`
	// InuseBytes is HeapInuse: bytes in in-use heap spans.
	InuseBytes uint64 `json:"heap_inuse_bytes"`
	// HeapSysBytes is HeapSys: heap memory obtained from the OS.
	HeapSysBytes uint64 `json:"heap_sys_bytes"`
	// StackInuseBytes is StackInuse: goroutine stacks.
	StackInuseBytes uint64 `json:"stack_inuse_bytes"`
	// SysBytes is Sys: all memory the Go runtime obtained from the OS.
	SysBytes uint64 `json:"sys_bytes"`
	// Goroutines is runtime.NumGoroutine().
	Goroutines int `json:"goroutines"`
	// NumGC counts completed GC cycles.
	NumGC uint32 `json:"num_gc"`
}

// selfMemory samples this process: RSS from /proc/self/status and the Go
// heap from runtime.ReadMemStats, after forced GCs when gc is true (two, so
// that objects parked in sync.Pools, such as net/http's buffers, are
// dropped too and HeapAlloc is the live heap).
func selfMemory(gc bool) (MemSample, error) {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s, err := procMemory("self")
	s.AfterGC = gc
	s.Heap = &HeapStats{
		AllocBytes: ms.HeapAlloc, InuseBytes: ms.HeapInuse, HeapSysBytes: ms.HeapSys, StackInuseBytes: ms.StackInuse,
		SysBytes: ms.Sys, Goroutines: runtime.NumGoroutine(), NumGC: ms.NumGC,
	}
	return s, err
}

// procMemory reads VmRSS and VmHWM of /proc/<pid>/status.
func procMemory(pid string) (MemSample, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return MemSample{}, fmt.Errorf("read memory of process %s: %w", pid, err)
	}
	var s MemSample
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			s.RSSBytes = kb << 10
		case "VmHWM":
			s.RSSPeakBytes = kb << 10
		}
	}
	if s.RSSBytes == 0 {
		return s, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
	}
	return s, nil
}

// LoadAverage is /proc/loadavg's first three fields.
type LoadAverage struct {
	// One, Five and Fifteen are the 1, 5 and 15 minute load averages.
	One     float64 `json:"1m"`
	Five    float64 `json:"5m"`
	Fifteen float64 `json:"15m"`
}

// String formats the load average like uptime does.
func (l LoadAverage) String() string {
	return fmt.Sprintf("%.2f, %.2f, %.2f", l.One, l.Five, l.Fifteen)
}

// loadAverage reads /proc/loadavg (zero when unavailable).
func loadAverage() LoadAverage {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return LoadAverage{}
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return LoadAverage{}
	}
	var l LoadAverage
	l.One, _ = strconv.ParseFloat(f[0], 64)
	l.Five, _ = strconv.ParseFloat(f[1], 64)
	l.Fifteen, _ = strconv.ParseFloat(f[2], 64)
	return l
}

// memTracker keeps the peak and mean of samples taken during a phase.
type memTracker struct {
	// n counts the samples; sumRSS adds their RSS for the mean.
	n      int
	sumRSS float64
	// peakRSS, peakHeap (HeapInuse) and maxGor (goroutines) are maxima.
	peakRSS  int64
	peakHeap uint64
	maxGor   int
}

// add folds s into the tracker.
func (m *memTracker) add(s MemSample) {
	m.n++
	m.sumRSS += float64(s.RSSBytes)
	m.peakRSS = max(m.peakRSS, s.RSSBytes)
	if s.Heap != nil {
		if s.Heap.InuseBytes > m.peakHeap {
			m.peakHeap = s.Heap.InuseBytes
		}
		m.maxGor = max(m.maxGor, s.Heap.Goroutines)
	}
}

// MemUnderLoad summarises the samples taken every interval during a phase.
type MemUnderLoad struct {
	// Samples is how many samples were taken.
	Samples int `json:"samples"`
	// IntervalSeconds is the sampling period.
	IntervalSeconds float64 `json:"interval_seconds"`
	// PeakRSSBytes and MeanRSSBytes are over the samples.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	MeanRSSBytes int64 `json:"mean_rss_bytes"`
	// PeakHeapInuseBytes is the highest HeapInuse seen (0 when unknown).
	PeakHeapInuseBytes uint64 `json:"peak_heap_inuse_bytes,omitempty"`
	// PeakGoroutines is the most goroutines seen (0 when unknown).
	PeakGoroutines int `json:"peak_goroutines,omitempty"`
}

// summary returns the tracker's figures.
func (m *memTracker) summary(interval time.Duration) *MemUnderLoad {
	if m.n == 0 {
		return nil
	}
	return &MemUnderLoad{
		Samples: m.n, IntervalSeconds: interval.Seconds(), PeakRSSBytes: m.peakRSS,
		MeanRSSBytes: int64(m.sumRSS / float64(m.n)), PeakHeapInuseBytes: m.peakHeap, PeakGoroutines: m.maxGor,
	}
}
