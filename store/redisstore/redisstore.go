// Package redisstore is a store.Store on Redis, shared by every replica of
// a fleet that names the same Redis, and the consuming side such a fleet
// needs: partition leases with fencing tokens (Consumer).
//
// Events are kept in a fixed number of partition streams (the lane's
// FNV-1a hash modulo Options.Partitions). Any replica appends to any
// partition; each partition is consumed by one replica at a time, the one
// holding its lease, which delivers the partition's pending events in
// stream order. Every change (Append, Progress, Complete, DeadLetter,
// Replay, Drop, a state, a dedup key) is one Lua script, so it is atomic,
// and a write made through a delivery's context is refused once the
// replica has lost the partition's lease (ErrLeaseLost). The commands of
// concurrent calls go to Redis together, one pipeline per batch
// (auto-pipelining): a lone call at once, batches growing with the load.
//
// docs/replicas.md describes the design, its guarantees and the Redis
// persistence settings they rest on.
package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/threadgate/threadgate/store"
)

// DefaultPartitions is the number of partition streams when
// Options.Partitions is zero.
const DefaultPartitions = 64

// DefaultPrefix starts every key the store writes. The braces are a Redis
// Cluster hash tag: every key lands in one slot, so that the scripts,
// which touch several keys, run there too.
const DefaultPrefix = "{threadgate}:"

// ErrUnavailable is wrapped by the errors of operations that could not
// reach Redis (refused or dropped connections, timeouts). The gateway
// answers 503 and reports not ready; the client reconnects by itself once
// Redis answers again.
var ErrUnavailable = errors.New("redisstore: Redis unavailable")

// ErrLeaseLost is returned by Progress, Complete and DeadLetter called with
// a delivery's context (Delivery.Context) when this replica no longer
// holds the lease under which the event was delivered: another replica
// owns the partition now and handles the event from its recorded progress.
var ErrLeaseLost = errors.New("redisstore: the partition's lease was lost; another replica handles the event")

// ErrUnfenced is returned by Progress, Complete and DeadLetter called
// without a delivery's context on a store whose Consumer runs: in a fleet
// every such write must prove it holds the partition's lease.
var ErrUnfenced = errors.New("redisstore: a write of progress or completion without the delivery's context while consuming")

// Options configure a Store.
type Options struct {
	// Options are the limits and clock every store takes. The clock
	// gives accept times, dedup expiry and activity; leases and
	// heartbeats run on Redis's own clock.
	store.Options
	// Partitions is the number of partition streams (default 64). Every
	// replica must use the same number: Open refuses a number other than
	// the one the Redis data was created with.
	Partitions int
	// Prefix starts every key (default DefaultPrefix). Two gateways on
	// one Redis need two prefixes (or two DBs).
	Prefix string
	// Observe, when set, is told of every call to Redis the store and
	// its Consumer make, for metrics.
	Observe Observer
}

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb        *redis.Client
	batch      *batcher // sends the hot calls' commands together
	clientOpts *redis.Options
	observe    Observer
	prefix     string
	parts      int
	limits     store.Limits
	now        func() time.Time

	closed    atomic.Bool
	consuming atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis that url names ("redis://[:password@]host:port/db"
// or "rediss://" for TLS; see redis.ParseURL for the query options) and
// checks that it answers. It fails when the Redis data was written with
// another number of partitions.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	co, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	return openClient(ctx, co, o)
}

// CheckURL returns the error Open would return for a URL it cannot
// parse, without connecting: a command line checks it before starting.
func CheckURL(url string) error {
	_, err := parseURL(url)
	return err
}

func parseURL(url string) (*redis.Options, error) {
	co, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, fmt.Errorf("redisstore: the Redis URL is not valid (want redis://[:password@]host:port/db or rediss://…): %s", redactURLError(err))
	}
	return co, nil
}

