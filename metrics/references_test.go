package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/metrics/metricstest"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/memstore"
	"gopkg.in/yaml.v3"
)

// Files that name metrics, from this directory.
const (
	alertsFile    = "../examples/prometheus/alerts.yaml"
	dashboardFile = "../examples/grafana/dashboards/threadgate.json"
	operateDoc    = "../docs/operate.md"
)

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"job", "instance"}

// everything returns a scrape in which every metric of the package has at
// least one series (a vector without series would not be listed).
func everything(t *testing.T) *metricstest.Scrape {
	t.Helper()
	m := metrics.New(metrics.Options{})
	m.WebhookRequest(gateway.OutcomeAccepted)
	m.Event("message", false)
	m.DedupHit()
	m.RuleFired("greet")
	m.Action("reply", "ok")
	m.Handover("self", "returned")
	m.ObserveGraphCall(messenger.Call{Endpoint: "me/messages", Outcome: messenger.OutcomeRetry, HTTPStatus: 500, Duration: time.Millisecond})
	m.ObserveReload(true, 1, "abc", time.Unix(1, 0))
	if err := m.WatchQueue(gateway.NewMemoryQueue(1), 1); err != nil {
		t.Fatal(err)
	}
	m.DeadLettered(gateway.ReasonPermanent)
	m.Recovered()
	if err := m.WatchStore(memstore.New(store.Options{})); err != nil {
		t.Fatal(err)
	}
	m.ObserveRedis()("append", time.Millisecond, errors.New("down"))
	if err := m.WatchFleet(func() metrics.FleetStats { return metrics.FleetStats{} }); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s, err := metricstest.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// promFunctions are the PromQL functions and aggregations the examples may
// use; a misspelt one is an error.
var promFunctions = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "topk": true, "bottomk": true,
	"quantile": true, "rate": true, "irate": true, "increase": true, "delta": true, "deriv": true,
	"histogram_quantile": true, "absent": true, "absent_over_time": true, "max_over_time": true,
	"min_over_time": true, "avg_over_time": true, "changes": true, "resets": true, "time": true,
	"timestamp": true, "vector": true, "scalar": true, "clamp_min": true, "clamp_max": true,
	"sort": true, "sort_desc": true, "label_replace": true,
}

var (
	groupingWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	operatorWords = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true}
	// grafanaRanges are the range variables Grafana fills in.
	grafanaRanges = map[string]bool{"$__rate_interval": true, "$__interval": true, "$__range": true}
)

type token struct {
	kind byte // 'i' identifier, 'n' number, 's' string, 'r' range, 'p' punctuation or operator
	val  string
}

