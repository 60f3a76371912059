// Command threadgate-load measures the gateway under load on this machine.
//
// It starts a Graph API sink (a local HTTP server that answers every Graph
// call with success and counts them), starts the threadgate binary as a child
// process pointed at the sink, and starts two references, each a child
// process of its own (the tool's executable re-executed with
// THREADGATE_LOAD_ROLE set): a bare net/http handler that only reads the
// body, checks the HMAC and answers 200, and a bare forwarder that does the
// same and then makes one Graph call per event (the least any gateway that
// answers must do). It sends signed webhooks (one text message each, from
// many users) with N connections for D seconds to each in turn, and prints
// for each: requests per second, p50/p99 latency, non-2xx answers, how long
// its queue took to drain after the load stopped (until the sink had every
// Graph call the accepted webhooks cause), the CPU its own process used per
// request (read from /proc/PID/stat, over the load and the drain; the
// gateway's summed over its replicas), and the CPU the tool itself (load
// generator and sink) used per request; for the gateway also the Graph
// calls expected vs received and its peak RSS. It ends with the gateway's
// CPU per request divided by the bare forwarder's, both measured the same
// way in the same run.
//
// The gateway runs in memory, with --data-dir in a temporary directory
// (-data-dir), or on Redis (-redis-url, or -redis-server to have the tool
// start its own redis-server), then with -replicas N as N processes on the
// same Redis, the load's connections spread over them round-robin as an L4
// load balancer spreads them. -runs K repeats the whole measurement K times
// with a fresh gateway each time and ends with the medians; -markdown prints
// the tables as Markdown.
//
//	go build -o /tmp/threadgate ./cmd/threadgate
//	go run ./cmd/threadgate-load -bin /tmp/threadgate -c 32 -d 10s
//	go run ./cmd/threadgate-load -bin /tmp/threadgate -c 32 -d 10s -data-dir
//	go run ./cmd/threadgate-load -bin /tmp/threadgate -c 32 -d 10s -redis-server redis-server -replicas 3 -runs 3 -markdown
//
// Every address it uses is on the loopback interface; the run is bounded in
// time and stops by itself.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/store/redisstore"
)

const secret = "load-test-app-secret"

// options are the tool's command line.
type options struct {
	bin      string
	conns    int
	duration time.Duration
	users    int
	settle   time.Duration
	// dataDir runs the gateway with --data-dir in a temporary directory.
	dataDir bool
	// redisURL runs the gateway on this Redis (THREADGATE_REDIS_URL);
	// redisServer, instead, is the redis-server binary the tool starts
	// for each run.
	redisURL, redisServer string
	// replicas is the number of gateway processes (more than one only on
	// Redis).
	replicas int
	// runs is how many times the whole measurement is repeated.
	runs int
	// markdown prints the tables as Markdown.
	markdown bool
}

// onRedis reports whether the gateway runs on Redis.
func (o options) onRedis() bool { return o.redisURL != "" || o.redisServer != "" }

const usageHead = `usage: threadgate-load -bin PATH [flags]

Measures the threadgate binary under load against two references that run
as child processes of this tool (a bare net/http handler and a bare
forwarder), all against a local Graph API sink, on the loopback interface.

The gateway runs in memory, or with -data-dir, or on Redis: -redis-url URL
runs it with THREADGATE_REDIS_URL=URL and flushes nothing, so give it a
dedicated Redis (or DB) that nothing else uses; -redis-server PATH starts a
redis-server for each run instead, on a free loopback port in a temporary
directory, with --appendonly yes --appendfsync always --save "". With
-replicas N the tool starts N gateway processes on that Redis and spreads
its connections over them round-robin per connection (connection i goes to
replica i mod N), as an L4 load balancer does.

flags:
`

