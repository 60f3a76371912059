package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threadgate/threadgate/store"
)

// DefaultLeaseTTL is how long a partition's lease lasts without renewal
// when ConsumerOptions.LeaseTTL is zero: the time a dead replica's
// partitions wait before another replica takes them over.
const DefaultLeaseTTL = 5 * time.Second

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// ID names this replica among the fleet; it must be unique. Empty
	// means the host name, the process ID and a random suffix.
	ID string
	// LeaseTTL is how long a lease lasts unless renewed (default 5 s).
	// The consumer renews its leases and its heartbeat every LeaseTTL/3,
	// and considers them lost when it could not renew them for LeaseTTL
	// (measured from when the last successful renewal was sent).
	LeaseTTL time.Duration
	// Buffer is the capacity of the deliveries channel (default 256).
	Buffer int
	// DrainTimeout bounds how long a partition given up to balance the
	// fleet (a replica joined) stays held after its last delivery, so
	// that the events already delivered finish here rather than run again
	// on the next owner (default 2×LeaseTTL). Events still unfinished
	// then are handed over from their recorded progress.
	DrainTimeout time.Duration
}

// Delivery is a pending event handed to the replica that holds its
// partition.
type Delivery struct {
	// Event is the event with its recorded progress.
	Event store.Event
	// Partition is the event's partition.
	Partition int
	ctx       context.Context
}

// Context returns the context under which the event is handled: it is
// cancelled when this replica loses or releases the partition or the
// consumer stops, and it carries the lease's fencing token, so that
// Progress, Complete and DeadLetter called with it (or with a context
// derived from it, such as context.WithoutCancel(d.Context())) fail with
// ErrLeaseLost once another replica owns the partition.
func (d Delivery) Context() context.Context { return d.ctx }

// ConsumerStats counts what a consumer did, for metrics.
type ConsumerStats struct {
	// Held is the number of partitions held now.
	Held int
	// Replicas is the number of live replicas last seen.
	Replicas int
	// Acquired counts the partitions taken (at start, from a replica
	// that released them, or from one whose lease expired).
	Acquired uint64
	// TakenOver counts the partitions taken whose previous lease expired
	// rather than being released: a replica died or was cut off.
	TakenOver uint64
	// Lost counts the leases lost: not renewed in time, or found owned
	// by another replica.
	Lost uint64
	// Released counts the leases given up to balance the fleet or at
	// Stop.
	Released uint64
	// Errors counts the failed calls to Redis of the consumer's loops.
	Errors uint64
}

// Consumer is one replica's membership in the fleet: it announces the
// replica with a heartbeat, holds an even share of the partitions under
// leases it renews, and delivers the pending events of the partitions it
// holds, each partition's in stream order.
//
// The gateway queues every delivery in its lane, handles each lane's
// events one at a time, and makes every write of progress or completion
// with the delivery's context. A delivery whose context is done is
// dropped if it has not started.
type Consumer struct {
	s      *Store
	rdb    *redis.Client
	id     string
	ttl    time.Duration
	every  time.Duration
	block  time.Duration
	drain  time.Duration
	out    chan Delivery
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu       sync.Mutex
	held     map[int]*session
	replicas int

	acquired, takenOver, lost, released, errs atomic.Uint64
	paused                                    atomic.Bool // tests: a frozen process
	wake                                      chan struct{}
}

// session is one holding of a partition, from its acquisition to its loss
// or release.
type session struct {
	part   int
	lease  string // "token:owner"
	ctx    context.Context
	cancel context.CancelFunc

	// Under Consumer.mu:
	cursor     string    // the last stream ID delivered, "0" for none
	drainUntil time.Time // non-zero while draining: deliver nothing more, release when unfinished is empty or then

	// unfinished holds the sequence numbers delivered and not yet
	// completed or dead-lettered.
	mu         sync.Mutex
	unfinished map[uint64]bool
}

// finished notes that the event seq no longer needs this session.
func (ss *session) finished(seq uint64) {
	ss.mu.Lock()
	delete(ss.unfinished, seq)
	ss.mu.Unlock()
}

func (ss *session) busy() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.unfinished) > 0
}

