package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/store/redisstore"
)

const loadRules = `version: 1
rules:
  - name: echo
    do:
      - echo: "[bot] "
`

// gateway is the threadgate processes of one run: one, or several
// replicas on one Redis.
type gateway struct {
	dir      string
	replicas []*replica
}

// replica is one threadgate process.
type replica struct {
	cmd *exec.Cmd
	url string
	// exited is closed when the process has exited; err is then its
	// Wait error.
	exited chan struct{}
	err    error
	// logPath is the file its logs go to.
	logPath string
}

// startGateways starts n threadgate processes against the Graph API at
// graphURL, in a fresh temporary directory: in memory, with --data-dir
// there when dataDir is set, or on the Redis at redisURL when it is not
// empty, and waits until each is ready. close stops them and removes the
// directory.
func startGateways(bin, graphURL string, dataDir bool, redisURL string, n int) (*gateway, error) {
	dir, err := os.MkdirTemp("", "threadgate-load")
	if err != nil {
		return nil, fmt.Errorf("temporary directory for the gateway: %w", err)
	}
	g := &gateway{dir: dir}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(loadRules), 0o644); err != nil {
		g.close()
		return nil, fmt.Errorf("write the gateway's rules: %w", err)
	}
	env := gatewayEnv(os.Environ(), graphURL, redisURL)
	for i := range n {
		// The log level is the default (info): one line per handled
		// event, as operators run it, written to a file in the run's
		// directory.
		args := []string{"serve", "--rules", rulesPath}
		if dataDir {
			args = append(args, "--data-dir", filepath.Join(dir, "data"))
		}
		r, err := startReplica(bin, args, env, filepath.Join(dir, fmt.Sprintf("replica-%d.log", i+1)))
		if err != nil {
			g.close()
			return nil, fmt.Errorf("gateway replica %d of %d: %w", i+1, n, err)
		}
		g.replicas = append(g.replicas, r)
	}
	for i, r := range g.replicas {
		if err := r.waitReady(15 * time.Second); err != nil {
			g.close()
			return nil, fmt.Errorf("gateway replica %d of %d: %w", i+1, n, err)
		}
	}
	return g, nil
}

// gatewayEnv is the gateway's environment: the tool's own, without the
// variables that choose a store (the tool's flags choose it, and its
// report names it), with the test credentials, the sink as Graph API and
// THREADGATE_REDIS_URL when redisURL is set (in the environment, not the
// command line, where ps would show its password).
func gatewayEnv(environ []string, graphURL, redisURL string) []string {
	var env []string
	for _, kv := range environ {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "THREADGATE_REDIS_URL", "THREADGATE_DATA_DIR":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PAGE_ACCESS_TOKEN=load-test-token",
		"APP_SECRET="+secret,
		"GRAPH_API_URL="+graphURL,
		"THREADGATE_LOG_FORMAT=json",
	)
	if redisURL != "" {
		env = append(env, "THREADGATE_REDIS_URL="+redisURL)
	}
	return env
}

// startReplica starts one threadgate process with args and env, on a
// free loopback address, its logs written to logPath.
func startReplica(bin string, args, env []string, logPath string) (*replica, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append(args, "--addr", addr)...)
	cmd.Env = env
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("the gateway's log file: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	r := &replica{cmd: cmd, url: "http://" + addr, exited: make(chan struct{}), logPath: logPath}
	go func() { r.err = cmd.Wait(); logs.Close(); close(r.exited) }()
	return r, nil
}

// logTail is the end of the replica's logs, for an error.
func (r *replica) logTail() string {
	data, _ := os.ReadFile(r.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// waitReady waits until the replica answers /readyz with 200, at most
// timeout; a replica that exits or does not get ready is an error.
func (r *replica) waitReady(timeout time.Duration) error {
	for start := time.Now(); time.Since(start) < timeout; time.Sleep(50 * time.Millisecond) {
		select {
		case <-r.exited:
			return fmt.Errorf("the gateway exited at start: %v; its last logs:\n%s", r.err, r.logTail())
		default:
		}
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("the gateway did not become ready within %s; its last logs:\n%s", timeout, r.logTail())
}

// webhookURLs returns each replica's webhook URL, in replica order.
func (g *gateway) webhookURLs() []string {
	urls := make([]string, len(g.replicas))
	for i, r := range g.replicas {
		urls[i] = r.url + "/webhook"
	}
	return urls
}

// pids returns the replicas' process IDs.
func (g *gateway) pids() []int {
	pids := make([]int, len(g.replicas))
	for i, r := range g.replicas {
		pids[i] = r.cmd.Process.Pid
	}
	return pids
}

// peakRSS returns the largest peak resident set of the replicas.
func (g *gateway) peakRSS() int64 {
	var peak int64
	for _, r := range g.replicas {
		peak = max(peak, peakRSS(r.cmd.Process.Pid))
	}
	return peak
}

// waitSpread waits, at most timeout, until the replicas on Redis hold
// every partition between them, each its even share at most (the share
// the fleet balances to) and at least one: the fleet has settled.
func (g *gateway) waitSpread(timeout time.Duration) error {
	parts := redisstore.DefaultPartitions
	share := (parts + len(g.replicas) - 1) / len(g.replicas)
	var last string
	for start := time.Now(); time.Since(start) < timeout; time.Sleep(100 * time.Millisecond) {
		held, total, ok := make([]string, len(g.replicas)), 0, true
		for i, r := range g.replicas {
			n, err := r.metric("threadgate_fleet_partitions_held")
			if err != nil {
				return err
			}
			held[i] = strconv.Itoa(n)
			total += n
			ok = ok && n > 0 && n <= share
		}
		last = strings.Join(held, ", ")
		if ok && total == parts {
			return nil
		}
	}
	return fmt.Errorf("the replicas did not share the %d partitions out within %s (held: %s)", parts, timeout, last)
}

// metric reads an unlabelled integer sample from the replica's /metrics.
func (r *replica) metric(name string) (int, error) {
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("read the gateway's metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("the gateway's metric %s: %w", name, err)
			}
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read the gateway's metrics: %w", err)
	}
	return 0, fmt.Errorf("the gateway exports no %s", name)
}

// errKilled is a replica's exit when it was still running timeout after
// SIGTERM and was killed.
var errKilled = errors.New("still running after SIGTERM: killed")

// stop sends SIGTERM to every replica at once and waits for them to exit,
// killing those still running after timeout. It returns each replica's
// exit (nil for 0).
func (g *gateway) stop(timeout time.Duration) []error {
	for _, r := range g.replicas {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(timeout)
	exits := make([]error, len(g.replicas))
	for i, r := range g.replicas {
		select {
		case <-r.exited:
			exits[i] = r.err
		case <-deadline:
			_ = r.cmd.Process.Kill()
			<-r.exited
			exits[i] = errKilled
		}
	}
	return exits
}

// close kills the replicas still running and removes the directory.
func (g *gateway) close() {
	for _, r := range g.replicas {
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	os.RemoveAll(g.dir)
}
