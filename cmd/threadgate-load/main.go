// Command threadgate-load measures the gateway under load on this machine.
//
// It starts a Graph API sink (a local HTTP server that answers every Graph
// call with success and counts them), starts the threadgate binary as a child
// process pointed at the sink, and starts two references: a bare net/http
// handler that only reads the body, checks the HMAC and answers 200, and a
// bare forwarder that does the same and then makes one Graph call per event
// (the least any gateway that answers must do). It sends signed webhooks (one
// text message each, from many users) with N connections for D seconds to
// each in turn, and prints for each: requests per second, p50/p99 latency,
// non-2xx answers, how long its queue took to drain after the load stopped
// (until the sink had every Graph call the accepted webhooks cause), and the
// CPU it used per request; for the gateway also the Graph calls expected vs
// received and its peak RSS. With -data-dir the gateway runs with
// --data-dir in a temporary directory (the durable store) instead of in
// memory.
//
//	go build -o /tmp/threadgate ./cmd/threadgate
//	go run ./cmd/threadgate-load -bin /tmp/threadgate -c 32 -d 10s
//	go run ./cmd/threadgate-load -bin /tmp/threadgate -c 32 -d 10s -data-dir
//
// Every address it uses is on the loopback interface; the run is bounded in
// time and stops by itself.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/messenger"
)

const secret = "load-test-app-secret"

type options struct {
	bin      string
	conns    int
	duration time.Duration
	users    int
	settle   time.Duration
	// dataDir runs the gateway with --data-dir in a temporary directory.
	dataDir bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "path to the threadgate binary to measure (required)")
	flag.IntVar(&o.conns, "c", 32, "concurrent connections")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "how long to send to each target")
	flag.IntVar(&o.users, "users", 1000, "distinct senders the webhooks come from")
	flag.DurationVar(&o.settle, "settle", 2*time.Minute, "how long to wait, at most, for each target's Graph calls after the load (the wait ends as soon as they all arrived)")
	flag.BoolVar(&o.dataDir, "data-dir", false, "run the gateway with --data-dir in a temporary directory (the durable store) instead of in memory")
	flag.Parse()
	if o.bin == "" || o.conns <= 0 || o.duration <= 0 || o.users <= 0 {
		flag.Usage()
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
	// drain is how long the sink took, after the load stopped, to receive
	// the Graph calls of every accepted webhook; 0 for a target that
	// makes none.
	drain time.Duration
	// drained is false when the calls were still missing after -settle.
	drained bool
	// toolCPU is the CPU this process (load generator, sink, and the
	// references, which run in it) used from the start of the load to the
	// end of the drain; targetCPU the CPU of the target's own process, or
	// -1 for a reference, which has none.
	toolCPU, targetCPU time.Duration
}

func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r *result) accepted() int64 { return int64(r.requests - r.non2xx - r.errors) }

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

// measure runs the load against url, then waits until the sink has
// received calls more calls (the Graph calls the accepted webhooks cause:
// calls(accepted)), and records the drain time and the CPU used. pid is
// the target's process, 0 for a reference running in this one.
func measure(name, url string, o options, s *sink, calls func(accepted int64) int64, pid int) *result {
	before := s.calls.Load()
	tool0, target0 := selfCPU(), processCPU(pid)
	r := load(name, url, o)
	stop := time.Now()
	r.drained = waitCalls(s, before+calls(r.accepted()), o.settle)
	r.drain = time.Since(stop)
	if calls(r.accepted()) == 0 {
		r.drain = 0
	}
	r.toolCPU = selfCPU() - tool0
	r.targetCPU = -1
	if pid != 0 {
		r.targetCPU = processCPU(pid) - target0
	}
	return r
}

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * p)
	return r.latencies[i]
}

