package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/syncbuf"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*testing.T, *serveConfig)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c *serveConfig) {
			if c.RulesPath != "rules.yaml" || c.Addr != ":8080" || c.GraphURL != defaultGraphURL || !c.Sandbox() || c.LogFormat != "json" || c.RulesExplicit {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "memory limit", args: []string{"--memory-limit", "200MiB"}, check: func(t *testing.T, c *serveConfig) {
			if c.MemoryLimit != 200<<20 {
				t.Errorf("MemoryLimit = %d", c.MemoryLimit)
			}
		}},
		{name: "memory limit by default", check: func(t *testing.T, c *serveConfig) {
			if c.MemoryLimit != 96<<20 {
				t.Errorf("MemoryLimit = %d, want 96 MiB", c.MemoryLimit)
			}
		}},
		{name: "memory limit from env", env: map[string]string{"THREADGATE_MEMORY_LIMIT": "1GiB"}, check: func(t *testing.T, c *serveConfig) {
			if c.MemoryLimit != 1<<30 {
				t.Errorf("MemoryLimit = %d", c.MemoryLimit)
			}
		}},
		{name: "no memory limit", args: []string{"--memory-limit", "0"}, check: func(t *testing.T, c *serveConfig) {
			if c.MemoryLimit != 0 {
				t.Errorf("MemoryLimit = %d", c.MemoryLimit)
			}
		}},
		{name: "bad memory limit", args: []string{"--memory-limit", "lots"}, wantErr: `--memory-limit: "lots" is not a size such as 96MiB, 1GiB or a number of bytes`},
		{name: "no trusted proxy by default", check: func(t *testing.T, c *serveConfig) {
			if len(c.TrustedProxies) != 0 {
				t.Errorf("TrustedProxies = %q", c.TrustedProxies)
			}
		}},
		{name: "trusted proxies", args: []string{"--trusted-proxies", "10.0.0.0/8, 127.0.0.1"}, check: func(t *testing.T, c *serveConfig) {
			if strings.Join(c.TrustedProxies, "|") != "10.0.0.0/8|127.0.0.1" {
				t.Errorf("TrustedProxies = %q", c.TrustedProxies)
			}
		}},
		{name: "trusted proxies from env", env: map[string]string{"THREADGATE_TRUSTED_PROXIES": "::1"}, check: func(t *testing.T, c *serveConfig) {
			if strings.Join(c.TrustedProxies, "|") != "::1" {
				t.Errorf("TrustedProxies = %q", c.TrustedProxies)
			}
		}},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "lb.internal"}, wantErr: `--trusted-proxies: trusted proxies: "lb.internal" is neither an IP address nor a CIDR range such as 10.0.0.0/8`},
		{name: "PORT", env: map[string]string{"PORT": "9000"}, check: func(t *testing.T, c *serveConfig) {
			if c.Addr != ":9000" {
				t.Errorf("Addr = %q", c.Addr)
			}
		}},
		{name: "THREADGATE_ADDR wins over PORT", env: map[string]string{"PORT": "9000", "THREADGATE_ADDR": "127.0.0.1:7000"}, check: func(t *testing.T, c *serveConfig) {
			if c.Addr != "127.0.0.1:7000" {
				t.Errorf("Addr = %q", c.Addr)
			}
		}},
		{name: "flags win over env", args: []string{"--addr", ":1", "--rules", "x.yaml"}, env: map[string]string{"THREADGATE_ADDR": ":2", "THREADGATE_RULES": "y.yaml"}, check: func(t *testing.T, c *serveConfig) {
			if c.Addr != ":1" || c.RulesPath != "x.yaml" || !c.RulesExplicit {
				t.Errorf("got %q %q", c.Addr, c.RulesPath)
			}
		}},
		{name: "env rules", env: map[string]string{"THREADGATE_RULES": "/etc/threadgate/rules.yaml"}, check: func(t *testing.T, c *serveConfig) {
			if c.RulesPath != "/etc/threadgate/rules.yaml" || !c.RulesExplicit {
				t.Errorf("RulesPath = %q", c.RulesPath)
			}
		}},
		{name: "graph url trailing slash", env: map[string]string{"GRAPH_API_URL": "http://x/v25.0/"}, check: func(t *testing.T, c *serveConfig) {
			if c.GraphURL != "http://x/v25.0" {
				t.Errorf("GraphURL = %q", c.GraphURL)
			}
		}},
		{name: "token without secret is refused", env: map[string]string{"PAGE_ACCESS_TOKEN": "t"}, wantErr: "APP_SECRET is not"},
		{name: "token without secret, insecure", args: []string{"--insecure-skip-signature"}, env: map[string]string{"PAGE_ACCESS_TOKEN": "t"}, check: func(t *testing.T, c *serveConfig) {
			if c.Sandbox() {
				t.Error("a token means not sandbox")
			}
		}},
		{name: "bad log format", env: map[string]string{"THREADGATE_LOG_FORMAT": "xml"}, wantErr: "json or text"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "--log-level"},
		{name: "stray argument", args: []string{"rules.yaml"}, wantErr: "no arguments"},
		{name: "a pages file means live mode", env: map[string]string{"THREADGATE_PAGES_FILE": "/run/secrets/pages.yaml", "APP_SECRET": "s"},
			check: func(t *testing.T, c *serveConfig) {
				if c.Sandbox() || c.PagesFile != "/run/secrets/pages.yaml" {
					t.Errorf("Sandbox() = %v, PagesFile = %q", c.Sandbox(), c.PagesFile)
				}
			}},
		{name: "a pages file without a secret is refused", env: map[string]string{"THREADGATE_PAGES_FILE": "/p.yaml"}, wantErr: "APP_SECRET is not"},
		{name: "previous secret", env: map[string]string{"PAGE_ACCESS_TOKEN": "t", "APP_SECRET": "new", "APP_SECRET_PREVIOUS": "old"},
			check: func(t *testing.T, c *serveConfig) {
				if c.AppSecret != "new" || c.AppSecretPrevious != "old" {
					t.Errorf("secrets not read")
				}
			}},
		{name: "durability defaults", check: func(t *testing.T, c *serveConfig) {
			if c.DataDir != "" || c.RetryFor != 15*time.Minute || c.QueueBytes != 64<<20 || c.QueueSize != 10000 {
				t.Errorf("DataDir %q, RetryFor %s, QueueBytes %d, QueueSize %d", c.DataDir, c.RetryFor, c.QueueBytes, c.QueueSize)
			}
		}},
		{name: "durability flags", args: []string{"--data-dir", "/var/lib/threadgate", "--retry-for", "1h", "--queue-bytes", "2097152"}, check: func(t *testing.T, c *serveConfig) {
			if c.DataDir != "/var/lib/threadgate" || c.RetryFor != time.Hour || c.QueueBytes != 2<<20 {
				t.Errorf("DataDir %q, RetryFor %s, QueueBytes %d", c.DataDir, c.RetryFor, c.QueueBytes)
			}
		}},
		{name: "durability env", env: map[string]string{"THREADGATE_DATA_DIR": "/data", "THREADGATE_RETRY_FOR": "30s", "THREADGATE_QUEUE_BYTES": "1048576"}, check: func(t *testing.T, c *serveConfig) {
			if c.DataDir != "/data" || c.RetryFor != 30*time.Second || c.QueueBytes != 1<<20 {
				t.Errorf("DataDir %q, RetryFor %s, QueueBytes %d", c.DataDir, c.RetryFor, c.QueueBytes)
			}
		}},
		{name: "flags win over durability env", args: []string{"--data-dir", "/flag", "--retry-for", "2m"}, env: map[string]string{"THREADGATE_DATA_DIR": "/env", "THREADGATE_RETRY_FOR": "30s"}, check: func(t *testing.T, c *serveConfig) {
			if c.DataDir != "/flag" || c.RetryFor != 2*time.Minute {
				t.Errorf("DataDir %q, RetryFor %s", c.DataDir, c.RetryFor)
			}
		}},
		{name: "queue bytes under 1 MiB", args: []string{"--queue-bytes", "1000"}, wantErr: "--queue-bytes: 1000 is less than 1 MiB"},
		{name: "bad queue bytes env", env: map[string]string{"THREADGATE_QUEUE_BYTES": "64MiB"}, wantErr: "THREADGATE_QUEUE_BYTES"},
		{name: "bad retry-for env", env: map[string]string{"THREADGATE_RETRY_FOR": "forever"}, wantErr: "THREADGATE_RETRY_FOR"},
		{name: "negative retry-for", args: []string{"--retry-for", "-1s"}, wantErr: "--retry-for: -1s is negative"},
		{name: "pacing defaults", check: func(t *testing.T, c *serveConfig) {
			if c.Backlog != 0 || c.AdmitWait != time.Second {
				t.Errorf("backlog %d, admit-wait %s; want 0 (4 × workers) and 1s", c.Backlog, c.AdmitWait)
			}
		}},
		{name: "pacing flags", args: []string{"--backlog", "500", "--admit-wait", "0"}, check: func(t *testing.T, c *serveConfig) {
			if c.Backlog != 500 || c.AdmitWait != 0 {
				t.Errorf("backlog %d, admit-wait %s", c.Backlog, c.AdmitWait)
			}
		}},
		{name: "negative backlog", args: []string{"--backlog", "-1"}, wantErr: "--backlog: -1 is negative"},
		{name: "log flush default", check: func(t *testing.T, c *serveConfig) {
			if c.LogFlush != 100*time.Millisecond {
				t.Errorf("log-flush %s, want 100ms", c.LogFlush)
			}
		}},
		{name: "log flush env", env: map[string]string{"THREADGATE_LOG_FLUSH": "0"}, check: func(t *testing.T, c *serveConfig) {
			if c.LogFlush != 0 {
				t.Errorf("log-flush %s, want 0", c.LogFlush)
			}
		}},
		{name: "bad log flush", args: []string{"--log-flush", "1m"}, wantErr: "--log-flush: 1m0s"},
		{name: "admit-wait past Facebook's timeout", args: []string{"--admit-wait", "5s"}, wantErr: "--admit-wait: 5s"},
		{name: "previous secret alone is refused", env: map[string]string{"PAGE_ACCESS_TOKEN": "t", "APP_SECRET_PREVIOUS": "old"}, wantErr: "APP_SECRET_PREVIOUS is set but APP_SECRET is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, env(tt.env), io.Discard, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestServeRefusesTokenWithoutSecret(t *testing.T) {
	t.Setenv("PAGE_ACCESS_TOKEN", "some-token")
	t.Setenv("APP_SECRET", "")
	var stderr bytes.Buffer
	if code := run([]string{"serve"}, io.Discard, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), "refusing to start") || strings.Contains(stderr.String(), "some-token") {
		t.Fatalf("stderr = %q", stderr.String())
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: a\n    do: []\n  - name: a\n    match: {txt: hi}\n    do: [{echo: x}]\n"), 0o644)
	var out, errOut bytes.Buffer
	code := run([]string{"check", filepath.Join("..", "..", "examples", "rules.yaml"), bad}, &out, &errOut)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "rules.yaml: ok") {
		t.Errorf("stdout = %q", out.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want every error (at least 3), got:\n%s", errOut.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("line %q is not PATH:LINE:COL: message", l)
		}
	}
	if code := run([]string{"check", filepath.Join("..", "..", "examples", "rules.yaml")}, io.Discard, io.Discard); code != exitOK {
		t.Errorf("valid file: exit %d", code)
	}
	if code := run([]string{"check"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("no path: exit %d", code)
	}
}

