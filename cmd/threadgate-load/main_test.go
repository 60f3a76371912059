package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/golden"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/internal/testbinary"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// threadgateBin is the threadgate binary TestMain builds, or "" with
// -short.
var threadgateBin string

func TestMain(m *testing.M) {
	if name, ok := os.LookupEnv(roleEnv); ok {
		// This test binary, re-executed as a reference by the code
		// under test (startReference runs os.Executable).
		os.Exit(roleMain(name))
	}
	testbinary.Main(m, "../threadgate", &threadgateBin)
}

// graphCalls matches each run's line of expected and received Graph calls.
var graphCalls = regexp.MustCompile(`(?m)^graph calls: expected (\d+) .*, received (\d+)$`)

// checkGraphCalls checks that the report has runs lines of Graph calls,
// each with as many received as expected, and more than none.
func checkGraphCalls(t *testing.T, report string, runs int) {
	t.Helper()
	ms := graphCalls.FindAllStringSubmatch(report, -1)
	if len(ms) != runs {
		t.Fatalf("%d lines of Graph calls, want one per run (%d):\n%s", len(ms), runs, report)
	}
	for _, m := range ms {
		if m[1] != m[2] || m[1] == "0" {
			t.Errorf("expected and received Graph calls differ or are zero (%s, %s):\n%s", m[1], m[2], report)
		}
	}
}

// TestLoadToolRuns runs a short load against the real threadgate binary
// and the two references: the tool must report every target, and every
// accepted webhook's Graph call must reach the sink.
func TestLoadToolRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the threadgate binary; skipped with -short")
	}
	tests := []struct {
		name    string
		dataDir bool
		gateway string
	}{
		{name: "memory", gateway: "threadgate (memory)"},
		{name: "data dir", dataDir: true, gateway: "threadgate (data dir)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(options{bin: threadgateBin, conns: 4, duration: 300 * time.Millisecond, users: 20, settle: 20 * time.Second,
				dataDir: tt.dataDir, replicas: 1, runs: 1}, &out)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			report := out.String()
			for _, want := range []string{"reference net/http", "bare forwarder", tt.gateway, "gateway peak RSS", "gateway exit after SIGTERM: 0", cpuRatioText} {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q:\n%s", want, report)
				}
			}
			if strings.Contains(report, "redis-server cpu/req") || strings.Contains(report, "summary of") {
				t.Errorf("a one-run report without Redis has a Redis line or a summary:\n%s", report)
			}
			if strings.Contains(report, "(in tool)") || strings.Contains(report, cpuRatioText+"n/a") {
				t.Errorf("a reference's CPU was not read from its own process:\n%s", report)
			}
			checkGraphCalls(t, report, 1)
		})
	}
}

// redisServerBin returns the redis-server on PATH, skipping the test when
// there is none outside CI, as internal/redistest does.
func redisServerBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not installed, and CI=true requires it (apt-get install redis-server): %v", err)
		}
		t.Skip("redis-server is not installed (apt-get install redis-server); skipping a test that needs a real Redis")
	}
	return bin
}

