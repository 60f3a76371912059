package redisfleet_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/syncbuf"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/internal/testbinary"
)

// threadgateBin is the threadgate binary TestMain builds ("" with -short).
var threadgateBin string

func TestMain(m *testing.M) {
	testbinary.Main(m, "../../cmd/threadgate", &threadgateBin)
}

// process is a threadgate binary serving as one replica.
type process struct {
	name string
	base string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	exit chan error
}

// startProcess starts `threadgate serve` on Redis, against the fake Graph
// API.
func startProcess(t *testing.T, name, rulesPath, redisURL string, graph *fakegraph.Server) *process {
	t.Helper()
	addr := loopback.FreeAddr(t)
	p := &process{name: name, base: "http://" + addr, logs: &syncbuf.Buffer{}, exit: make(chan error, 1)}
	p.cmd = exec.Command(threadgateBin, "serve", "--addr", addr, "--rules", rulesPath, "--log-level", "warn", "--insecure-skip-signature")
	p.cmd.Env = append(os.Environ(), "PAGE_ACCESS_TOKEN="+fleetToken, "GRAPH_API_URL="+graph.BaseURL(), "THREADGATE_REDIS_URL="+redisURL, "APP_SECRET=")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exit
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.logs.String())
		}
	})
	poll.Until(t, name+" ready", func() bool { return httpStatus(p.base+"/readyz") == http.StatusOK })
	return p
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *process) post(body string) int {
	resp, err := http.Post(p.base+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric reads one unlabelled sample of the replica's /metrics.
func (p *process) metric(name string) (float64, error) {
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", p.name, name)
}

// heldBy returns the partitions each process holds, waiting until they
// hold the 64 between them, each some.
func heldBy(t *testing.T, procs []*process) map[*process]float64 {
	t.Helper()
	out := map[*process]float64{}
	poll.UntilNil(t, "the 64 partitions spread over the processes", func() error {
		total := 0.0
		for _, p := range procs {
			n, err := p.metric("threadgate_fleet_partitions_held")
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%s holds none", p.name)
			}
			out[p] = n
			total += n
		}
		if total != 64 {
			return fmt.Errorf("held %v, want 64 in all", out)
		}
		return nil
	})
	return out
}

// TestKill9OfAReplicaWhileTheGraphAPIHangs runs three threadgate binaries
// on one Redis, has the Graph API hang while they hold events, kills one
// with SIGKILL, and checks that the other two take its partitions over and
// answer every acknowledged message.
func TestKill9OfAReplicaWhileTheGraphAPIHangs(t *testing.T) {
	t.Parallel()
	if threadgateBin == "" {
		t.Skip("-short: the threadgate binary is not built")
	}
	redis := redistest.Start(t, redistest.Options{})
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{fleetToken}})
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(echoRules), 0o600); err != nil {
		t.Fatal(err)
	}
	var procs []*process
	for i := range 3 {
		procs = append(procs, startProcess(t, fmt.Sprintf("process-%d", i), rulesPath, redis.URL(), graph))
	}
	held := heldBy(t, procs)

	clear := graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	const users, messages = 24, 3
	for m := range messages {
		for u := range users {
			p := procs[(u+m)%len(procs)]
			if code := p.post(envelope(textEvent(fmt.Sprintf("user%02d", u), nextMID(), fmt.Sprintf("m%d", m)))); code != http.StatusOK {
				t.Fatalf("%s answered %d, want 200", p.name, code)
			}
		}
	}
	poll.Until(t, "the processes calling the Graph API", func() bool {
		return len(graph.CallsTo(fakegraph.PathMessages)) >= 8
	})
	victim := procs[0]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exit
	victim.exit <- nil // for the cleanup
	rest := procs[1:]
	start := time.Now()
	heldBy(t, rest)
	t.Logf("the survivors hold every partition %v after the kill", time.Since(start).Round(100*time.Millisecond))
	clear()
	graph.Release()
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		poll.UntilNil(t, user+"'s replies", func() error { return inOrder(graph.Texts(user), messages) })
	}
	taken := 0.0
	for _, p := range rest {
		n, err := p.metric("threadgate_fleet_partitions_taken_over_total")
		if err != nil {
			t.Fatal(err)
		}
		taken += n
	}
	if taken < held[victim] {
		t.Errorf("%v partitions taken over, want at least the %v the killed process held", taken, held[victim])
	}
	for _, p := range rest {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-p.exit; err != nil {
			t.Errorf("%s after SIGTERM: %v", p.name, err)
		}
		p.exit <- nil
	}
}