func run(o options, out io.Writer) error {
	sink := newSink()
	sinkSrv, sinkURL, err := listen(sink)
	if err != nil {
		return err
	}
	defer sinkSrv.Close()

	refSrv, refURL, err := listen(http.HandlerFunc(reference))
	if err != nil {
		return err
	}
	defer refSrv.Close()

	fwd := newForwarder(sinkURL)
	defer fwd.close()
	fwdSrv, fwdURL, err := listen(fwd)
	if err != nil {
		return err
	}
	defer fwdSrv.Close()

	gw, gwURL, cleanup, err := startGateway(o.bin, sinkURL, o.dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	defer gw.Process.Kill()

	none := func(int64) int64 { return 0 }
	one := func(accepted int64) int64 { return accepted }
	ref := measure("reference net/http", refURL+"/webhook", o, sink, none, 0)
	fwdRes := measure("bare forwarder", fwdURL+"/webhook", o, sink, one, 0)
	before := sink.calls.Load()
	gwName := "threadgate (memory)"
	if o.dataDir {
		gwName = "threadgate (data dir)"
	}
	gwRes := measure(gwName, gwURL+"/webhook", o, sink, one, gw.Process.Pid)
	accepted := gwRes.accepted()
	gwCalls := sink.calls.Load() - before
	rss := peakRSS(gw.Process.Pid)
	_ = gw.Process.Signal(syscall.SIGTERM)
	exitErr := gw.Wait()

	mode := "in memory"
	if o.dataDir {
		mode = "with --data-dir (durable store)"
	}
	fmt.Fprintf(out, "machine: %d CPUs, %d connections, %s per target, %d users; gateway %s\n\n",
		runtime.NumCPU(), o.conns, o.duration, o.users, mode)
	fmt.Fprintf(out, "%-22s %10s %10s %10s %8s %8s %10s %12s %12s\n", "target", "req/s", "p50", "p99", "non-2xx", "errors", "drain", "cpu/req", "tool cpu/req")
	for _, r := range []*result{ref, fwdRes, gwRes} {
		drain := r.drain.Round(time.Millisecond).String()
		if r.drain < time.Millisecond {
			drain = "< 1ms" // the target kept up: nothing was queued at the end
		}
		if !r.drained {
			drain = "> " + o.settle.String()
		}
		target := "(in tool)"
		if r.targetCPU >= 0 {
			target = perRequest(r.targetCPU, r.requests)
		}
		fmt.Fprintf(out, "%-22s %10.0f %10s %10s %8d %8d %10s %12s %12s\n", r.name, r.rps(), r.percentile(0.50).Round(time.Microsecond),
			r.percentile(0.99).Round(time.Microsecond), r.non2xx, r.errors, drain, target, perRequest(r.toolCPU, r.requests))
	}
	fmt.Fprintf(out, "\nthreadgate/reference: req/s %.2fx, p99 %.2fx\n", gwRes.rps()/ref.rps(),
		float64(gwRes.percentile(0.99))/float64(max(ref.percentile(0.99), 1)))
	fmt.Fprintf(out, "bare forwarder/reference: req/s %.2fx, p99 %.2fx (the floor of any gateway that makes one Graph call per event here)\n",
		fwdRes.rps()/ref.rps(), float64(fwdRes.percentile(0.99))/float64(max(ref.percentile(0.99), 1)))
	fmt.Fprintln(out, "drain: from the end of the load until the sink had the Graph call of every accepted webhook")
	fmt.Fprintln(out, "cpu/req: the gateway process' CPU (user+system) per request, load and drain; tool cpu/req: this process' (load generator, sink, and the references, which run in it)")
	fmt.Fprintf(out, "graph calls: expected %d (one echo per accepted webhook), received %d\n", accepted, gwCalls)
	fmt.Fprintf(out, "gateway peak RSS: %.1f MiB\n", float64(rss)/(1<<20))
	if exitErr != nil {
		fmt.Fprintf(out, "gateway exit after SIGTERM: %v\n", exitErr)
	} else {
		fmt.Fprintln(out, "gateway exit after SIGTERM: 0")
	}
	if gwCalls < accepted {
		return fmt.Errorf("the gateway did not make the Graph call of every accepted webhook within -settle %s: %d accepted, %d Graph calls received", o.settle, accepted, gwCalls)
	}
	return nil
}

// perRequest formats the CPU time spent per request.
func perRequest(cpu time.Duration, requests int) string {
	if requests == 0 {
		return "-"
	}
	return (cpu / time.Duration(requests)).Round(100 * time.Nanosecond).String()
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time (user and system) a child process has used,
// read from /proc/PID/stat (Linux; 0 elsewhere or for pid 0).
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

// reference is the bare handler the gateway is compared with: read the body,
// check the HMAC, answer 200.
func reference(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if messenger.VerifySignature(body, r.Header.Get("X-Hub-Signature-256"), []byte(secret)) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	io.WriteString(w, "EVENT_RECEIVED")
}

// forwarder is the second reference: the least any gateway must do per
// event. It reads the body, checks the HMAC, queues the event and answers
// 200; 64 workers then make one Send API call per event to the sink. No
// decoding, rules, ordering or retries.
type forwarder struct {
	queue  chan []byte
	client *http.Client
	url    string
	wg     sync.WaitGroup
}

func newForwarder(sinkURL string) *forwarder {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	f := &forwarder{queue: make(chan []byte, 10000), client: &http.Client{Transport: t, Timeout: 10 * time.Second},
		url: sinkURL + "/v26.0/me/messages?access_token=load-test-token"}
	for range 64 {
		f.wg.Go(f.work)
	}
	return f
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if messenger.VerifySignature(body, r.Header.Get("X-Hub-Signature-256"), []byte(secret)) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	select {
	case f.queue <- body:
		io.WriteString(w, "EVENT_RECEIVED")
	default:
		http.Error(w, "queue full", http.StatusServiceUnavailable)
	}
}

func (f *forwarder) work() {
	for range f.queue {
		resp, err := f.client.Post(f.url, "application/json",
			strings.NewReader(`{"recipient":{"id":"1"},"messaging_type":"RESPONSE","message":{"text":"[bot] hello"}}`))
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (f *forwarder) close() { close(f.queue); f.wg.Wait() }

// sink stands in for the Graph API: every call succeeds and is counted.
type sink struct{ calls atomic.Int64 }

func newSink() *sink { return &sink{} }

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

const loadRules = `version: 1
rules:
  - name: echo
    do:
      - echo: "[bot] "
`

// startGateway starts the threadgate binary against the Graph API at
// graphURL, with --data-dir in a temporary directory when dataDir is set,
// and waits until it is ready. cleanup removes the temporary directory.
func startGateway(bin, graphURL string, dataDir bool) (_ *exec.Cmd, url string, cleanup func(), _ error) {
	dir, err := os.MkdirTemp("", "threadgate-load")
	if err != nil {
		return nil, "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	cmd, url, err := startGatewayIn(dir, bin, graphURL, dataDir)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return cmd, url, cleanup, nil
}

func startGatewayIn(dir, bin, graphURL string, dataDir bool) (*exec.Cmd, string, error) {
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(loadRules), 0o644); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve", "--rules", rulesPath, "--addr", addr, "--log-level", "warn"}
	if dataDir {
		args = append(args, "--data-dir", filepath.Join(dir, "data"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"PAGE_ACCESS_TOKEN=load-test-token",
		"APP_SECRET="+secret,
		"GRAPH_API_URL="+graphURL,
		"THREADGATE_LOG_FORMAT=json",
	)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	for start := time.Now(); time.Since(start) < 15*time.Second; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, url, nil
			}
		}
	}
	cmd.Process.Kill()
	return nil, "", errors.New("the gateway did not become ready within 15s")
}

var seq atomic.Int64

func body(users int) []byte {
	n := seq.Add(1)
	user := n % int64(users)
	return fmt.Appendf(nil, `{"object":"page","entry":[{"id":"111","time":%d,"messaging":[{"sender":{"id":"u%d"},"recipient":{"id":"111"},"timestamp":%d,"message":{"mid":"m_load_%d","text":"hello number %d"}}]}]}`,
		time.Now().UnixMilli(), user, time.Now().UnixMilli(), n, n)
}

func load(name, url string, o options) *result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var mu sync.Mutex
	res := &result{name: name}
	var wg sync.WaitGroup
	start := time.Now()
	for range o.conns {
		wg.Go(func() {
			var lat []time.Duration
			var reqs, non2xx, errs int
			for ctx.Err() == nil {
				b := body(o.users)
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
