package durability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/poll"
)

// memoryCeiling is the most resident memory the gateway may reach in the
// tests below (issue 11: the shipped Kubernetes limit is 256 MiB, the
// request 64 MiB).
const memoryCeiling = 128 << 20

// How the memory tests measure, and why.
//
// They run the real binary and read its peak resident set (VmHWM in
// /proc/PID/status) once the load is over: the figure the issue states
// and the one the kernel's OOM killer and the container's limit act on.
// In-process measures (runtime.ReadMemStats sampled in the test binary)
// would count the load generator and the Graph API fake too, miss
// allocations between samples, and leave out what the runtime holds but
// does not count as heap.
//
// A binary built with -race keeps shadow memory for every byte of the
// heap (several times its size) and runs 5–20× slower; its VmHWM says
// nothing about the production binary, and 200,000 events would take
// minutes on the 2-core CI machine. Under -race these tests skip; .ci/run
// runs them without it (go test ./tests/...), as the README says.

// graphSink stands in for the Graph API when every call must succeed and
// only their number matters: the fake of internal/fakegraph records every
// call with its body, which for 200,000 calls would weigh hundreds of MiB in
// the test process.
type graphSink struct {
	calls atomic.Int64
	hang  atomic.Bool
	// released is closed to let the calls that hang go on.
	mu       sync.Mutex
	released chan struct{}
}

func newGraphSink(t *testing.T) (*graphSink, string) {
	s := &graphSink{released: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.heal()
		srv.Close()
	})
	return s, srv.URL + "/v26.0"
}