// Consume starts the replica's membership: from now on Progress, Complete
// and DeadLetter of s need a delivery's context (ErrUnfenced otherwise).
// Call Stop before closing the store.
func (s *Store) Consume(ctx context.Context, o ConsumerOptions) (*Consumer, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseTTL < 30*time.Millisecond {
		return nil, fmt.Errorf("redisstore: lease TTL %v is too short (at least 30ms): %w", o.LeaseTTL, store.ErrInvalid)
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 2 * o.LeaseTTL
	}
	if o.ID == "" {
		o.ID = defaultID()
	}
	if strings.ContainsAny(o.ID, " \n") {
		return nil, fmt.Errorf("redisstore: replica ID %q has a space or a newline: %w", o.ID, store.ErrInvalid)
	}
	if !s.consuming.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("redisstore: the store has a running Consumer already (one per replica): %w", store.ErrInvalid)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Consumer{
		s:      s,
		rdb:    newClient(s.clientOpts, s.observe),
		id:     o.ID,
		ttl:    o.LeaseTTL,
		every:  o.LeaseTTL / 3,
		block:  min(o.LeaseTTL/3, 250*time.Millisecond),
		drain:  o.DrainTimeout,
		out:    make(chan Delivery, o.Buffer),
		cancel: cancel,
		held:   map[int]*session{},
		wake:   make(chan struct{}, 1),
	}
	c.done.Add(2)
	go c.leaseLoop(loopCtx)
	go c.readLoop(loopCtx)
	return c, nil
}

// defaultID is host-pid-random.
func defaultID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the replica's ID.
func (c *Consumer) ID() string { return c.id }

// Deliveries returns the channel of deliveries. It is closed after Stop.
func (c *Consumer) Deliveries() <-chan Delivery { return c.out }

// Held returns the partitions held now, in increasing order.
func (c *Consumer) Held() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, 0, len(c.held))
	for p := range c.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	held, replicas := len(c.held), c.replicas
	c.mu.Unlock()
	return ConsumerStats{
		Held: held, Replicas: replicas,
		Acquired: c.acquired.Load(), TakenOver: c.takenOver.Load(), Lost: c.lost.Load(),
		Released: c.released.Load(), Errors: c.errs.Load(),
	}
}

// Stop stops delivering, releases the leases (so that other replicas take
// the partitions over at once rather than after LeaseTTL), withdraws the
// replica's heartbeat and closes the deliveries channel. Events delivered
// but not completed stay pending, for the next owner of their partition.
func (c *Consumer) Stop(ctx context.Context) error {
	c.cancel()
	c.done.Wait()
	c.mu.Lock()
	sessions := c.takeAll()
	c.mu.Unlock()
	var errs []error
	for _, ss := range sessions {
		if err := releaseScript.Run(ctx, c.rdb, c.s.keys(), c.s.prefix, ss.part, ss.lease).Err(); err != nil {
			errs = append(errs, err)
		} else {
			c.released.Add(1)
		}
	}
	if err := c.rdb.ZRem(ctx, c.s.key("m"), c.id).Err(); err != nil {
		errs = append(errs, err)
	}
	c.s.consuming.Store(false)
	errs = append(errs, c.rdb.Close())
	if err := errors.Join(errs...); err != nil {
		return c.s.fail("stop consuming", err)
	}
	return nil
}

// Abandon stops the consumer as a crash (kill -9) would: it delivers
// nothing more and cancels its deliveries' contexts, but releases no lease
// and leaves its heartbeat to expire, so that the other replicas take its
// partitions over only after LeaseTTL. It is for tests of takeover: a
// replica that stops calls Stop. Close the store afterwards as after Stop.
func (c *Consumer) Abandon() {
	c.kill()
	c.s.consuming.Store(false)
}

// kill stops the consumer as a kill -9 would: nothing released, the
// heartbeat left to expire. For tests.
func (c *Consumer) kill() {
	c.cancel()
	c.done.Wait()
	c.mu.Lock()
	c.takeAll()
	c.mu.Unlock()
	_ = c.rdb.Close()
}

// takeAll ends every session and returns them. c.mu is held.
func (c *Consumer) takeAll() []*session {
	var out []*session
	for p, ss := range c.held {
		ss.cancel()
		delete(c.held, p)
		out = append(out, ss)
	}
	return out
}

