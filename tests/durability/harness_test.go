// Package durability holds the fault tests of issue 11 that need the real
// threadgate binary: kill -9 and SIGTERM with a data dir, data dirs that
// cannot be opened, the dead-letter commands against a running gateway, and
// the ceiling on memory. Each test starts the binary (built once, in
// TestMain, with the test's own build settings) against the fake Graph API
// of internal/fakegraph and talks to it over real HTTP.
package durability

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/syncbuf"

	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/testbinary"
	"github.com/threadgate/threadgate/messenger"
)

// threadgateBin is the binary TestMain builds, or "" with -short.
var threadgateBin string

func TestMain(m *testing.M) {
	testbinary.Main(m, "../../cmd/threadgate", &threadgateBin)
}

const (
	pageToken = "durability-test-token"
	appSecret = "durability-test-secret"
	pageID    = "111"
)

// echoRules answers every message with "[bot] " and its text.
const echoRules = `version: 1
rules:
  - name: echo
    do:
      - echo: "[bot] "
`

// gateway is one run of the threadgate binary.
type gateway struct {
	cmd    *exec.Cmd
	url    string
	addr   string
	stderr *syncbuf.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's error, once done is closed
}

// needBinary skips the test under -short, where TestMain built nothing.
func needBinary(t *testing.T) {
	t.Helper()
	if threadgateBin == "" {
		t.Skip("runs the threadgate binary; skipped with -short")
	}
}

// writeRules writes a rules file into a new temporary directory.
func writeRules(t *testing.T, rules string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs `threadgate serve` in live mode against the Graph API at
// graphURL (a versioned base URL) with the rules file and extra flags, and
// does not wait for it to be ready. The process is killed when the test
// ends, and its log is shown when the test failed.
func start(t *testing.T, graphURL, rulesPath string, flags ...string) *gateway {
	t.Helper()
	addr := loopback.FreeAddr(t)
	args := append([]string{"serve", "--rules", rulesPath, "--addr", addr, "--log-level", "warn", "--watch", "off"}, flags...)
	cmd := exec.Command(threadgateBin, args...)
	cmd.Env = append(os.Environ(),
		"PAGE_ACCESS_TOKEN="+pageToken,
		"APP_SECRET="+appSecret,
		"GRAPH_API_URL="+graphURL,
		"THREADGATE_LOG_FORMAT=json",
		"THREADGATE_DATA_DIR=",
	)
	g := &gateway{cmd: cmd, url: "http://" + addr, addr: addr, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout = g.stderr
	cmd.Stderr = g.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.err = cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-g.done
		if t.Failed() {
			t.Logf("threadgate %s log:\n%s", strings.Join(args, " "), g.stderr.String())
		}
	})
	return g
}

// startReady starts the gateway and waits until /readyz answers 200.
func startReady(t *testing.T, graphURL, rulesPath string, flags ...string) *gateway {
	t.Helper()
	g := start(t, graphURL, rulesPath, flags...)
	poll.UntilNil(t, "threadgate ready", func() error {
		select {
		case <-g.done:
			return fmt.Errorf("threadgate exited (%v): %s", g.err, g.stderr.String())
		default:
		}
		resp, err := http.Get(g.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		return nil
	})
	return g
}

// exited waits for the process to exit by itself and returns its exit
// code; it fails the test if it is still running after poll.Timeout.
func (g *gateway) exited(t *testing.T) int {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(poll.Timeout):
		t.Fatalf("threadgate still running after %s", poll.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(g.err, &exit) {
		return exit.ExitCode()
	}
	if g.err != nil {
		t.Fatalf("threadgate: %v", g.err)
	}
	return 0
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (g *gateway) kill9(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.done
}

// messageBody is a webhook carrying one text message per (user, text).
func messageBody(user, mid, text string) []byte {
	now := time.Now().UnixMilli()
	return fmt.Appendf(nil, `{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":%q}}]}]}`,
		pageID, now, user, pageID, now, mid, text)
}

// post sends a signed webhook and returns the HTTP status.
func (g *gateway) post(client *http.Client, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, g.url+"/webhook", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", messenger.Sign([]byte(appSecret), body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sendMessages sends perUser text messages from each of users, each user's
// one after the other (so their order is defined), the users at once. It
// returns the texts each user sent whose webhook was answered 200, in
// order, and fails the test on any other answer.
func (g *gateway) sendMessages(t *testing.T, prefix string, users, perUser int) map[string][]string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	sent := make(map[string][]string)
	var errs []error
	var wg sync.WaitGroup
	for u := range users {
		user := fmt.Sprintf("%s-u%d", prefix, u)
		wg.Go(func() {
			for i := range perUser {
				text := fmt.Sprintf("%s #%03d", user, i)
				status, err := g.post(client, messageBody(user, fmt.Sprintf("m_%s_%d", user, i), text))
				mu.Lock()
				if err == nil && status == http.StatusOK {
					sent[user] = append(sent[user], text)
				} else if len(errs) < 5 {
					errs = append(errs, fmt.Errorf("%s: status %d, %v", text, status, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("webhooks not accepted: %v", errs)
	}
	return sent
}

// deliveries checks what the Graph API received against what was
// acknowledged: every acknowledged message's echo arrived, and each user's
// echoes arrived in the order the messages were sent (a text sent again,
// as at-least-once allows after a crash, is counted and not an error as
// long as its first arrival is in order). echoes are the texts the Graph API
// received per user, in order of arrival. It returns how many texts arrived
// more than once.
func deliveries(t *testing.T, sent map[string][]string, echoes func(user string) []string) (twice int) {
	t.Helper()
	for user, texts := range sent {
		got := echoes(user)
		seen := make(map[string]bool)
		var firsts []string
		for _, e := range got {
			if seen[e] {
				twice++
				continue
			}
			seen[e] = true
			firsts = append(firsts, e)
		}
		want := make([]string, len(texts))
		for i, s := range texts {
			want[i] = "[bot] " + s
		}
		if strings.Join(firsts, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: the Graph API received (first arrivals)\n%s\nwant, in this order,\n%s", user, strings.Join(firsts, "\n"), strings.Join(want, "\n"))
		}
	}
	return twice
}

// countAll is how many messages sent holds.
func countAll(sent map[string][]string) int {
	n := 0
	for _, texts := range sent {
		n += len(texts)
	}
	return n
}
