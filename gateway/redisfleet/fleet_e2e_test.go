package redisfleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/gateway/redisfleet"
	"github.com/threadgate/threadgate/internal/fakeclock"
	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/redisstore"
)

// These tests run three gateways in-process on one real redis-server, each
// behind its own HTTP server, against the fake Graph API: webhooks are
// posted to any of them, as a load balancer would, and the fleet must
// behave as one gateway.

const (
	fleetToken   = "fleet-page-token-value"
	fleetAppID   = "1000000000000001"
	fleetPage    = "111222333444555"
	zendeskApp   = "200646160103180"
	pageInboxApp = "263902037430900"
	partitions   = 8
)

const echoRules = `version: 1
rules:
  - name: echo
    do: [echo: "[bot] "]
`

const pauseRules = `version: 1
apps: {zendesk: 200646160103180, page_inbox: 263902037430900}
handover: {pause_on_human: 30m}
rules:
  - name: echo
    do: [echo: "[bot] "]
`

const returnRules = `version: 1
apps: {zendesk: 200646160103180}
handover: {return_after_idle: 2h}
rules:
  - name: agent
    match: {text: agent}
    do:
      - reply: "Connecting you."
      - pass_thread_control: zendesk
  - name: welcome-back
    match: {event: returned}
    do: [reply: "I'm back."]
  - name: echo
    do: [echo: "[bot] "]
`

// quickRetries retries within milliseconds.
var quickRetries = retry.Policy{
	Transient:   retry.Backoff{Base: 2 * time.Millisecond, Cap: 20 * time.Millisecond},
	RateLimited: retry.Backoff{Base: 20 * time.Millisecond, Cap: 40 * time.Millisecond, Floor: 0.5},
	Budget:      time.Minute,
}

// fleetOptions configure a fleet of replicas.
type fleetOptions struct {
	rules    string
	leaseTTL time.Duration // default 3 s
	now      func() time.Time
	redis    redistest.Options
}

// fleet is three replicas on one Redis and one fake Graph API.
type fleet struct {
	t        *testing.T
	redis    *redistest.Server
	graph    *fakegraph.Server
	replicas []*replica
}

// replica is one gateway of the fleet, with its own store client,
// consumer and HTTP server.
type replica struct {
	name   string
	store  *redisstore.Store
	cons   *redisstore.Consumer
	src    *redisfleet.Source
	gw     *gateway.Gateway
	srv    *httptest.Server
	cancel context.CancelFunc
	gone   atomic.Bool
}

func newFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{t: t, redis: redistest.Start(t, o.redis), graph: fakegraph.New(t, fakegraph.Options{})}
	if o.leaseTTL == 0 {
		o.leaseTTL = 3 * time.Second
	}
	file, err := rules.Parse("fleet.yaml", []byte(o.rules))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	set := file.Set
	for i := range 3 {
		f.replicas = append(f.replicas, f.start(fmt.Sprintf("replica-%d", i), set, o))
	}
	f.waitBalanced()
	return f
}