// openClient is Open with the client options parsed.
func openClient(ctx context.Context, co *redis.Options, o Options) (*Store, error) {
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if co.MaxRetries == 0 {
		// A script whose reply was lost may have run: retrying it could
		// append a webhook's events twice. Fail instead (503, or the
		// handler's own retry).
		co.MaxRetries = -1
	}
	s := &Store{
		rdb:        newClient(co, o.Observe),
		observe:    o.Observe,
		clientOpts: co,
		prefix:     o.Prefix,
		parts:      o.Partitions,
		limits:     o.Limits.WithDefaults(),
		now:        o.Clock(),
	}
	n, err := openScript.Run(ctx, s.rdb, s.keys(), s.prefix, o.Partitions).Int()
	if err != nil {
		_ = s.rdb.Close()
		return nil, s.fail("open "+co.Addr, err)
	}
	if n != o.Partitions {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redisstore: the data under prefix %q in Redis %s has %d partitions, not %d: every replica must use %d (changing it would reorder users' events)", s.prefix, co.Addr, n, o.Partitions, n)
	}
	if err := s.loadScripts(ctx); err != nil {
		_ = s.rdb.Close()
		return nil, s.fail("load the scripts into "+co.Addr, err)
	}
	s.batch = newBatcher(s.rdb, maxBatch)
	return s, nil
}

// newClient returns a client with its own copy of co and the observer's
// hook, if any.
func newClient(co *redis.Options, observe Observer) *redis.Client {
	own := *co
	// CLIENT SETINFO (Redis 7.2) and CLIENT MAINT_NOTIFICATIONS (Redis 8)
	// would each cost every new connection an error from Redis 7.0.
	own.DisableIdentity = true
	if own.MaintNotificationsConfig == nil {
		own.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	c := redis.NewClient(&own)
	if observe != nil {
		c.AddHook(observeHook{observe: observe})
	}
	return c
}

// redactURLError returns err's message without anything after "://",
// where a password could be.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		return msg[:i] + "://…"
	}
	return msg
}

// Partitions returns the number of partition streams.
func (s *Store) Partitions() int { return s.parts }

// Partition returns the partition of a lane: every event of the lane is in
// that partition's stream.
func (s *Store) Partition(lane string) int {
	h := fnv.New32a()
	h.Write([]byte(lane))
	return int(h.Sum32() % uint32(s.parts))
}

// Ping checks that Redis answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.fail("ping", s.rdb.Ping(ctx).Err())
}

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, "") }

// keys is the KEYS argument of every script: the meta hash, which routes
// the script to its slot in a Redis Cluster.
func (s *Store) keys() []string { return []string{s.key("meta")} }

// check returns ErrClosed after Close and the context's error when it is
// done, so that a cancelled context writes nothing.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Error codes the scripts return (redis.error_reply).
const (
	codeFull     = "TGFULL"
	codeNotFound = "TGNOTFOUND"
	codeFenced   = "TGFENCED"
)

// fail maps an error of a Redis call to the store's errors, with op as
// context. It returns nil for nil.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr) && strings.Contains(err.Error(), codeFull):
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrFull)
	case errors.As(err, &rerr) && strings.Contains(err.Error(), codeNotFound):
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	case errors.As(err, &rerr) && strings.Contains(err.Error(), codeFenced):
		return fmt.Errorf("redisstore: %s: %w", op, ErrLeaseLost)
	case errors.Is(err, redis.ErrClosed) && s.closed.Load():
		return store.ErrClosed
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	case errors.As(err, &rerr) && !isLoading(err):
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("%w (%s): %w", ErrUnavailable, op, err)
}

// isLoading reports a reply that means Redis is up but not serving yet
// (loading its data set, a replica syncing): unavailable for a while.
func isLoading(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "CLUSTERDOWN")
}

