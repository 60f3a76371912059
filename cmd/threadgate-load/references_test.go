package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/messenger"
)

// post sends body to the reference's webhook with the signature sig and
// returns the answer's status.
func post(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post to the reference: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestReferenceProcesses starts each reference as the tool does, a child
// process (this test binary, re-executed in the role by TestMain): it must
// answer a signed webhook with 200 and a badly signed one with 401, the
// forwarder must make one Send API call per accepted webhook to the sink,
// the process' CPU must be read from /proc and grow under load, and the
// process must exit 0 when the tool stops it.
func TestReferenceProcesses(t *testing.T) {
	tests := []struct {
		role      role
		wantCalls int
	}{
		{role: roleReference, wantCalls: 0},
		{role: roleForwarder, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{"load-test-token"}})
			p, err := startReference(tt.role, graph.URL, poll.Timeout)
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					p.kill()
				}
			})

			body := newWebhooks(3).next()
			if got := post(t, p.url, body, messenger.Sign([]byte(secret), body)); got != http.StatusOK {
				t.Fatalf("a signed webhook was answered %d, want 200", got)
			}
			if got := post(t, p.url, body, messenger.Sign([]byte("another secret"), body)); got != http.StatusUnauthorized {
				t.Fatalf("a badly signed webhook was answered %d, want 401", got)
			}
			if tt.wantCalls > 0 {
				graph.WaitCalls(t, fakegraph.PathMessages, tt.wantCalls)
			}
			calls := graph.Calls()
			if len(calls) != tt.wantCalls {
				t.Fatalf("the sink had %d calls, want %d: %+v", len(calls), tt.wantCalls, calls)
			}
			for _, c := range calls {
				if c.Method != http.MethodPost || c.Path != fakegraph.PathMessages || c.Version != fakegraph.Version || c.Text() != "[bot] hello" {
					t.Errorf("call %s /%s%s with text %q, want a Send API call (POST /%s%s) of \"[bot] hello\"",
						c.Method, c.Version, c.Path, c.Text(), fakegraph.Version, fakegraph.PathMessages)
				}
			}

			// The CPU is read in clock ticks: load the process until it
			// has used at least one more.
			cpu0 := processCPU(p.pid())
			poll.Until(t, "the reference process' CPU to grow under load", func() bool {
				if r := load("cpu", []string{p.url + "/webhook"}, 4, 200*time.Millisecond, newWebhooks(20)); r.non2xx+r.errors > 0 {
					t.Errorf("load: %d non-2xx, %d errors; want none", r.non2xx, r.errors)
				}
				return processCPU(p.pid()) > cpu0
			})

			stopped = true
			if err := p.stop(poll.Timeout); err != nil {
				t.Errorf("stop: %v, want exit 0", err)
			}
		})
	}
}

// serveRole refuses a role it does not know, and a forwarder without a
// sink, before it listens or prints anything.
func TestServeRoleRefuses(t *testing.T) {
	tests := []struct {
		name    string
		role    role
		sinkURL string
		wantErr string
	}{
		{name: "unknown role", role: "gateway", sinkURL: "http://127.0.0.1:1", wantErr: `THREADGATE_LOAD_ROLE="gateway": not a reference`},
		{name: "forwarder without a sink", role: roleForwarder, wantErr: "the forwarder needs the sink's URL in THREADGATE_LOAD_SINK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := serveRole(tt.role, tt.sinkURL, strings.NewReader(""), &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("serveRole: %v, want an error with %q", err, tt.wantErr)
			}
			if out.Len() > 0 {
				t.Errorf("serveRole printed %q before refusing", out.String())
			}
		})
	}
}