var (
	identRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	numberRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`)
	opRE     = regexp.MustCompile(`^(==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},])`)
)

// lexPromQL splits an expression into tokens, checking strings and ranges.
func lexPromQL(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{'s', s[i+1 : j]})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			body := s[i+1 : i+j]
			for k, part := range strings.Split(body, ":") {
				if k > 0 && part == "" {
					continue // subquery with the default step
				}
				if grafanaRanges[part] {
					continue
				}
				if _, err := model.ParseDuration(part); err != nil {
					return nil, fmt.Errorf("range [%s]: %v", body, err)
				}
			}
			out = append(out, token{'r', body})
			i += j + 1
		default:
			if m := identRE.FindString(s[i:]); m != "" {
				out = append(out, token{'i', m})
				i += len(m)
			} else if m := numberRE.FindString(s[i:]); m != "" {
				out = append(out, token{'n', m})
				i += len(m)
			} else if m := opRE.FindString(s[i:]); m != "" {
				out = append(out, token{'p', m})
				i += len(m)
			} else {
				return nil, fmt.Errorf("unexpected %q at %d", s[i:], i)
			}
		}
	}
	return out, nil
}

// promRefs is what an expression refers to.
type promRefs struct {
	metrics  []string
	labels   map[string][]string // metric → label names in its matchers
	grouping []string            // labels of by(…), without(…), on(…), …
}

// checkPromQL checks the syntax that matters for the examples — balanced
// parentheses and braces, known functions, well-formed matchers, valid
// ranges — and returns the metrics and labels an expression refers to. It
// is not a full PromQL parser (that would pull the whole Prometheus module
// into go.mod); see docs/operate.md.
func checkPromQL(expr string) (promRefs, error) {
	refs := promRefs{labels: map[string][]string{}}
	toks, err := lexPromQL(expr)
	if err != nil {
		return refs, err
	}
	if len(toks) == 0 {
		return refs, fmt.Errorf("empty expression")
	}
	depth := 0
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		next := func() token {
			if i+1 < len(toks) {
				return toks[i+1]
			}
			return token{}
		}
		switch {
		case tk.kind == 'p' && tk.val == "(":
			depth++
		case tk.kind == 'p' && tk.val == ")":
			depth--
			if depth < 0 {
				return refs, fmt.Errorf("unbalanced )")
			}
		case tk.kind == 'p' && (tk.val == "{" || tk.val == "}"):
			return refs, fmt.Errorf("a label matcher without a metric name")
		case tk.kind == 'i' && groupingWords[tk.val]:
			if n := next(); n.val != "(" {
				if tk.val == "group_left" || tk.val == "group_right" {
					continue
				}
				return refs, fmt.Errorf("%s without a label list", tk.val)
			}
			i += 2
			for ; i < len(toks) && !(toks[i].kind == 'p' && toks[i].val == ")"); i++ {
				switch toks[i].kind {
				case 'i':
					refs.grouping = append(refs.grouping, toks[i].val)
				case 'p':
					if toks[i].val != "," {
						return refs, fmt.Errorf("unexpected %q in %s(…)", toks[i].val, tk.val)
					}
				default:
					return refs, fmt.Errorf("unexpected %q in %s(…)", toks[i].val, tk.val)
				}
			}
			if i == len(toks) {
				return refs, fmt.Errorf("unclosed %s(", tk.val)
			}
		case tk.kind == 'i' && operatorWords[tk.val]:
		case tk.kind == 'i' && (next().val == "(" || (promFunctions[tk.val] && groupingWords[next().val])):
			if !promFunctions[tk.val] {
				return refs, fmt.Errorf("unknown function %s", tk.val)
			}
		case tk.kind == 'i':
			refs.metrics = append(refs.metrics, tk.val)
			if next().val != "{" {
				continue
			}
			i += 2
			for ; i < len(toks) && !(toks[i].kind == 'p' && toks[i].val == "}"); i++ {
				if i+2 >= len(toks) || toks[i].kind != 'i' || toks[i+1].kind != 'p' || toks[i+2].kind != 's' ||
					!slices.Contains([]string{"=", "!=", "=~", "!~"}, toks[i+1].val) {
					return refs, fmt.Errorf("malformed matcher in %s{…}", tk.val)
				}
				refs.labels[tk.val] = append(refs.labels[tk.val], toks[i].val)
				i += 2
				if i+1 < len(toks) && toks[i+1].kind == 'p' && toks[i+1].val == "," {
					i++
				}
			}
			if i == len(toks) {
				return refs, fmt.Errorf("unclosed %s{", tk.val)
			}
		}
	}
	if depth != 0 {
		return refs, fmt.Errorf("unbalanced (")
	}
	return refs, nil
}

// checkRefs checks that every metric an expression names is registered and
// every label it names is one that metric carries (or a target label).
func checkRefs(s *metricstest.Scrape, refs promRefs) []error {
	var errs []error
	all := slices.Clone(targetLabels)
	for _, m := range refs.metrics {
		if !s.Has(m) {
			errs = append(errs, fmt.Errorf("metric %s is not registered by the metrics package", m))
			continue
		}
		have := s.LabelNames(m)
		all = append(all, have...)
		for _, l := range refs.labels[m] {
			if !slices.Contains(have, l) && !slices.Contains(targetLabels, l) {
				errs = append(errs, fmt.Errorf("%s has no label %q (it has %q)", m, l, have))
			}
		}
	}
	for _, l := range refs.grouping {
		if !slices.Contains(all, l) {
			errs = append(errs, fmt.Errorf("grouping by %q, which none of %q carries", l, refs.metrics))
		}
	}
	return errs
}

func TestCheckPromQL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr    string
		wantErr bool
		metrics []string
	}{
		{`sum by (job) (rate(a_total{x="1", y=~"b|c"}[5m])) > 0`, false, []string{"a_total"}},
		{`histogram_quantile(0.9, sum by (le) (rate(h_bucket[$__rate_interval])))`, false, []string{"h_bucket"}},
		{`max(a / b) == 0`, false, []string{"a", "b"}},
		{`sum by (job) (a) / sum(b) without (x)`, false, []string{"a", "b"}},
		{`a > bool 1 and on (job) b`, false, []string{"a", "b"}},
		{`rate(a[5m:1m])`, false, []string{"a"}},
		{`sum(rate(a[5m])`, true, nil},
		{`rat(a[5m])`, true, nil},
		{`rate(a[5 minutes])`, true, nil},
		{`a{x="1"`, true, nil},
		{`a{x=1}`, true, nil},
		{`a{x="1}`, true, nil},
		{`{x="1"}`, true, nil},
		{`sum by job (a)`, true, nil},
		{``, true, nil},
	}
	for _, tt := range tests {
		refs, err := checkPromQL(tt.expr)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.expr, err, tt.wantErr)
		}
		if err == nil && !slices.Equal(refs.metrics, tt.metrics) {
			t.Errorf("%q: metrics %q, want %q", tt.expr, refs.metrics, tt.metrics)
		}
	}
}