// TestLoadToolOnRedis runs short loads against real threadgate binaries on
// a real Redis: two replicas on a redis-server the tool starts, twice,
// and one replica on a Redis given by URL. Every run must spread its
// connections over the replicas, deliver every accepted webhook's Graph
// call, and report Redis's CPU when the tool started it.
func TestLoadToolOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the threadgate binary; skipped with -short")
	}
	base := options{bin: threadgateBin, conns: 4, duration: 300 * time.Millisecond, users: 20, settle: 20 * time.Second}
	tests := []struct {
		name     string
		opts     func(t *testing.T) options
		runs     int
		want     []string
		replicas int
	}{
		{
			name: "tool's redis-server, 2 replicas, 2 runs",
			opts: func(t *testing.T) options {
				o := base
				o.redisServer, o.replicas, o.runs = redisServerBin(t), 2, 2
				return o
			},
			replicas: 2,
			want: []string{"threadgate (redis, 2 replicas)", "redis-server cpu/req: ", "summary of 2 runs",
				"gateway exit after SIGTERM: 4 of 4 processes exited 0", "threadgate + redis-server cpu/req", "--appendfsync always"},
		},
		{
			name: "-redis-url, 1 replica",
			opts: func(t *testing.T) options {
				o := base
				o.redisURL, o.replicas, o.runs = redistest.Start(t, redistest.Options{}).URL(), 1, 1
				return o
			},
			replicas: 1,
			want:     []string{"threadgate (redis, 1 replica)", "on the Redis of -redis-url (nothing flushed)", "gateway exit after SIGTERM: 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts(t)
			if err := o.validate(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := run(o, &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			report := out.String()
			for _, want := range tt.want {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q:\n%s", want, report)
				}
			}
			checkGraphCalls(t, report, o.runs)
			if strings.Contains(report, "redis://") {
				t.Errorf("report names the Redis URL:\n%s", report)
			}
			if tt.replicas > 1 {
				per := regexp.MustCompile(`(?m)^requests per replica \(connection i to replica i mod \d+\): (.*)$`).FindAllStringSubmatch(report, -1)
				if len(per) != o.runs {
					t.Fatalf("%d lines of requests per replica, want %d:\n%s", len(per), o.runs, report)
				}
				for _, m := range per {
					counts := strings.Split(m[1], ", ")
					if len(counts) != tt.replicas || slices.Contains(counts, "0") {
						t.Errorf("requests per replica %q: want %d replicas, each with some", m[1], tt.replicas)
					}
				}
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{name: "defaults", args: []string{"-bin", "/tg"},
			want: options{bin: "/tg", conns: 32, duration: 10 * time.Second, users: 1000, settle: 2 * time.Minute, replicas: 1, runs: 1}},
		{name: "three replicas on the tool's Redis, three runs, Markdown",
			args: []string{"-bin", "/tg", "-c", "64", "-d", "60s", "-redis-server", "redis-server", "-replicas", "3", "-runs", "3", "-markdown"},
			want: options{bin: "/tg", conns: 64, duration: time.Minute, users: 1000, settle: 2 * time.Minute, redisServer: "redis-server", replicas: 3, runs: 3, markdown: true}},
		{name: "a Redis URL", args: []string{"-bin", "/tg", "-redis-url", "redis://:pw@127.0.0.1:6379/2", "-replicas", "2"},
			want: options{bin: "/tg", conns: 32, duration: 10 * time.Second, users: 1000, settle: 2 * time.Minute, redisURL: "redis://:pw@127.0.0.1:6379/2", replicas: 2, runs: 1}},
		{name: "data dir", args: []string{"-bin", "/tg", "-data-dir"},
			want: options{bin: "/tg", conns: 32, duration: 10 * time.Second, users: 1000, settle: 2 * time.Minute, dataDir: true, replicas: 1, runs: 1}},
		{name: "no binary", args: nil, wantErr: "-bin is required"},
		{name: "no connections", args: []string{"-bin", "/tg", "-c", "0"}, wantErr: "-c must be at least 1"},
		{name: "no duration", args: []string{"-bin", "/tg", "-d", "0s"}, wantErr: "-d must be positive"},
		{name: "no users", args: []string{"-bin", "/tg", "-users", "0"}, wantErr: "-users must be at least 1"},
		{name: "no settle", args: []string{"-bin", "/tg", "-settle", "0s"}, wantErr: "-settle must be positive"},
		{name: "no runs", args: []string{"-bin", "/tg", "-runs", "0"}, wantErr: "-runs must be at least 1"},
		{name: "no replicas", args: []string{"-bin", "/tg", "-replicas", "0"}, wantErr: "-replicas must be at least 1"},
		{name: "replicas in memory", args: []string{"-bin", "/tg", "-replicas", "2"}, wantErr: "-replicas above 1 needs Redis"},
		{name: "replicas with a data dir", args: []string{"-bin", "/tg", "-replicas", "2", "-data-dir"}, wantErr: "-replicas above 1 needs Redis"},
		{name: "data dir and Redis URL", args: []string{"-bin", "/tg", "-data-dir", "-redis-url", "redis://127.0.0.1:6379/0"}, wantErr: "-data-dir and Redis"},
		{name: "data dir and redis-server", args: []string{"-bin", "/tg", "-data-dir", "-redis-server", "redis-server"}, wantErr: "-data-dir and Redis"},
		{name: "both Redis flags", args: []string{"-bin", "/tg", "-redis-url", "redis://127.0.0.1:6379/0", "-redis-server", "redis-server"},
			wantErr: "-redis-url and -redis-server are both set"},
		{name: "not a Redis URL, password not repeated", args: []string{"-bin", "/tg", "-redis-url", "http://:hunter2@127.0.0.1:6379"},
			wantErr: "-redis-url: redisstore: the Redis URL is not valid"},
		{name: "an argument", args: []string{"-bin", "/tg", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "an unknown flag", args: []string{"-bin", "/tg", "-x"}, wantErr: "flag provided but not defined: -x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var usage bytes.Buffer
			got, err := parseFlags(tt.args, &usage)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %v, want one with %q and without the password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if got != tt.want {
				t.Errorf("options\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// An unknown flag is printed with the usage by the flag package, and
// marked so that main does not print it again.
func TestParseFlagsUnknownFlagPrintsUsage(t *testing.T) {
	var usage bytes.Buffer
	_, err := parseFlags([]string{"-nope"}, &usage)
	if !errors.As(err, new(printedError)) {
		t.Fatalf("error %v, want a printedError", err)
	}
	for _, want := range []string{"flag provided but not defined: -nope", "usage: threadgate-load", "give it a\ndedicated Redis", "connection i goes to\nreplica i mod N"} {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, usage.String())
		}
	}
}

func TestGatewayEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "THREADGATE_REDIS_URL=redis://elsewhere:6379/0", "THREADGATE_DATA_DIR=/data", "HOME=/home/u"}
	tests := []struct {
		name     string
		redisURL string
		want     []string
	}{
		{name: "memory", want: []string{"PATH=/bin", "HOME=/home/u", "PAGE_ACCESS_TOKEN=load-test-token", "APP_SECRET=" + secret, "GRAPH_API_URL=http://sink", "THREADGATE_LOG_FORMAT=json"}},
		{name: "Redis", redisURL: "redis://127.0.0.1:7000/0", want: []string{"PATH=/bin", "HOME=/home/u", "PAGE_ACCESS_TOKEN=load-test-token", "APP_SECRET=" + secret,
			"GRAPH_API_URL=http://sink", "THREADGATE_LOG_FORMAT=json", "THREADGATE_REDIS_URL=redis://127.0.0.1:7000/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gatewayEnv(environ, "http://sink", tt.redisURL); !slices.Equal(got, tt.want) {
				t.Errorf("gatewayEnv\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestLoadSpreadsConnectionsRoundRobin drives two servers with four
// connections: each must see requests from at most two connections (0 and
// 2, or 1 and 3), and the counts per target must be the servers' own.
func TestLoadSpreadsConnectionsRoundRobin(t *testing.T) {
	type server struct {
		srv      *httptest.Server
		requests atomic.Int64
		mu       sync.Mutex
		conns    map[string]bool
	}
	var servers []*server
	var urls []string
	for range 2 {
		s := &server{conns: map[string]bool{}}
		s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			reference(w, r)
		}))
		s.srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
			if state == http.StateNew {
				s.mu.Lock()
				s.conns[c.RemoteAddr().String()] = true
				s.mu.Unlock()
			}
		}
		s.srv.Start()
		t.Cleanup(s.srv.Close)
		servers = append(servers, s)
		urls = append(urls, s.srv.URL+"/webhook")
	}
	res := load("two", urls, 4, 100*time.Millisecond, newWebhooks(10))
	if res.non2xx != 0 || res.errors != 0 {
		t.Fatalf("%d non-2xx, %d errors; want none", res.non2xx, res.errors)
	}
	for i, s := range servers {
		s.mu.Lock()
		conns := len(s.conns)
		s.mu.Unlock()
		if got := int(s.requests.Load()); got == 0 || got != res.perTarget[i] {
			t.Errorf("server %d had %d requests, the tool counted %d; want the same, more than none", i, got, res.perTarget[i])
		}
		if conns == 0 || conns > 2 {
			t.Errorf("server %d had %d connections, want 1 or 2 of the 4", i, conns)
		}
	}
}

// Two invocations on one Redis must not send the same message ID: the
// gateway would drop the second as a duplicate.
func TestWebhooksMessageIDsDifferBetweenInvocations(t *testing.T) {
	mid := regexp.MustCompile(`"mid":"([^"]+)"`)
	a, b := newWebhooks(5), newWebhooks(5)
	ma, mb := mid.FindSubmatch(a.next()), mid.FindSubmatch(b.next())
	if ma == nil || mb == nil {
		t.Fatalf("no mid in the webhooks")
	}
	if bytes.Equal(ma[1], mb[1]) {
		t.Errorf("both invocations' first message ID is %s", ma[1])
	}
}

func TestMedian(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{name: "one", in: []float64{3}, want: 3},
		{name: "odd, unsorted", in: []float64{9, 1, 5}, want: 5},
		{name: "even: mean of the middle two", in: []float64{4, 1, 2, 10}, want: 3},
		{name: "an infinite value counts as the largest", in: []float64{inf, 1, 2}, want: 2},
		{name: "an infinite middle", in: []float64{inf, inf, 2}, want: inf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
	if got := medianDuration([]float64{inf, inf, 1}); got != time.Duration(math.MaxInt64) {
		t.Errorf("medianDuration of an infinite middle = %v, want math.MaxInt64", got)
	}
}

func TestPrinterCount(t *testing.T) {
	tests := []struct {
		in       float64
		text, md string
	}{
		{in: 0, text: "0", md: "0"},
		{in: 999.4, text: "999", md: "999"},
		{in: 999.5, text: "1000", md: "1,000"},
		{in: 131129, text: "131129", md: "131,129"},
		{in: 1234567, text: "1234567", md: "1,234,567"},
		{in: -1234, text: "-1234", md: "-1,234"},
	}
	for _, tt := range tests {
		text, md := (&printer{}).count(tt.in), (&printer{markdown: true}).count(tt.in)
		if text != tt.text || md != tt.md {
			t.Errorf("count(%v) = %q, %q in Markdown; want %q, %q", tt.in, text, md, tt.text, tt.md)
		}
	}
}

// fixture is a phase's result with a given rate, latencies spread evenly
// from lat/100 to lat, and CPU per request of the tool, of the target's
// processes and of redis-server (-1 for none).
func fixture(name string, rps int, lat time.Duration, tool, target, redis time.Duration) *result {
	r := &result{name: name, requests: rps, elapsed: time.Second, drained: true, perTarget: []int{rps},
		toolCPU: tool * time.Duration(rps), targetCPU: target * time.Duration(rps), redisCPU: -1}
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, lat*time.Duration(i)/100)
	}
	if redis >= 0 {
		r.redisCPU = redis * time.Duration(rps)
	}
	return r
}

// fixtureRuns returns three runs of a gateway on Redis with two replicas:
// the second has 503s, a drain that did not end and a replica that was
// killed, the third a forwarder whose CPU read as zero.
func fixtureRuns() []*runResult {
	var runs []*runResult
	for i, c := range []struct {
		gwRPS   int
		fwdCPU  time.Duration
		non2xx  int
		drain   time.Duration
		drained bool
		exit    error
	}{
		{gwRPS: 1200, fwdCPU: 100 * time.Microsecond, drain: 350 * time.Millisecond, drained: true},
		{gwRPS: 1000, fwdCPU: 120 * time.Microsecond, non2xx: 152, drain: 20 * time.Second, exit: errKilled},
		{gwRPS: 1500, fwdCPU: 0, drain: 500 * time.Microsecond, drained: true},
	} {
		rr := &runResult{
			ref: fixture("reference net/http", 20000+1000*i, 3*time.Millisecond, 30*time.Microsecond, 20*time.Microsecond, -1),
			fwd: fixture("bare forwarder", 10000+500*i, 6*time.Millisecond, 40*time.Microsecond, c.fwdCPU, -1),
			gw:  fixture("threadgate (redis, 2 replicas)", c.gwRPS, 30*time.Millisecond, 80*time.Microsecond, 600*time.Microsecond, 400*time.Microsecond),
		}
		rr.fwd.drain = 10 * time.Millisecond
		rr.gw.non2xx = c.non2xx
		rr.gw.drain, rr.gw.drained = c.drain, c.drained
		rr.gw.perTarget = []int{c.gwRPS / 2, c.gwRPS - c.gwRPS/2}
		rr.expected = int64(c.gwRPS - c.non2xx)
		rr.received = rr.expected
		rr.peakRSS = int64(40+i) << 20
		rr.exits = []error{nil, c.exit}
		runs = append(runs, rr)
	}
	return runs
}

// TestReportGolden prints fixed results as text and Markdown, one run in
// memory and three on Redis with the summary.
func TestReportGolden(t *testing.T) {
	memory := fixtureRuns()[0]
	memory.gw = fixture("threadgate (memory)", 5000, 8*time.Millisecond, 40*time.Microsecond, 110*time.Microsecond, -1)
	memory.gw.drain, memory.gw.drained = 200*time.Microsecond, true
	memory.expected, memory.received, memory.exits = 5000, 5000, []error{nil}
	onRedis := options{conns: 64, duration: time.Minute, users: 1000, settle: 2 * time.Minute, redisServer: "redis-server", replicas: 2, runs: 3}
	tests := []struct {
		name string
		o    options
		runs []*runResult
	}{
		{name: "memory", o: options{conns: 64, duration: time.Minute, users: 1000, settle: 2 * time.Minute, replicas: 1, runs: 1}, runs: []*runResult{memory}},
		{name: "redis-runs", o: onRedis, runs: fixtureRuns()},
	}
	for _, tt := range tests {
		for _, markdown := range []bool{false, true} {
			ext := ".txt"
			if markdown {
				ext = ".md"
			}
			t.Run(tt.name+ext, func(t *testing.T) {
				var out bytes.Buffer
				printReport(&out, tt.o, markdown, tt.runs)
				golden.Check(t, filepath.Join("testdata", tt.name+ext+".golden"), out.String(), *update)
			})
		}
	}
}

// printReport prints runs as run does, on a machine of two CPUs.
func printReport(w io.Writer, o options, markdown bool, runs []*runResult) {
	p := &printer{w: w, markdown: markdown}
	printSetup(p, o, 2)
	for i, rr := range runs {
		printRun(p, o, i, rr)
	}
	if len(runs) > 1 {
		printSummary(p, o, runs)
	}
	printLegend(p, o)
}

func TestRatios(t *testing.T) {
	runs := fixtureRuns()
	tests := []struct {
		name              string
		rr                *runResult
		vsFwd, redisVsFwd float64
		withRedis         time.Duration
	}{
		// gateway 600µs, Redis 400µs, forwarder 100µs.
		{name: "forwarder measured", rr: runs[0], vsFwd: 6, withRedis: time.Millisecond, redisVsFwd: 10},
		// The forwarder's CPU read as zero: nothing to divide by.
		{name: "forwarder at zero", rr: runs[2], vsFwd: math.NaN(), withRedis: time.Millisecond, redisVsFwd: math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.rr.ratios()
			if c.withRedis != tt.withRedis {
				t.Errorf("withRedis = %v, want %v", c.withRedis, tt.withRedis)
			}
			for _, f := range []struct {
				what      string
				got, want float64
			}{{"vsForwarder", c.vsForwarder, tt.vsFwd}, {"withRedisVsForwarder", c.withRedisVsForwarder, tt.redisVsFwd}} {
				if math.IsNaN(f.want) != math.IsNaN(f.got) || (!math.IsNaN(f.want) && math.Abs(f.got-f.want) > 1e-9) {
					t.Errorf("%s = %v, want %v", f.what, f.got, f.want)
				}
			}
		})
	}
	if c := (&runResult{fwd: fixture("fwd", 100, time.Millisecond, 0, 100*time.Microsecond, -1),
		gw: fixture("gw", 100, time.Millisecond, 0, 110*time.Microsecond, -1)}).ratios(); c.withRedis != -1 || !math.IsNaN(c.withRedisVsForwarder) {
		t.Errorf("without a redis-server: withRedis %v, ratio %v; want -1 and NaN", c.withRedis, c.withRedisVsForwarder)
	}
}