// leaseLoop renews the heartbeat and the leases, and balances the
// partitions, every LeaseTTL/3.
func (c *Consumer) leaseLoop(ctx context.Context) {
	defer c.done.Done()
	validUntil := time.Now() // the leases held are ours until then
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		if !c.paused.Load() {
			validUntil = c.tick(ctx, validUntil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick does one round of heartbeat, renewal and balancing, and returns
// until when the leases held are valid.
func (c *Consumer) tick(ctx context.Context, validUntil time.Time) time.Time {
	sent := time.Now()
	c.mu.Lock()
	held := make([]any, 0, 2*len(c.held))
	for _, ss := range c.held {
		held = append(held, ss.part, ss.lease)
	}
	c.mu.Unlock()
	args := append([]any{c.s.prefix, c.ttl.Milliseconds(), c.id}, held...)
	// A renewal that hangs (a network split) must not keep this replica
	// handling events past its leases: it gives up when they end.
	deadline := validUntil
	if len(held) == 0 {
		deadline = sent.Add(c.ttl)
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	res, err := renewScript.Run(rctx, c.rdb, c.s.keys(), args...).Int64Slice()
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.errs.Add(1)
		}
		if time.Now().After(validUntil) {
			c.loseAll()
		}
		return validUntil
	}
	validUntil = sent.Add(c.ttl - c.ttl/10) // a margin for clock drift between here and Redis
	replicas := int(res[0])
	c.mu.Lock()
	c.replicas = replicas
	for i := 1; i < len(res); i++ {
		if res[i] == 0 {
			part := held[2*(i-1)].(int)
			if ss := c.held[part]; ss != nil && ss.lease == held[2*(i-1)+1] {
				ss.cancel()
				delete(c.held, part)
				c.lost.Add(1)
			}
		}
	}
	share := (c.s.parts + max(replicas, 1) - 1) / max(replicas, 1)
	release := c.balance(share, time.Now())
	want := share - len(c.held)
	c.mu.Unlock()
	for _, ss := range release {
		if err := releaseScript.Run(ctx, c.rdb, c.s.keys(), c.s.prefix, ss.part, ss.lease).Err(); err != nil {
			c.errs.Add(1) // the lease expires by itself
		} else {
			c.released.Add(1)
		}
	}
	if want > 0 {
		c.acquire(ctx, want)
	}
	return validUntil
}

// balance drains the partitions held beyond share (the highest first):
// it delivers nothing more from them and gives them up once the events
// delivered are finished or the drain timeout passed. It returns the
// sessions to release, already removed from c.held. c.mu is held.
func (c *Consumer) balance(share int, now time.Time) []*session {
	parts := make([]int, 0, len(c.held))
	draining := 0
	for p, ss := range c.held {
		parts = append(parts, p)
		if !ss.drainUntil.IsZero() {
			draining++
		}
	}
	slices.Sort(parts)
	excess := len(c.held) - share
	for i := len(parts) - 1; i >= 0; i-- {
		ss := c.held[parts[i]]
		switch {
		case draining < excess && ss.drainUntil.IsZero():
			ss.drainUntil = now.Add(c.drain)
			draining++
		case draining > excess && !ss.drainUntil.IsZero():
			ss.drainUntil = time.Time{} // a replica left meanwhile: keep it
			draining--
		}
	}
	var release []*session
	for _, p := range parts {
		ss := c.held[p]
		if !ss.drainUntil.IsZero() && (!ss.busy() || now.After(ss.drainUntil)) {
			ss.cancel()
			delete(c.held, p)
			release = append(release, ss)
		}
	}
	return release
}

// acquire takes up to want free partitions.
func (c *Consumer) acquire(ctx context.Context, want int) {
	h := fnv.New32a()
	h.Write([]byte(c.id))
	start := int(h.Sum32() % uint32(c.s.parts))
	res, err := acquireScript.Run(ctx, c.rdb, c.s.keys(), c.s.prefix, c.ttl.Milliseconds(), c.id, want, start, c.s.parts).Int64Slice()
	if err != nil {
		if ctx.Err() == nil {
			c.errs.Add(1)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i+2 < len(res); i += 3 {
		part, token, expired := int(res[i]), res[i+1], res[i+2] == 1
		sctx, cancel := context.WithCancel(ctx)
		lease := strconv.FormatInt(token, 10) + ":" + c.id
		ss := &session{part: part, lease: lease, cursor: "0", cancel: cancel, unfinished: map[uint64]bool{}}
		ss.ctx = withFence(sctx, fence{partition: part, lease: lease, session: ss})
		c.held[part] = ss
		c.acquired.Add(1)
		if expired {
			c.takenOver.Add(1)
		}
	}
	if len(res) > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// loseAll ends every session: the leases could not be renewed in time.
func (c *Consumer) loseAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.takeAll())
	c.lost.Add(uint64(n))
}

// readLoop delivers the pending events of the partitions held, reading
// each partition's stream from its session's cursor.
func (c *Consumer) readLoop(ctx context.Context) {
	defer c.done.Done()
	defer close(c.out)
	for ctx.Err() == nil {
		c.mu.Lock()
		sessions := make([]*session, 0, len(c.held))
		cursors := make([]string, 0, len(c.held))
		for _, ss := range c.held {
			if ss.drainUntil.IsZero() {
				sessions = append(sessions, ss)
				cursors = append(cursors, ss.cursor)
			}
		}
		c.mu.Unlock()
		if len(sessions) == 0 {
			select {
			case <-ctx.Done():
			case <-c.wake:
			case <-time.After(c.block):
			}
			continue
		}
		streams := make([]string, 0, 2*len(sessions))
		for _, ss := range sessions {
			streams = append(streams, c.s.partKey(ss.part))
		}
		streams = append(streams, cursors...)
		res, err := c.rdb.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 100, Block: c.block}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				c.errs.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(c.block):
				}
			}
			continue
		}
		for _, st := range res {
			i := slices.IndexFunc(sessions, func(ss *session) bool { return c.s.partKey(ss.part) == st.Stream })
			if i < 0 || len(st.Messages) == 0 {
				continue
			}
			if !c.deliver(ctx, sessions[i], st.Messages) {
				return
			}
		}
	}
}