// Unavailable reports whether err means Redis could not be reached.
func Unavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 5+4*len(events))
	now := s.now()
	args = append(args, s.prefix, s.limits.MaxPending, s.limits.MaxPendingBytes, unixNano(now), len(events))
	for i, e := range events {
		if e.Lane == "" {
			return nil, fmt.Errorf("redisstore: append event %d of %d: no lane: %w", i+1, len(events), store.ErrInvalid)
		}
		args = append(args, s.Partition(e.Lane), e.Lane, e.Body, len(e.Body))
	}
	first, err := s.eval(ctx, appendScript, args...).Uint64()
	if err != nil {
		return nil, s.fail("append", err)
	}
	out := make([]store.Event, len(events))
	for i, e := range events {
		out[i] = store.Event{Seq: first + uint64(i), Lane: e.Lane, Body: slices.Clone(e.Body), Accepted: fromUnixNano(unixNano(now))}
	}
	return out, nil
}

// Pending implements store.Store: every pending event of every partition,
// in sequence order. A replica of a fleet reads its partitions through its
// Consumer instead.
func (s *Store) Pending(ctx context.Context) ([]store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, s.parts)
	for p := range s.parts {
		cmds[p] = pipe.XRange(ctx, s.partKey(p), "-", "+")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("read the partitions", err)
	}
	var msgs []redis.XMessage
	for _, c := range cmds {
		msgs = append(msgs, c.Val()...)
	}
	out, err := s.withProgress(ctx, msgs)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (s *Store) partKey(part int) string { return s.key("s:", strconv.Itoa(part)) }

// withProgress decodes stream entries and reads their progress. An entry
// whose event was completed meanwhile is left out.
func (s *Store) withProgress(ctx context.Context, msgs []redis.XMessage) ([]store.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(msgs))
	evs := make([]store.Event, len(msgs))
	for i, m := range msgs {
		ev, err := decodeEntry(m)
		if err != nil {
			return nil, err
		}
		evs[i] = ev
		cmds[i] = pipe.HGet(ctx, s.key("e:", strconv.FormatUint(ev.Seq, 10)), "p")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("read progress", err)
	}
	out := evs[:0]
	for i, ev := range evs {
		p, err := cmds[i].Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.fail("read progress", err)
		}
		if ev.Progress, err = decodeProgress(p); err != nil {
			return nil, fmt.Errorf("redisstore: progress of event %d: %w", ev.Seq, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// decodeEntry decodes a partition stream's entry (without progress).
func decodeEntry(m redis.XMessage) (store.Event, error) {
	seqStr, _, _ := strings.Cut(m.ID, "-")
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return store.Event{}, fmt.Errorf("redisstore: stream entry %q: %w", m.ID, errCorrupt)
	}
	ev, err := decodeFields(m.Values)
	ev.Seq = seq
	if err != nil {
		return store.Event{}, fmt.Errorf("redisstore: stream entry %q: %w", m.ID, err)
	}
	return ev, nil
}

// decodeFields decodes the fields l, b, a and r of a stream entry or a
// dead letter.
func decodeFields(v map[string]any) (store.Event, error) {
	str := func(k string) (string, bool) { s, ok := v[k].(string); return s, ok }
	lane, ok1 := str("l")
	body, ok2 := str("b")
	acc, ok3 := str("a")
	rep, ok4 := str("r")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return store.Event{}, errCorrupt
	}
	accNs, err1 := strconv.ParseInt(acc, 10, 64)
	replayOf, err2 := strconv.ParseUint(rep, 10, 64)
	if err1 != nil || err2 != nil {
		return store.Event{}, errCorrupt
	}
	return store.Event{Lane: lane, Body: []byte(body), Accepted: fromUnixNano(accNs), ReplayOf: replayOf}, nil
}

// finished tells the session of the fence ctx carries, if any, that the
// event seq no longer needs it, when err says the event left the pending
// set or is no longer this replica's.
func finished(ctx context.Context, seq uint64, err error) {
	f, ok := ctx.Value(fenceKey{}).(fence)
	if ok && f.session != nil && (err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrLeaseLost)) {
		f.session.finished(seq)
	}
}

