package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// parsePromText parses the Prometheus text exposition format.
func parsePromText(r io.Reader) (promScrape, error) {
	return parseMetrics(r, expfmt.NewFormat(expfmt.TypeTextPlain))
}

// parseMetrics decodes a /metrics body in format (text or protobuf) with
// expfmt and flattens it into samples, histograms and summaries as their
// _bucket, _sum and _count (and quantile) series.
func parseMetrics(r io.Reader, format expfmt.Format) (promScrape, error) {
	dec := expfmt.SampleDecoder{Dec: expfmt.NewDecoder(r, format), Opts: &expfmt.DecodeOptions{Timestamp: model.Now()}}
	var out promScrape
	for {
		var v model.Vector
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		for _, smp := range v {
			labels := make(map[string]string, len(smp.Metric))
			for k, val := range smp.Metric {
				if k != model.MetricNameLabel {
					labels[string(k)] = string(val)
				}
			}
			out = append(out, promSample{Name: string(smp.Metric[model.MetricNameLabel]), Labels: labels, Value: float64(smp.Value)})
		}
	}
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
	return parseMetrics(resp.Body, expfmt.ResponseFormat(resp.Header))
}