// deliver sends the events of msgs, read from ss's partition, and moves
// its cursor. It returns false when the consumer stops.
func (c *Consumer) deliver(ctx context.Context, ss *session, msgs []redis.XMessage) bool {
	evs, err := c.s.withProgress(ctx, msgs)
	if err != nil {
		c.errs.Add(1)
		return ctx.Err() == nil // read again from the same cursor
	}
	for _, ev := range evs {
		ss.mu.Lock()
		ss.unfinished[ev.Seq] = true
		ss.mu.Unlock()
		select {
		case c.out <- Delivery{Event: ev, Partition: ss.part, ctx: ss.ctx}:
		case <-ss.ctx.Done():
			return ctx.Err() == nil
		case <-ctx.Done():
			return false
		}
	}
	c.mu.Lock()
	ss.cursor = msgs[len(msgs)-1].ID
	c.mu.Unlock()
	return true
}

// renewScript: ARGV[2] TTL in ms, ARGV[3] replica ID, then pairs of
// partition and lease value. It refreshes the heartbeat, forgets the
// replicas whose heartbeat expired, renews each lease still ours, and
// returns the number of live replicas followed by 1 (renewed) or 0 (lost)
// per lease.
var renewScript = redis.NewScript(luaLib + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', P .. 'm', now + ttl, ARGV[3])
redis.call('ZREMRANGEBYSCORE', P .. 'm', '-inf', now)
local out = {redis.call('ZCARD', P .. 'm')}
for i = 4, #ARGV, 2 do
  local k = P .. 'l:' .. ARGV[i]
  if redis.call('GET', k) == ARGV[i+1] then
    redis.call('PEXPIRE', k, ttl)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`)

// acquireScript: ARGV[2] TTL in ms, ARGV[3] replica ID, ARGV[4] how many
// partitions to take, ARGV[5] where to start looking, ARGV[6] the number
// of partitions. It takes free partitions (no lease) and returns, for
// each, the partition, its new fencing token and 1 when its previous lease
// had expired (a takeover) rather than been released.
var acquireScript = redis.NewScript(luaLib + `
local want, start, n = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
for i = 0, n - 1 do
  if want == 0 then break end
  local part = (start + i) % n
  local k = P .. 'l:' .. part
  if redis.call('EXISTS', k) == 0 then
    local token = redis.call('INCR', P .. 'f:' .. part)
    local released = redis.call('HGET', P .. 'rel', part)
    redis.call('HDEL', P .. 'rel', part)
    redis.call('SET', k, token .. ':' .. ARGV[3], 'PX', ARGV[2])
    out[#out + 1] = part
    out[#out + 1] = token
    out[#out + 1] = (token > 1 and released ~= tostring(token - 1)) and 1 or 0
    want = want - 1
  end
end
return out
`)

// releaseScript: ARGV[2] partition, ARGV[3] lease value. It deletes the
// lease if it is still this one, and notes the token released, so that
// the next acquisition is not counted as a takeover.
var releaseScript = redis.NewScript(luaLib + `
local k = P .. 'l:' .. ARGV[2]
if redis.call('GET', k) == ARGV[3] then
  redis.call('DEL', k)
  local token = string.match(ARGV[3], '^(%d+):')
  redis.call('HSET', P .. 'rel', ARGV[2], token)
  return 1
end
return 0
`)