// fenceArgs returns the fence a context carries as script arguments
// (partition, lease value), empty ones for none, or ErrUnfenced.
func (s *Store) fenceArgs(ctx context.Context) ([]any, error) {
	f, ok := ctx.Value(fenceKey{}).(fence)
	if !ok {
		if s.consuming.Load() {
			return nil, ErrUnfenced
		}
		return []any{"", ""}, nil
	}
	return []any{f.partition, f.lease}, nil
}

// Progress implements store.Store. Called with a delivery's context, it
// fails with ErrLeaseLost once the lease is lost.
func (s *Store) Progress(ctx context.Context, seq uint64, p store.Progress) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	fa, err := s.fenceArgs(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: progress of event %d: %w", seq, err)
	}
	args := append([]any{s.prefix, seq}, fa...)
	args = append(args, encodeProgress(p))
	return s.fail(fmt.Sprintf("progress of event %d", seq), s.eval(ctx, progressScript, args...).Err())
}

// completionArgs encodes c as the arguments of the scripts' apply.
func (s *Store) completionArgs(c store.Completion) []any {
	var args []any
	if c.State != nil {
		args = append(args, c.State.Key, encodeState(*c.State), micros(c.State.LastActive), s.limits.MaxStates)
	} else {
		args = append(args, "", "", 0, s.limits.MaxStates)
	}
	ttl := max(c.DedupTTL, time.Microsecond)
	args = append(args, micros(s.now().Add(ttl)), s.limits.MaxDedupKeys, len(c.DedupKeys))
	for _, k := range c.DedupKeys {
		args = append(args, k)
	}
	return args
}

// Complete implements store.Store. Called with a delivery's context, it
// fails with ErrLeaseLost once the lease is lost.
func (s *Store) Complete(ctx context.Context, seq uint64, c store.Completion) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("redisstore: complete event %d: %w", seq, err)
	}
	fa, err := s.fenceArgs(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: complete event %d: %w", seq, err)
	}
	args := append([]any{s.prefix, seq}, fa...)
	args = append(args, s.completionArgs(c)...)
	err = s.fail(fmt.Sprintf("complete event %d", seq), s.eval(ctx, completeScript, args...).Err())
	finished(ctx, seq, err)
	return err
}