// parseFlags reads the command line; usage receives the help text and the
// flag package's own errors.
func parseFlags(args []string, usage io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("threadgate-load", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprint(usage, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.bin, "bin", "", "path to the threadgate binary to measure (required)")
	fs.IntVar(&o.conns, "c", 32, "concurrent connections")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long to send to each target")
	fs.IntVar(&o.users, "users", 1000, "distinct senders the webhooks come from")
	fs.DurationVar(&o.settle, "settle", 2*time.Minute, "how long to wait, at most, for each target's Graph calls after the load (the wait ends as soon as they all arrived)")
	fs.BoolVar(&o.dataDir, "data-dir", false, "run the gateway with --data-dir in a temporary directory (the durable store) instead of in memory")
	fs.StringVar(&o.redisURL, "redis-url", "", "run the gateway on this Redis (THREADGATE_REDIS_URL); nothing is flushed: give a dedicated Redis or DB")
	fs.StringVar(&o.redisServer, "redis-server", "", "start this redis-server binary (e.g. redis-server) for each run, on a free loopback port in a temporary directory, with AOF appendfsync always, and run the gateway on it")
	fs.IntVar(&o.replicas, "replicas", 1, "gateway processes on the same Redis; connection i goes to replica i mod N (more than 1 needs -redis-url or -redis-server)")
	fs.IntVar(&o.runs, "runs", 1, "repeat the whole measurement this many times, with a fresh gateway each time, then print the medians")
	fs.BoolVar(&o.markdown, "markdown", false, "print the tables as Markdown")
	if err := fs.Parse(args); err != nil {
		return options{}, printedError{err}
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

// printedError is a command-line error the flag package has already
// printed, with the usage.
type printedError struct{ error }

func (e printedError) Unwrap() error { return e.error }

// validate reports the first contradiction or missing value in o.
func (o options) validate() error {
	switch {
	case o.bin == "":
		return errors.New("-bin is required: the threadgate binary to measure")
	case o.conns <= 0:
		return errors.New("-c must be at least 1")
	case o.duration <= 0:
		return errors.New("-d must be positive")
	case o.users <= 0:
		return errors.New("-users must be at least 1")
	case o.settle <= 0:
		return errors.New("-settle must be positive")
	case o.runs <= 0:
		return errors.New("-runs must be at least 1")
	case o.replicas <= 0:
		return errors.New("-replicas must be at least 1")
	case o.redisURL != "" && o.redisServer != "":
		return errors.New("-redis-url and -redis-server are both set: give a Redis, or let the tool start one")
	case o.dataDir && o.onRedis():
		return errors.New("-data-dir and Redis (-redis-url or -redis-server) are both set: the gateway takes one store")
	case o.replicas > 1 && !o.onRedis():
		return errors.New("-replicas above 1 needs Redis (-redis-url or -redis-server): replicas share their state there")
	}
	if o.redisURL != "" {
		if err := redisstore.CheckURL(o.redisURL); err != nil {
			return fmt.Errorf("-redis-url: %w", err)
		}
	}
	return nil
}

func main() {
	if name, ok := os.LookupEnv(roleEnv); ok {
		// Re-executed by the tool as one of its references.
		os.Exit(roleMain(name))
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.As(err, new(printedError)) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "threadgate-load:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "threadgate-load:", err)
		os.Exit(1)
	}
}

// result is what one load phase measured.
type result struct {
	name      string
	requests  int
	non2xx    int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration
	// perTarget counts the requests sent to each of the phase's URLs
	// (the gateway's replicas).
	perTarget []int
	// drain is how long the sink took, after the load stopped, to receive
	// the Graph calls of every accepted webhook; 0 for a target that
	// makes none.
	drain time.Duration
	// drained is false when the calls were still missing after -settle.
	drained bool
	// toolCPU is the CPU this process (load generator and sink) used
	// from the start of the load to the end of the drain; targetCPU the
	// CPU of the target's own processes over the same time (summed over
	// the gateway's replicas); redisCPU that of the redis-server the tool
	// started, or -1.
	toolCPU, targetCPU, redisCPU time.Duration
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) accepted() int64 { return int64(r.requests - r.non2xx - r.errors) }

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * p)
	return r.latencies[i]
}

// cpuPerRequest divides cpu by the phase's requests; 0 without requests.
func (r *result) cpuPerRequest(cpu time.Duration) time.Duration {
	if r.requests == 0 {
		return 0
	}
	return cpu / time.Duration(r.requests)
}

// waitCalls waits until the sink has received n calls, or settle has
// passed, and reports whether it received them.
func waitCalls(s *sink, n int64, settle time.Duration) bool {
	deadline := time.Now().Add(settle)
	for s.calls.Load() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// bench is what every run shares: the options, the sink and the
// webhooks' source.
type bench struct {
	o       options
	sink    *sink
	hooks   *webhooks
	sinkURL string
}

// measure runs the load against urls, then waits until the sink has
// received the Graph calls the accepted webhooks cause (calls(accepted)),
// and records the drain time and the CPU used. pids are the target's
// processes; redisPID is the redis-server the tool started, or 0.
func (b *bench) measure(name string, urls []string, calls func(accepted int64) int64, pids []int, redisPID int) *result {
	before := b.sink.calls.Load()
	tool0, target0, redis0 := selfCPU(), processesCPU(pids), processCPU(redisPID)
	r := load(name, urls, b.o.conns, b.o.duration, b.hooks)
	stop := time.Now()
	r.drained = waitCalls(b.sink, before+calls(r.accepted()), b.o.settle)
	r.drain = time.Since(stop)
	if calls(r.accepted()) == 0 {
		r.drain = 0
	}
	r.toolCPU = selfCPU() - tool0
	r.targetCPU, r.redisCPU = processesCPU(pids)-target0, -1
	if redisPID != 0 {
		r.redisCPU = processCPU(redisPID) - redis0
	}
	return r
}

// once runs the whole measurement once: a fresh gateway (and redis-server,
// with -redis-server), then the reference, the bare forwarder and the
// gateway in turn, each reference a fresh process that stops after its
// phase.
func (b *bench) once() (_ *runResult, err error) {
	redisURL, redisPID := b.o.redisURL, 0
	if b.o.redisServer != "" {
		rs, err := startRedis(b.o.redisServer)
		if err != nil {
			return nil, err
		}
		defer func() {
			if stopErr := rs.stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		redisURL, redisPID = rs.url(), rs.pid()
	}
	gw, err := startGateways(b.o.bin, b.sinkURL, b.o.dataDir, redisURL, b.o.replicas)
	if err != nil {
		return nil, err
	}
	defer gw.close()

	none := func(int64) int64 { return 0 }
	one := func(accepted int64) int64 { return accepted }
	rr := &runResult{}
	if rr.ref, err = b.measureReference(roleReference, "reference net/http", none); err != nil {
		return nil, err
	}
	if rr.fwd, err = b.measureReference(roleForwarder, "bare forwarder", one); err != nil {
		return nil, err
	}
	if redisURL != "" {
		// The replicas share the partitions out while the references
		// run; a fleet still settling would measure the takeover.
		if err := gw.waitSpread(30 * time.Second); err != nil {
			return nil, err
		}
	}
	before := b.sink.calls.Load()
	rr.gw = b.measure(gatewayName(b.o), gw.webhookURLs(), one, gw.pids(), redisPID)
	rr.expected = rr.gw.accepted()
	rr.received = b.sink.calls.Load() - before
	rr.peakRSS = gw.peakRSS()
	rr.exits = gw.stop(30 * time.Second)
	return rr, nil
}

// measureReference starts the reference r as a child process, measures
// it as name (calls as in measure) and stops it.
func (b *bench) measureReference(r role, name string, calls func(accepted int64) int64) (_ *result, err error) {
	p, err := startReference(r, b.sinkURL, 15*time.Second)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stopErr := p.stop(30 * time.Second); stopErr != nil && err == nil {
			err = fmt.Errorf("stop the %s: %w", r, stopErr)
		}
	}()
	return b.measure(name, []string{p.url + "/webhook"}, calls, []int{p.pid()}, 0), nil
}

// gatewayName labels the gateway's line of the report.
func gatewayName(o options) string {
	switch {
	case o.onRedis() && o.replicas == 1:
		return "threadgate (redis, 1 replica)"
	case o.onRedis():
		return fmt.Sprintf("threadgate (redis, %d replicas)", o.replicas)
	case o.dataDir:
		return "threadgate (data dir)"
	}
	return "threadgate (memory)"
}

func run(o options, out io.Writer) error {
	b := &bench{o: o, sink: &sink{}, hooks: newWebhooks(o.users)}
	sinkSrv, sinkURL, err := listen(b.sink)
	if err != nil {
		return err
	}
	defer sinkSrv.Close()
	b.sinkURL = sinkURL

	p := &printer{w: out, markdown: o.markdown}
	printSetup(p, o, runtime.NumCPU())
	var runs []*runResult
	for i := range o.runs {
		rr, err := b.once()
		if err != nil {
			return fmt.Errorf("run %d of %d: %w", i+1, o.runs, err)
		}
		runs = append(runs, rr)
		printRun(p, o, i, rr)
	}
	if len(runs) > 1 {
		printSummary(p, o, runs)
	}
	printLegend(p, o)
	for i, rr := range runs {
		if rr.received < rr.expected {
			return fmt.Errorf("run %d: the gateway did not make the Graph call of every accepted webhook within -settle %s: %d accepted, %d Graph calls received", i+1, o.settle, rr.expected, rr.received)
		}
	}
	return nil
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processesCPU is the CPU time the processes pids have used, summed.
func processesCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += processCPU(pid)
	}
	return sum
}

// processCPU is the CPU time (user and system, every thread) a child
// process has used, read from /proc/PID/stat (Linux; 0 elsewhere or for
// pid 0).
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15
	// of the line, in clock ticks (100 per second on Linux).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// peakRSS reads the high-water mark of a process's resident set (Linux).
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// sink stands in for the Graph API: every call succeeds and is counted.
type sink struct{ calls atomic.Int64 }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if strings.HasSuffix(r.URL.Path, "/messages") {
		s.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"recipient_id":"1","message_id":"m_1"}`)
		return
	}
	io.WriteString(w, `{"success":true}`)
}

func listen(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String(), nil
}

// webhooks makes the signed-over bodies of the load: one text message
// each, from users senders in turn. Every message ID carries a random
// prefix of this invocation, so that a Redis used by an earlier invocation
// (which the tool does not flush) holds no dedup key that drops them.
type webhooks struct {
	prefix string
	users  int64
	seq    atomic.Int64
}

func newWebhooks(users int) *webhooks {
	return &webhooks{prefix: "m_load_" + rand.Text()[:10] + "_", users: int64(users)}
}

// next returns the body of the next webhook.
func (h *webhooks) next() []byte {
	n := h.seq.Add(1)
	now := time.Now().UnixMilli()
	return fmt.Appendf(nil, `{"object":"page","entry":[{"id":"111","time":%d,"messaging":[{"sender":{"id":"u%d"},"recipient":{"id":"111"},"timestamp":%d,"message":{"mid":"%s%d","text":"hello number %d"}}]}]}`,
		now, n%h.users, now, h.prefix, n, n)
}

// load sends webhooks with conns connections for d: connection i sends
// to urls[i mod len(urls)], as an L4 load balancer spreads connections
// over replicas. Each connection is one sender with a keep-alive TCP
// connection of its own (dialled again only if the target closes it).
func load(name string, urls []string, conns int, d time.Duration, hooks *webhooks) *result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	res := &result{name: name, perTarget: make([]int, len(urls))}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		target := i % len(urls)
		url := urls[target]
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			var lat []time.Duration
			var reqs, non2xx, errs int
			for ctx.Err() == nil {
				b := hooks.next()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Hub-Signature-256", messenger.Sign([]byte(secret), b))
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				reqs++
				if err != nil {
					errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					non2xx++
				}
				lat = append(lat, d)
			}
			mu.Lock()
			res.requests += reqs
			res.perTarget[target] += reqs
			res.non2xx += non2xx
			res.errors += errs
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	sort.Slice(res.latencies, func(i, j int) bool { return res.latencies[i] < res.latencies[j] })
	return res
}