func TestCheckRefs(t *testing.T) {
	t.Parallel()
	s := everything(t)
	tests := []struct {
		expr    string
		wantErr bool
	}{
		{`sum by (job, outcome) (rate(threadgate_webhook_requests_total{outcome="accepted"}[5m]))`, false},
		{`histogram_quantile(0.9, sum by (le, endpoint) (rate(threadgate_graph_request_duration_seconds_bucket[5m])))`, false},
		{`threadgate_graph_request_duration_seconds_count{endpoint="me/messages"}`, false},
		{`rate(threadgate_webhook_request_total[5m])`, true},
		{`threadgate_webhook_requests_total{result="accepted"}`, true},
		{`sum by (rule) (threadgate_webhook_requests_total)`, true},
		{`sum by (le) (threadgate_graph_request_duration_seconds_count)`, true},
	}
	for _, tt := range tests {
		refs, err := checkPromQL(tt.expr)
		if err != nil {
			t.Fatalf("%q: %v", tt.expr, err)
		}
		if errs := checkRefs(s, refs); (len(errs) > 0) != tt.wantErr {
			t.Errorf("%q: errors %v, want errors %v", tt.expr, errs, tt.wantErr)
		}
	}
}

// promTemplateFuncs are Prometheus' alert template functions, for parsing.
var promTemplateFuncs = template.FuncMap{}

func init() {
	for _, name := range []string{
		"query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml", "match",
		"title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel", "stripPort", "stripDomain",
		"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
		"toTime", "toDuration", "pathPrefix", "externalURL", "parseDuration", "now", "urlQueryEscape",
	} {
		promTemplateFuncs[name] = func(...any) any { return nil }
	}
}

// alertRules mirrors Prometheus' rule file format (model/rulefmt); unknown
// keys are errors.
type alertRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var labelRefRE = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