func (s *graphSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if s.hang.Load() {
		s.mu.Lock()
		released := s.released
		s.mu.Unlock()
		select {
		case <-released:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.HasSuffix(r.URL.Path, "/me/messages") {
		s.calls.Add(1)
		io.WriteString(w, `{"recipient_id":"1","message_id":"m_1"}`)
		return
	}
	io.WriteString(w, `{"success":true}`)
}

// heal stops the hang and releases the calls that hang.
func (s *graphSink) heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang.Swap(false) {
		close(s.released)
	}
}

// peakRSS reads the process' peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM: %q", line)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// postAll sends the webhooks with conns connections; a webhook answered
// 503 (queue full) is sent again after a pause, as Facebook does, until
// it is accepted, and onRefused (when not nil) is called the first time
// it is refused. It returns how many were answered 503 at least once.
func (g *gateway) postAll(t *testing.T, conns int, bodies <-chan []byte, onRefused func()) (refused int64) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	var wg sync.WaitGroup
	var failed atomic.Value
	var n503 atomic.Int64
	for range conns {
		wg.Go(func() {
			for b := range bodies {
				for try := 0; ; try++ {
					status, err := g.post(client, b)
					if err == nil && status == http.StatusOK {
						break
					}
					if err == nil && status == http.StatusServiceUnavailable && try < 2000 {
						if try == 0 {
							n503.Add(1)
							if onRefused != nil {
								onRefused()
							}
						}
						time.Sleep(20 * time.Millisecond)
						continue
					}
					failed.CompareAndSwap(nil, fmt.Sprintf("status %d, %v", status, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("a webhook was not accepted: %s", f)
	}
	return n503.Load()
}

// helpRules answers only "help" and "agent": the messages of
// TestMemoryWith200000Users fire no rule and cause no Graph API call, yet
// each leaves a conversation state behind (its owner, its times, and,
// since a rule reads .Transcript, the user's text in the transcript), as an
// answered one does.
const helpRules = `version: 1
rules:
  - name: help
    match:
      text: help
    do:
      - reply: "How can I help?"
  - name: agent
    match:
      text: agent
    do:
      - reply: 'You wrote: {{ .Transcript | join " / " }}'
`

// TestMemoryWith200000Users sends one message from each of 200,000
// distinct users (in memory mode) and checks that the gateway's peak
// resident memory stays under the ceiling: conversation states are
// bounded by count, and dedup keys too.
func TestMemoryWith200000Users(t *testing.T) {
	needBinary(t)
	skipUnderRace(t)
	const users, perWebhook = 200_000, 1000
	_, graphURL := newGraphSink(t)
	g := startReady(t, graphURL, writeRules(t, helpRules))

	bodies := make(chan []byte, 4)
	go func() {
		defer close(bodies)
		var b bytes.Buffer
		now := time.Now().UnixMilli()
		for first := 0; first < users; first += perWebhook {
			b.Reset()
			fmt.Fprintf(&b, `{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[`, pageID, now)
			for u := first; u < first+perWebhook && u < users; u++ {
				if u > first {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"sender":{"id":"%d"},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":"m_mem_%d","text":"hello from user number %d"}}`,
					7_000_000_000_000_000+u, pageID, now, u, u)
			}
			b.WriteString(`]}]}`)
			bodies <- bytes.Clone(b.Bytes())
		}
	}()
	refused := g.postAll(t, 4, bodies, nil)
	g.waitQueueEmpty(t)
	rss := peakRSS(t, g.cmd.Process.Pid)
	t.Logf("200,000 users: peak RSS %.1f MiB (ceiling %d MiB); %d webhooks of %d events refused with 503 at first",
		float64(rss)/(1<<20), memoryCeiling>>20, refused, perWebhook)
	if rss >= memoryCeiling {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(rss)/(1<<20), memoryCeiling>>20)
	}
}

// waitQueueEmpty waits until the gateway's /metrics says no event waits.
func (g *gateway) waitQueueEmpty(t *testing.T) {
	t.Helper()
	poll.UntilNil(t, "an empty queue (threadgate_queue_depth 0)", func() error {
		resp, err := http.Get(g.url + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "threadgate_queue_depth "); ok {
				if v != "0" {
					return fmt.Errorf("threadgate_queue_depth %s", v)
				}
				return nil
			}
		}
		return fmt.Errorf("no threadgate_queue_depth in /metrics")
	})
}

// gotItRules answers every event.
const gotItRules = `version: 1
rules:
  - name: any
    do:
      - reply: "Got it."
`

// TestMemoryWithFlood sends 1,500 webhooks of about 900 KB each, one
// message per webhook from 50 users, while the Graph API hangs, so that they
// queue; then it heals the Graph API. The gateway keeps of a queued event
// only what rules and actions read (an attachment's type and URL, not its
// whole payload) and bounds its queue in bytes (a 503 beyond it): its peak
// resident memory stays under the ceiling, and every accepted message is
// answered.
func TestMemoryWithFlood(t *testing.T) {
	needBinary(t)
	skipUnderRace(t)
	const events, size = 1500, 900 << 10
	filler, _ := json.Marshal(strings.Repeat("x", size))
	for _, tt := range []struct {
		name string
		// message is the JSON of the message carrying the filler.
		message func(i int) string
	}{
		{name: "attachment payloads", message: func(i int) string {
			return fmt.Sprintf(`{"mid":"m_flood_%d","attachments":[{"type":"image","payload":{"url":"https://cdn.example.com/%d.jpg","filler":%s}}]}`, i, i, filler)
		}},
		// Messenger lets a person send at most 20,000 characters; a
		// signed webhook may carry more: the decoder keeps 20,000.
		{name: "long texts", message: func(i int) string {
			return fmt.Sprintf(`{"mid":"m_flood_%d","text":%s}`, i, filler)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink, graphURL := newGraphSink(t)
			sink.hang.Store(true)
			// The queue is to fill up to its bound: no pacing, which
			// would hold each webhook for --admit-wait while the Graph
			// API hangs and no room is made.
			g := startReady(t, graphURL, writeRules(t, gotItRules), "--admit-wait", "0")
			bodies := make(chan []byte, 2)
			go func() {
				defer close(bodies)
				now := time.Now().UnixMilli()
				for i := range events {
					bodies <- fmt.Appendf(nil, `{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":"flood-%d"},"recipient":{"id":%q},"timestamp":%d,"message":%s}]}]}`,
						pageID, now, i%50, pageID, now, tt.message(i))
				}
				sink.heal()
			}()
			// While the Graph API hangs, a full queue would refuse for
			// ever: it is healed at the first 503, or once every webhook
			// was handed out.
			refused := g.postAll(t, 4, bodies, sink.heal)
			poll.UntilNil(t, "every accepted message answered", func() error {
				if n := sink.calls.Load(); n < events {
					return fmt.Errorf("%d of %d answers", n, events)
				}
				return nil
			})
			rss := peakRSS(t, g.cmd.Process.Pid)
			t.Logf("1,500 webhooks of 900 KB (%s): peak RSS %.1f MiB (ceiling %d MiB); %d refused with 503 at first",
				tt.name, float64(rss)/(1<<20), memoryCeiling>>20, refused)
			if rss >= memoryCeiling {
				t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(rss)/(1<<20), memoryCeiling>>20)
			}
		})
	}
}