// start starts one replica.
func (f *fleet) start(name string, set *engine.Set, o fleetOptions) *replica {
	t := f.t
	ctx := context.Background()
	s, err := redisstore.Open(ctx, f.redis.URL(), redisstore.Options{Options: store.Options{Now: o.now}, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Consume(ctx, redisstore.ConsumerOptions{ID: name, LeaseTTL: o.leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	client := messenger.NewClient(messenger.Options{
		BaseURL:     f.graph.BaseURL(),
		Tokens:      messenger.StaticToken(fleetToken),
		HTTPClient:  &http.Client{Timeout: 20 * time.Second},
		MaxAttempts: 1,
		Logger:      slog.New(slog.DiscardHandler),
	})
	r := &replica{name: name, store: s, cons: c, src: redisfleet.New(s, c)}
	r.gw = gateway.New(gateway.Config{
		Rules:         func() *engine.Set { return set },
		Platform:      client,
		AppID:         fleetAppID,
		Store:         s,
		Source:        r.src,
		Retry:         quickRetries,
		Workers:       16,
		Logger:        slog.New(slog.DiscardHandler),
		Now:           o.now,
		TimerInterval: time.Hour, // the tests call CheckReturns
	})
	r.srv = httptest.NewServer(r.gw.Router())
	wctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	if err := r.gw.Start(wctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop stops a replica as SIGTERM does: no more webhooks, the events
// queued finish, the partitions are released.
func (r *replica) stop() {
	if r.gone.Swap(true) {
		return
	}
	r.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.gw.Drain(ctx)
	_ = r.cons.Stop(ctx)
	r.cancel()
	_ = r.store.Close()
}

// crash stops a replica as kill -9 does: its Graph calls are cut off,
// nothing is released, its leases expire.
func (r *replica) crash() {
	if r.gone.Swap(true) {
		return
	}
	r.srv.Close()
	r.cons.Abandon()
	r.cancel()
	_ = r.store.Close()
}

// waitBalanced waits until every running replica holds a share of the
// partitions and together they hold them all.
func (f *fleet) waitBalanced() {
	f.t.Helper()
	poll.UntilNil(f.t, "the partitions spread over the replicas", func() error {
		total := 0
		var held []int
		for _, r := range f.replicas {
			if r.gone.Load() {
				continue
			}
			n := len(r.cons.Held())
			held = append(held, n)
			total += n
			if n == 0 {
				return fmt.Errorf("held: %v", held)
			}
		}
		if total != partitions {
			return fmt.Errorf("held: %v, want %d in all", held, partitions)
		}
		return nil
	})
}

// post sends one webhook body to a replica and returns the status (0 when
// the request failed).
func (r *replica) post(body string) int {
	resp, err := http.Post(r.srv.URL+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (r *replica) mustPost(t *testing.T, body string) {
	t.Helper()
	if code := r.post(body); code != http.StatusOK {
		t.Fatalf("%s answered %d, want 200", r.name, code)
	}
}

// readyz returns the status of GET /readyz.
func (r *replica) readyz() int {
	resp, err := http.Get(r.srv.URL + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// running returns the replicas not stopped.
func (f *fleet) running() []*replica {
	var out []*replica
	for _, r := range f.replicas {
		if !r.gone.Load() {
			out = append(out, r)
		}
	}
	return out
}

// settled waits until no event is pending in Redis.
func (f *fleet) settled() {
	f.t.Helper()
	s := f.running()[0].store
	poll.UntilNil(f.t, "every event handled", func() error {
		st, err := s.Stats(context.Background())
		if err != nil {
			return err
		}
		if st.Pending > 0 {
			return fmt.Errorf("%d events pending", st.Pending)
		}
		return nil
	})
}

// holder returns the replica that holds a user's lane.
func (f *fleet) holder(user string) *replica {
	f.t.Helper()
	var out *replica
	poll.Until(f.t, "a replica holding "+user+"'s lane", func() bool {
		for _, r := range f.running() {
			if r.src.Holds(fleetPage + "/" + user) {
				out = r
				return true
			}
		}
		return false
	})
	return out
}

var midSeq atomic.Int64

func nextMID() string { return fmt.Sprintf("m_fleet_%d", midSeq.Add(1)) }

var tsSeq atomic.Int64

func nextTS() int64 { return 1764000000000 + tsSeq.Add(1000) }

func envelope(events ...string) string {
	return fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":1764000000000,"messaging":[%s]}]}`, fleetPage, strings.Join(events, ","))
}

func textEvent(user, mid, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":%q}}`,
		user, fleetPage, nextTS(), mid, text)
}

func echoEvent(user, appID, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"is_echo":true,"app_id":%s,"text":%q}}`,
		fleetPage, user, nextTS(), nextMID(), appID, text)
}

func TestSameMIDOnEveryReplicaGetsOneReply(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: echoRules})
	body := envelope(textEvent("u1", "m_same", "hello"))
	for _, r := range f.replicas {
		r.mustPost(t, body)
	}
	f.graph.WaitTexts(t, "u1", 1)
	f.settled()
	if got := f.graph.Texts("u1"); !slices.Equal(got, []string{"[bot] hello"}) {
		t.Fatalf("u1 got %q, want one reply", got)
	}
}

func TestUsersRepliesInOrderAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: echoRules})
	const users, messages = 50, 5
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for u := range users {
		wg.Go(func() {
			user := fmt.Sprintf("user%02d", u)
			for m := range messages {
				r := f.replicas[(u+m)%len(f.replicas)]
				if code := r.post(envelope(textEvent(user, nextMID(), fmt.Sprintf("m%d", m)))); code != http.StatusOK {
					errs <- fmt.Errorf("%s: message %d to %s answered %d", user, m, r.name, code)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := make([]string, messages)
	for m := range messages {
		want[m] = fmt.Sprintf("[bot] m%d", m)
	}
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		if got := f.graph.WaitTexts(t, user, messages); !slices.Equal(got, want) {
			t.Errorf("%s got %q, want %q", user, got, want)
		}
	}
	f.settled()
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		if got := f.graph.Texts(user); len(got) != messages {
			t.Errorf("%s got %d replies, want %d", user, len(got), messages)
		}
	}
}

func TestHumanEchoOnOneReplicaPausesTheBotOnAnother(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: pauseRules})
	a, b := f.replicas[0], f.replicas[1]
	// A person answers u1 from the Page Inbox; the echo reaches A.
	a.mustPost(t, envelope(echoEvent("u1", pageInboxApp, "Hi, Anna here")))
	// u1's message reaches B: the bot is paused for u1.
	b.mustPost(t, envelope(textEvent("u1", nextMID(), "hello")))
	// u2, not paused, is answered by the same replica.
	b.mustPost(t, envelope(textEvent("u2", nextMID(), "hello")))
	f.graph.WaitTexts(t, "u2", 1)
	f.settled()
	if got := f.graph.Texts("u1"); len(got) != 0 {
		t.Fatalf("u1 got %q while paused by a human, want nothing", got)
	}
}

func TestIdleThreadIsTakenBackOnceByTheFleet(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	f := newFleet(t, fleetOptions{rules: returnRules, now: clock.Now})
	f.replicas[2].mustPost(t, envelope(textEvent("u1", nextMID(), "agent")))
	f.graph.WaitCalls(t, fakegraph.PathPass, 1)
	f.settled()

	clock.Advance(119 * time.Minute)
	for _, r := range f.replicas {
		if n := r.gw.CheckReturns(); n != 0 {
			t.Fatalf("%s: 1h59m after the pass, %d returns, want 0", r.name, n)
		}
	}
	clock.Advance(2 * time.Minute)
	total := 0
	for _, r := range f.replicas {
		total += r.gw.CheckReturns()
	}
	if total != 1 {
		t.Fatalf("the fleet checked %d returns, want 1 (by the replica holding u1's lane)", total)
	}
	f.graph.WaitTexts(t, "u1", 2)
	f.settled()
	// Later ticks on every replica find nothing more to take back.
	for range 2 {
		clock.Advance(3 * time.Hour)
		for _, r := range f.replicas {
			total += r.gw.CheckReturns()
		}
	}
	f.settled()
	if takes := f.graph.CallsTo(fakegraph.PathTake); len(takes) != 1 || total != 1 {
		t.Fatalf("take_thread_control called %d times after %d checks, want once", len(takes), total)
	}
	if got := f.graph.Texts("u1"); !slices.Equal(got, []string{"Connecting you.", "I'm back."}) {
		t.Fatalf("u1 got %q", got)
	}
}

func TestIdleThreadIsTakenBackOnceAfterItsHolderLeft(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(fakeclock.Start)
	f := newFleet(t, fleetOptions{rules: returnRules, now: clock.Now})
	f.replicas[0].mustPost(t, envelope(textEvent("u1", nextMID(), "agent")))
	f.graph.WaitCalls(t, fakegraph.PathPass, 1)
	f.settled()
	// The replica that watched the thread leaves; another takes the lane
	// over and finds the thread in the stored states.
	f.holder("u1").stop()
	f.waitBalanced()
	clock.Advance(2*time.Hour + time.Minute)
	total := 0
	for _, r := range f.running() {
		total += r.gw.CheckReturns()
	}
	if total != 1 {
		t.Fatalf("the fleet checked %d returns, want 1", total)
	}
	f.graph.WaitTexts(t, "u1", 2)
	f.settled()
	if takes := f.graph.CallsTo(fakegraph.PathTake); len(takes) != 1 {
		t.Fatalf("take_thread_control called %d times, want once", len(takes))
	}
}

func TestCrashedReplicasEventsAreHandledAfterTakeover(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: echoRules, leaseTTL: time.Second})
	// The Graph API hangs: every replica is in the middle of its events.
	clear := f.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages}, fakegraph.Answer{Hang: true})
	const users, messages = 12, 3
	for m := range messages {
		for u := range users {
			r := f.replicas[(u+m)%len(f.replicas)]
			r.mustPost(t, envelope(textEvent(fmt.Sprintf("user%02d", u), nextMID(), fmt.Sprintf("m%d", m))))
		}
	}
	poll.Until(t, "every replica calling the Graph API", func() bool {
		return len(f.graph.CallsTo(fakegraph.PathMessages)) >= partitions
	})
	victim := f.replicas[0]
	held := victim.cons.Held()
	victim.crash()
	// Within the lease time the others take its partitions over.
	f.waitBalanced()
	clear()
	f.graph.Release()
	for u := range users {
		user := fmt.Sprintf("user%02d", u)
		poll.UntilNil(t, user+"'s replies", func() error {
			return inOrder(f.graph.Texts(user), messages)
		})
	}
	f.settled()
	var taken uint64
	for _, r := range f.running() {
		taken += r.cons.Stats().TakenOver
	}
	if taken < uint64(len(held)) {
		t.Errorf("%d partitions taken over, want at least the %d the crashed replica held", taken, len(held))
	}
}

// inOrder checks that texts hold "[bot] m0" … "[bot] m(n-1)" in order, a
// message repeated at most in place (the step in flight at a crash may run
// twice).
func inOrder(texts []string, n int) error {
	next := 0
	for i, s := range texts {
		switch {
		case next < n && s == fmt.Sprintf("[bot] m%d", next):
			next++
		case next > 0 && s == fmt.Sprintf("[bot] m%d", next-1):
		default:
			return fmt.Errorf("reply %d is %q in %q", i, s, texts)
		}
	}
	if next < n {
		return fmt.Errorf("%d of %d replies: %q", next, n, texts)
	}
	return nil
}

func TestRedisRestartUnderLoadLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: echoRules, redis: redistest.Options{AppendFsyncAlways: true}})
	type sent struct{ user, text string }
	var (
		mu      sync.Mutex
		acked   []sent
		refused atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for u := range 6 {
		wg.Go(func() {
			user := fmt.Sprintf("user%d", u)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("n%d", i)
				r := f.replicas[(u+i)%len(f.replicas)]
				switch r.post(envelope(textEvent(user, nextMID(), text))) {
				case http.StatusOK:
					mu.Lock()
					acked = append(acked, sent{user, text})
					mu.Unlock()
				default:
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	poll.Until(t, "some webhooks acknowledged", func() bool { return count() >= 30 })
	f.redis.Stop()
	poll.Until(t, "webhooks refused while Redis is down", func() bool { return refused.Load() >= 10 })
	for _, r := range f.replicas {
		if code := r.readyz(); code != http.StatusServiceUnavailable {
			t.Errorf("%s: /readyz answered %d while Redis is down, want 503", r.name, code)
		}
	}
	before := count()
	f.redis.Restart()
	poll.Until(t, "webhooks acknowledged again", func() bool { return count() >= before+30 })
	close(stop)
	wg.Wait()
	for _, r := range f.replicas {
		if code := r.readyz(); code != http.StatusOK {
			t.Errorf("%s: /readyz answered %d after Redis came back, want 200", r.name, code)
		}
	}
	f.waitBalanced()
	f.settled()
	mu.Lock()
	defer mu.Unlock()
	for _, a := range acked {
		if !slices.Contains(f.graph.Texts(a.user), "[bot] "+a.text) {
			t.Errorf("%s's acknowledged %q was not answered", a.user, a.text)
		}
	}
}

func TestDeadLetterReplayedFromAnotherReplica(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{rules: echoRules})
	f.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "u1"}, fakegraph.Fail(400, 100, 0))
	f.replicas[0].mustPost(t, envelope(textEvent("u1", nextMID(), "hello")))
	f.settled()
	holder := f.holder("u1")
	var other *replica
	for _, r := range f.replicas {
		if r != holder {
			other = r
		}
	}
	dls, err := other.gw.DeadLetters(context.Background())
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters seen from %s: %v, %v; want 1", other.name, dls, err)
	}
	if _, err := other.gw.Replay(context.Background(), dls[0].ID); err != nil {
		t.Fatal(err)
	}
	// The replica holding u1's lane runs it, whichever replica replayed it.
	if got := f.graph.WaitTexts(t, "u1", 2); got[1] != "[bot] hello" {
		t.Fatalf("u1 got %q", got)
	}
	f.settled()
	if dls, err := holder.gw.DeadLetters(context.Background()); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters after the replay: %v, %v", dls, err)
	}
}