func TestVersionFallsBackToTheLinkedRevision(t *testing.T) {
	// Test binaries carry no VCS stamp, like a container build.
	old := revision
	t.Cleanup(func() { revision = old })
	revision = "0123abcd"
	if v := versionString(); !strings.Contains(v, " 0123abcd ") {
		t.Fatalf("versionString() = %q, want the revision set with -X main.revision", v)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, io.Discard); code != exitOK || !strings.HasPrefix(out.String(), "threadgate ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, io.Discard, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestServeSandboxStartsAndStopsCleanly runs the real server in sandbox
// mode on the embedded rules, plays the echo case through the sandbox API,
// scrapes /metrics, and stops it as SIGTERM would.
func TestServeSandboxStartsAndStopsCleanly(t *testing.T) {
	t.Chdir(t.TempDir()) // no rules.yaml here: the embedded default is used
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr}, env(nil), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	var logs syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, nil)), &stdout, io.Discard)
	}()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz")
	resp, err := http.Post(base+"/sandbox/api/users/42/messages", "application/json", strings.NewReader(`{"text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	poll.UntilNil(t, "the echo in the conversation", func() error {
		if _, b := get(t, base+"/sandbox/api/conversations/42"); !strings.Contains(b, "[bot] hello") {
			return fmt.Errorf("conversation: %s", b)
		}
		return nil
	})
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `threadgate_rule_fires_total{rule="echo"} 1`) {
		t.Errorf("/metrics lacks the echo rule's fire:\n%s", grep(string(b), "rule"))
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after shutdown", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stdout.String(), "Open "+base+"/") {
		t.Errorf("stdout does not print the URL: %q", stdout.String())
	}
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	poll.UntilNil(t, url+" to answer 200", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// Outside sandbox mode, / is a short text page and the sandbox API does not exist.
func TestServeLiveModeHasNoPlayground(t *testing.T) {
	t.Parallel()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{"live-token"}})
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--rules", filepath.Join("..", "..", "examples", "rules.yaml")}, env(map[string]string{
		"PAGE_ACCESS_TOKEN": "live-token", "APP_SECRET": "live-secret", "GRAPH_API_URL": graph.BaseURL(),
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stdout bytes.Buffer
	go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), &stdout, io.Discard) }()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz")
	for path, want := range map[string]int{"/": 200, "/sandbox/api/state": 404, "/sandbox/api/users/1/messages": 404, "/healthz": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/" && (strings.Contains(string(b), "<html") || !strings.Contains(string(b), "threadgate")) {
			t.Errorf("GET / outside sandbox = %q, want a short text page", b)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("live mode printed a sandbox URL: %q", stdout.String())
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

// SIGTERM with a Graph API that hangs: the grace period ends, the event
// not handled is logged by mid (no data dir), and the exit is 0.
func TestServeGracePeriodOverExitsZeroAndLogsAbandoned(t *testing.T) {
	t.Parallel()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{"live-token"}})
	graph.Fault(fakegraph.Match{}, fakegraph.Answer{Hang: true})
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--grace", "200ms", "--rules", filepath.Join("..", "..", "examples", "rules.yaml")}, env(map[string]string{
		"PAGE_ACCESS_TOKEN": "live-token", "APP_SECRET": "live-secret", "GRAPH_API_URL": graph.BaseURL(),
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs syncbuf.Buffer
	go func() { done <- runServer(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard, io.Discard) }()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz")
	body := `{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"u"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m1","text":"hi"}}]}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", messenger.Sign([]byte("live-secret"), []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	graph.WaitCalls(t, fakegraph.PathMessages, 1) // the echo hangs there
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d, want %d when the grace period ran out", code, exitOK)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after its grace period")
	}
	if !strings.Contains(logs.String(), "grace period over") {
		t.Errorf("no log line says the grace period ran out:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "events abandoned") || !strings.Contains(logs.String(), `"m:m1"`) {
		t.Errorf("no log line names the abandoned event by mid:\n%s", logs.String())
	}
}

// A data dir that cannot be used stops serve with exit 2 and the store's
// message: never a silent fall-back to memory.
func TestServeRefusesABadDataDir(t *testing.T) {
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "threadgate.db"), bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string
	}{
		{"corrupt", corrupt, "damaged or not a threadgate database"},
		{"through a regular file", filepath.Join(file, "data"), "--data-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe([]string{"--addr", loopback.FreeAddr(t), "--data-dir", tt.dir, "--rules", filepath.Join("..", "..", "examples", "rules.yaml")}, env(nil), io.Discard, false)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			code := runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), tt.dir) {
				t.Errorf("exit %d, stderr %q; want exit %d and a message naming %q with %q", code, stderr.String(), exitUsage, tt.dir, tt.want)
			}
		})
	}
}