// DeadLetter implements store.Store. Called with a delivery's context, it
// fails with ErrLeaseLost once the lease is lost.
func (s *Store) DeadLetter(ctx context.Context, seq uint64, f store.Failure, c store.Completion) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("redisstore: dead-letter event %d: %w", seq, err)
	}
	fa, err := s.fenceArgs(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: dead-letter event %d: %w", seq, err)
	}
	args := append([]any{s.prefix, seq}, fa...)
	args = append(args, encodeFailure(f), s.limits.MaxDeadLetters)
	args = append(args, s.completionArgs(c)...)
	err = s.fail(fmt.Sprintf("dead-letter event %d", seq), s.eval(ctx, deadLetterScript, args...).Err())
	finished(ctx, seq, err)
	return err
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, s.key("dz"), 0, -1).Result()
	if err != nil {
		return nil, s.fail("list dead letters", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.key("d:", id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.fail("read dead letters", err)
		}
	}
	out := make([]store.DeadLetter, 0, len(ids))
	for i, idStr := range ids {
		fields := cmds[i].Val()
		if len(fields) == 0 {
			continue // dropped or replayed meanwhile
		}
		d, err := decodeDeadLetter(idStr, fields)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func decodeDeadLetter(idStr string, fields map[string]string) (store.DeadLetter, error) {
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return store.DeadLetter{}, fmt.Errorf("redisstore: dead letter %q: %w", idStr, errCorrupt)
	}
	v := make(map[string]any, len(fields))
	for k, x := range fields {
		v[k] = x
	}
	ev, err := decodeFields(v)
	if err == nil {
		ev.Seq = id
		ev.Progress, err = decodeProgress(fields["p"])
	}
	var f store.Failure
	if err == nil {
		f, err = decodeFailure(fields["f"])
	}
	if err != nil {
		return store.DeadLetter{}, fmt.Errorf("redisstore: dead letter %d: %w", id, err)
	}
	return store.DeadLetter{ID: id, Event: ev, Failure: f}, nil
}

// Replay implements store.Store. The replayed event is appended to its
// lane's partition: in a fleet the replica holding that partition
// delivers it.
func (s *Store) Replay(ctx context.Context, id uint64) (store.Event, error) {
	if err := s.check(ctx); err != nil {
		return store.Event{}, err
	}
	op := fmt.Sprintf("replay dead letter %d", id)
	idStr := strconv.FormatUint(id, 10)
	fields, err := s.rdb.HGetAll(ctx, s.key("d:", idStr)).Result()
	if err != nil {
		return store.Event{}, s.fail(op, err)
	}
	if len(fields) == 0 {
		return store.Event{}, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	d, err := decodeDeadLetter(idStr, fields)
	if err != nil {
		return store.Event{}, err
	}
	ev := d.Event
	ev.ReplayOf = id
	ev.Progress = store.ReplayProgress(ev.Progress)
	seq, err := s.eval(ctx, replayScript, s.prefix, s.limits.MaxPending, s.limits.MaxPendingBytes,
		id, s.Partition(ev.Lane), encodeProgress(ev.Progress)).Uint64()
	if err != nil {
		return store.Event{}, s.fail(op, err)
	}
	ev.Seq = seq
	return ev, nil
}

// Drop implements store.Store.
func (s *Store) Drop(ctx context.Context, id uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.fail(fmt.Sprintf("drop dead letter %d", id), s.eval(ctx, dropScript, s.prefix, id).Err())
}

// Seen implements store.Store.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	cmd := redis.NewFloatCmd(ctx, "zscore", s.key("dd"), key)
	err := s.batch.do(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, s.fail("check a dedup key", err)
	}
	return s.unexpired(cmd.Val()), nil
}

// Remember implements store.Store.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c := store.Completion{DedupKeys: []string{key}, DedupTTL: ttl}
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("redisstore: remember a dedup key: %w", err)
	}
	args := append([]any{s.prefix}, s.completionArgs(c)...)
	return s.fail("remember a dedup key", s.eval(ctx, applyScript, args...).Err())
}

// ExpireDedup implements store.Store: it forgets the dedup keys whose
// expiry, by the store's clock, has passed.
func (s *Store) ExpireDedup(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	n, err := s.rdb.ZRemRangeByScore(ctx, s.key("dd"), "-inf", micros(s.now())).Result()
	return int(n), s.fail("expire dedup keys", err)
}

// LoadState implements store.Store.
// SeenAndLoadState implements store.SeenLoader: one script reads the
// dedup key's expiry and the state, in one round trip.
func (s *Store) SeenAndLoadState(ctx context.Context, dedupKey, stateKey string) (bool, []byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return false, nil, false, err
	}
	vals, err := s.eval(ctx, seenAndStateScript, s.prefix, dedupKey, stateKey).Slice()
	if err != nil {
		return false, nil, false, s.fail("check a dedup key and load a state", err)
	}
	if len(vals) != 2 {
		return false, nil, false, fmt.Errorf("redisstore: check a dedup key and load a state: %d values in the reply, want 2", len(vals))
	}
	seen := false
	if exp, ok := vals[0].(string); ok {
		us, err := strconv.ParseFloat(exp, 64)
		if err != nil {
			return false, nil, false, fmt.Errorf("redisstore: dedup key %q: expiry %q: %w", dedupKey, exp, err)
		}
		seen = s.unexpired(us)
	}
	raw, ok := vals[1].(string)
	if !ok {
		return seen, nil, false, nil
	}
	data, err := stateData(stateKey, raw)
	if err != nil {
		return false, nil, false, err
	}
	return seen, data, true, nil
}

