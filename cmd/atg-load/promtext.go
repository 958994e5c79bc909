package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	// Name is the metric name (with _bucket, _sum, _count suffixes as written).
	Name string
	// Labels are the sample's labels.
	Labels map[string]string
	// Value is the sample value.
	Value float64
}

// promScrape is the samples of one /metrics scrape.
type promScrape []promSample

// parsePromText parses the Prometheus text exposition format (the subset
// client_golang writes: no timestamps needed, quoted label values with \\,
// \" and \n escapes).
func parsePromText(r io.Reader) (promScrape, error) {
	var out promScrape
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parsePromLine parses `name{a="x",b="y"} value [timestamp]`.
func parsePromLine(line string) (promSample, error) {
	s := promSample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("metrics: malformed line %q", line)
	}
	s.Name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, "=\"")
			if eq < 0 {
				return s, fmt.Errorf("metrics: malformed labels in %q", line)
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var b strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						b.WriteByte('\n')
					default:
						b.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("metrics: unterminated label value in %q", line)
			}
			s.Labels[name] = b.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 {
		return s, fmt.Errorf("metrics: no value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("metrics: bad value in %q: %w", line, err)
	}
	s.Value = v
	return s, nil
}

// sum adds the values of the samples called name whose labels include
// every pair of match.
func (p promScrape) sum(name string, match map[string]string) float64 {
	var total float64
	for _, s := range p {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.Value
		}
	}
	return total
}

// httpCodes returns atg_http_requests_total by route and status code.
func (p promScrape) httpCodes() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, s := range p {
		if s.Name != "atg_http_requests_total" {
			continue
		}
		rt := s.Labels["route"]
		if out[rt] == nil {
			out[rt] = map[string]float64{}
		}
		out[rt][s.Labels["code"]] += s.Value
	}
	return out
}

// scrapeMetrics fetches and parses baseURL/metrics with hc.
func scrapeMetrics(ctx context.Context, hc *http.Client, baseURL string) (promScrape, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: HTTP %d", resp.StatusCode)
	}
	return parsePromText(resp.Body)
}