func TestAlertingRules(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f alertRules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	s := everything(t)
	groups, alerts := map[string]bool{}, map[string]bool{}
	covered := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || r.Record != "" {
					t.Fatalf("group %s: a rule without alert, or a recording rule", g.Name)
				}
				if !model.LegacyValidation.IsValidLabelName(r.Alert) || alerts[r.Alert] {
					t.Errorf("alert name %q is invalid or repeated", r.Alert)
				}
				alerts[r.Alert] = true
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("for: %q: %v", r.For, err)
				}
				if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" && sev != "info" {
					t.Errorf("labels.severity = %q, want warning, critical or info", sev)
				}
				for _, k := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[k]) == "" {
						t.Errorf("no annotations.%s", k)
					}
				}
				refs, err := checkPromQL(r.Expr)
				if err != nil {
					t.Fatalf("expr %q: %v", r.Expr, err)
				}
				for _, e := range checkRefs(s, refs) {
					t.Errorf("expr: %v", e)
				}
				for _, m := range refs.metrics {
					covered[m] = true
				}
				for k, text := range r.Annotations {
					// Prometheus defines these variables before expanding.
					src := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}" + text
					if _, err := template.New(k).Funcs(promTemplateFuncs).Parse(src); err != nil {
						t.Errorf("annotations.%s: %v", k, err)
					}
					for _, m := range labelRefRE.FindAllStringSubmatch(text, -1) {
						if len(refs.grouping) > 0 && !slices.Contains(refs.grouping, m[1]) {
							t.Errorf("annotations.%s reads $labels.%s, which the expression aggregates away", k, m[1])
						}
					}
				}
			})
		}
	}
	// The failures the issue names must each have an alert.
	for _, m := range []string{
		"threadgate_webhook_requests_total",
		"threadgate_graph_requests_total",
		"threadgate_queue_depth",
		"threadgate_queue_oldest_age_seconds",
		"threadgate_rules_last_reload_successful",
	} {
		if !covered[m] {
			t.Errorf("no alert reads %s", m)
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

func TestDashboard(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	s := everything(t)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: unexpected query %q", v.Name, v.Definition)
			continue
		}
		for _, e := range checkRefs(s, promRefs{metrics: []string{m[1]}, labels: map[string][]string{m[1]: {m[2]}}}) {
			t.Errorf("variable %s: %v", v.Name, e)
		}
	}
	ids := map[int]bool{}
	var panels []panel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	used := map[string]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: no title or no targets", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || !vars["datasource"] {
			t.Errorf("panel %q: the data source is not the ${datasource} variable", p.Title)
		}
		for _, tg := range p.Targets {
			for _, v := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[v[1]] && !grafanaRanges["$"+v[1]] {
					t.Errorf("panel %q: $%s is not a dashboard variable", p.Title, v[1])
				}
			}
			refs, err := checkPromQL(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: expr %q: %v", p.Title, tg.Expr, err)
				continue
			}
			for _, e := range checkRefs(s, refs) {
				t.Errorf("panel %q: %v", p.Title, e)
			}
			for _, m := range refs.metrics {
				used[m] = true
			}
		}
	}
	// Every threadgate metric worth a graph is on the dashboard, but for
	// the dead-letter and store metrics of issue 11, whose panels come with
	// the operator's side of it (branch g2-ops): remove them from this list
	// with the panels.
	for _, name := range s.Names() {
		if strings.HasPrefix(name, "threadgate_") && name != "threadgate_metrics_label_overflow_total" && name != "threadgate_rules_info" &&
			!used[name] && !used[name+"_bucket"] {
			t.Errorf("the dashboard shows no %s", name)
		}
	}
}

var metricNameRE = regexp.MustCompile(`\bthreadgate_[a-z0-9_]+\b`)

// TestOperateDocListsEveryMetric checks that docs/operate.md documents every
// threadgate metric, and names no metric that does not exist.
func TestOperateDocListsEveryMetric(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(operateDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := everything(t)
	doc := string(data)
	named := map[string]bool{}
	for _, m := range metricNameRE.FindAllString(doc, -1) {
		named[m] = true
	}
	var missing, unknown []string
	for _, name := range s.Names() {
		if strings.HasPrefix(name, "threadgate_") && !strings.Contains(doc, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	for m := range named {
		if !s.Has(m) {
			unknown = append(unknown, m)
		}
	}
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("%s does not document %q", operateDoc, missing)
	}
	if len(unknown) > 0 {
		t.Errorf("%s names metrics that do not exist: %q", operateDoc, unknown)
	}
}