// unexpired reports whether a dedup key's expiry (Unix µs, its score in
// dd) is still ahead.
func (s *Store) unexpired(expiry float64) bool { return int64(expiry) > s.now().UnixMicro() }

// stateData is the gateway's encoding of a state as the st hash keeps it.
func stateData(key, raw string) ([]byte, error) {
	st, err := decodeState(key, raw)
	if err != nil {
		return nil, fmt.Errorf("redisstore: state %q: %w", key, err)
	}
	return st.Data, nil
}

func (s *Store) LoadState(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	cmd := redis.NewStringCmd(ctx, "hget", s.key("st"), key)
	err := s.batch.do(ctx, cmd)
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.fail("load a state", err)
	}
	data, err := stateData(key, cmd.Val())
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// SaveState implements store.Store.
func (s *Store) SaveState(ctx context.Context, st store.State) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.CheckCompletion(store.Completion{State: &st}); err != nil {
		return fmt.Errorf("redisstore: save a state: %w", err)
	}
	args := append([]any{s.prefix}, s.completionArgs(store.Completion{State: &st})...)
	return s.fail("save a state", s.eval(ctx, applyScript, args...).Err())
}

// scanChunk is how many states ScanStates reads at once, and ExpireStates
// forgets in one script (a script blocks Redis while it runs).
const scanChunk = 1000

// ScanStates implements store.Store. It reads the states in chunks in key
// order, so fn may write, and a state present throughout the scan is seen
// exactly once.
func (s *Store) ScanStates(ctx context.Context, fn func(store.State) error) error {
	cursor := "-"
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		keys, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.key("sk"), Start: cursor, Stop: "+", ByLex: true, Count: scanChunk}).Result()
		if err != nil {
			return s.fail("scan states", err)
		}
		if len(keys) == 0 {
			return nil
		}
		vals, err := s.rdb.HMGet(ctx, s.key("st"), keys...).Result()
		if err != nil {
			return s.fail("scan states", err)
		}
		for i, k := range keys {
			v, ok := vals[i].(string)
			if !ok {
				continue // forgotten meanwhile
			}
			st, err := decodeState(k, v)
			if err != nil {
				return fmt.Errorf("redisstore: state %q: %w", k, err)
			}
			if err := fn(st); err != nil {
				return err
			}
		}
		cursor = "(" + keys[len(keys)-1]
	}
}

// ExpireStates implements store.Store.
func (s *Store) ExpireStates(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		if err := s.check(ctx); err != nil {
			return total, err
		}
		n, err := expireStatesScript.Run(ctx, s.rdb, s.keys(), s.prefix, micros(before), scanChunk).Int()
		if err != nil {
			return total, s.fail("expire states", err)
		}
		total += n
		if n < scanChunk {
			return total, nil
		}
	}
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if err := s.check(ctx); err != nil {
		return store.Stats{}, err
	}
	var meta *redis.SliceCmd
	var dead, states *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HMGet(ctx, s.key("meta"), "pending", "bytes", "evicted")
		dead = p.ZCard(ctx, s.key("dz"))
		states = p.ZCard(ctx, s.key("sa"))
		return nil
	})
	if err != nil {
		return store.Stats{}, s.fail("stats", err)
	}
	num := func(v any) int64 {
		str, _ := v.(string)
		n, _ := strconv.ParseInt(str, 10, 64)
		return n
	}
	m := meta.Val()
	return store.Stats{
		Pending:            int(num(m[0])),
		PendingBytes:       num(m[1]),
		DeadLetters:        int(dead.Val()),
		DeadLettersEvicted: uint64(num(m[2])),
		States:             int(states.Val()),
	}, nil
}

// Close implements store.Store. It closes the connections; a Consumer of
// the store must be stopped first.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	err := s.rdb.Close() // first, so that a pipeline in flight ends now
	s.batch.stop()
	return err
}
