// Package metricstest reads a Prometheus text-format scrape for tests: the
// value of one series, the metric names and label names it holds.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one parsed /metrics page.
type Scrape struct {
	// Families maps metric family names to their samples.
	Families map[string]*dto.MetricFamily
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (*Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metricstest: parsing the text format: %w", err)
	}
	return &Scrape{Families: fams}, nil
}

// Get scrapes url with GET and parses the answer.
func Get(url string) (*Scrape, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("metricstest: scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metricstest: scraping %s: HTTP %d", url, resp.StatusCode)
	}
	return Parse(resp.Body)
}

// Value returns the value of the series name{labels}, where labels are
// name, value pairs that must be the series' whole label set. A histogram's
// name_count and name_sum are read as such; a counter, gauge or untyped
// series by its own name. ok is false when there is no such series.
func (s *Scrape) Value(name string, labels ...string) (v float64, ok bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	fam, suffix := s.family(name)
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !sameLabels(m.GetLabel(), want) {
			continue
		}
		switch {
		case suffix == "_count" && m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case suffix == "_sum" && m.Histogram != nil:
			return m.GetHistogram().GetSampleSum(), true
		case suffix != "":
			return 0, false
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// Series returns the label sets of name's series, each as "k=v,k=v" with
// keys sorted, in sorted order.
func (s *Scrape) Series(name string) []string {
	fam := s.Families[name]
	var out []string
	for _, m := range fam.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(parts)
		out = append(out, strings.Join(parts, ","))
	}
	sort.Strings(out)
	return out
}

// family finds the family of a sample name, which may carry a histogram or
// summary suffix (_bucket, _count, _sum).
func (s *Scrape) family(name string) (*dto.MetricFamily, string) {
	if f := s.Families[name]; f != nil {
		return f, ""
	}
	for _, suf := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f := s.Families[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return f, suf
			}
		}
	}
	return nil, ""
}

// Has reports whether name is a sample name of the scrape: a family name,
// or a histogram's or summary's name with _bucket, _count or _sum.
func (s *Scrape) Has(name string) bool {
	f, _ := s.family(name)
	return f != nil
}

// LabelNames returns the label names the series of a sample name carry
// (with "le" for a histogram's _bucket, "quantile" for a summary's own
// name), sorted.
func (s *Scrape) LabelNames(name string) []string {
	f, suffix := s.family(name)
	if f == nil {
		return nil
	}
	set := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			set[l.GetName()] = true
		}
	}
	switch {
	case f.GetType() == dto.MetricType_HISTOGRAM && suffix == "_bucket":
		set["le"] = true
	case f.GetType() == dto.MetricType_SUMMARY && suffix == "":
		set["quantile"] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Names returns every family name, sorted.
func (s *Scrape) Names() []string {
	out := make([]string, 0, len(s.Families))
	for n := range s.Families {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func sameLabels(have []*dto.LabelPair, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for _, l := range have {
		v, ok := want[l.GetName()]
		if !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}
