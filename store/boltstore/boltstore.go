// Package boltstore is a store.Store in one bbolt file in a data directory
// (--data-dir): what the gateway acknowledged survives kill -9 and power
// loss. Every change is committed and fsynced before its method returns;
// concurrent changes share one commit (see committer).
//
// The file holds one bucket per kind of record and a meta bucket with the
// format version and the counters the limits are checked against; a file
// of another format is refused, never rewritten.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/internal/record"
)

// FileName is the name of the database file in the data directory.
const FileName = "threadgate.db"

// FormatVersion is the version of the file's layout this package reads and
// writes. A file of another version is refused with ErrUnknownFormat.
const FormatVersion = 1

// DefaultLockTimeout is how long Open waits for another process to release
// the file.
const DefaultLockTimeout = time.Second

// Errors of Open, wrapped with the path and what to do.
var (
	// ErrLocked means another process holds the file.
	ErrLocked = errors.New("data file is locked by another process")
	// ErrUnwritable means the directory or the file cannot be written.
	ErrUnwritable = errors.New("data directory is not writable")
	// ErrCorrupt means the file is not a readable bbolt file, or a record
	// in it cannot be decoded.
	ErrCorrupt = errors.New("data file is damaged or not a threadgate database")
	// ErrUnknownFormat means the file was written by a threadgate with
	// another format version.
	ErrUnknownFormat = errors.New("data file has an unknown format version")
)

// errClosed is store.ErrClosed, for the committer.
var errClosed = store.ErrClosed

// Bucket and key names.
var (
	bucketMeta       = []byte("meta")
	bucketEvents     = []byte("events")       // seq → event
	bucketProgress   = []byte("progress")     // seq → progress
	bucketDead       = []byte("dead")         // id → dead letter
	bucketDedup      = []byte("dedup")        // key → expiry
	bucketDedupByExp = []byte("dedup.expiry") // sortable expiry + key → nothing
	bucketStates     = []byte("states")       // key → state
	bucketStatesAge  = []byte("states.age")   // sortable last activity + key → nothing

	allBuckets = [][]byte{bucketMeta, bucketEvents, bucketProgress, bucketDead, bucketDedup, bucketDedupByExp, bucketStates, bucketStatesAge}

	keyFormat       = []byte("format")
	keyPending      = []byte("pending.count")
	keyPendingBytes = []byte("pending.bytes")
	keyDead         = []byte("dead.count")
	keyDeadEvicted  = []byte("dead.evicted")
	keyStates       = []byte("states.count")
)

// Options configure Open.
type Options struct {
	store.Options
	// LockTimeout is how long Open waits for another process to release
	// the file; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Store is a store.Store in a bbolt file.
type Store struct {
	path   string
	db     *bolt.DB
	c      *committer
	now    func() time.Time
	limits store.Limits
}

var _ store.Store = (*Store)(nil)

// Open opens the store in dir, creating dir and the file if needed. It
// fails, never falling back to anything, when the file is locked by
// another process (ErrLocked), cannot be written (ErrUnwritable), is
// damaged (ErrCorrupt) or of another format (ErrUnknownFormat); the error
// names the path and what to do.
func Open(dir string, o Options) (s *Store, err error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w: %w (give a --data-dir the gateway's user can create and write)", dir, ErrUnwritable, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openBolt(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	if err := initFile(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	return &Store{path: path, db: db, c: newCommitter(db), now: o.Clock(), limits: o.Limits.WithDefaults()}, nil
}

// openBolt opens the file and turns bbolt's errors, and any panic on a
// damaged file, into errors an operator can act on.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("data file %s: %w: %v (move it aside to start with an empty store, losing what it held, or restore it from a backup)", path, ErrCorrupt, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("data file %s: %w (another threadgate uses this --data-dir? stop it, or give each process its own data dir)", path, ErrLocked)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("data file %s: %w: %w (give the gateway's user write access to it, or choose another --data-dir)", path, ErrUnwritable, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("data file %s: %w: %w (move it aside to start with an empty store, losing what it held, or restore it from a backup)", path, ErrCorrupt, err)
	}
	return nil, fmt.Errorf("open data file %s: %w", path, err)
}

// initFile creates the buckets of a new file, or checks the format of an
// existing one.
func initFile(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if err := tx.ForEach(func([]byte, *bolt.Bucket) error { return errNotOurs }); err != nil {
				return fmt.Errorf("%w: a bbolt file without threadgate's meta bucket (move it aside or choose another --data-dir)", ErrCorrupt)
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte(strconv.Itoa(FormatVersion)))
		}
		v := string(meta.Get(keyFormat))
		if v != strconv.Itoa(FormatVersion) {
			return fmt.Errorf("%w: the file is format %q, this threadgate reads format %d (run the threadgate version that wrote it, or move the file aside)", ErrUnknownFormat, v, FormatVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %s is missing (move the file aside or restore it from a backup)", ErrCorrupt, name)
			}
		}
		return nil
	})
}

var errNotOurs = errors.New("not a threadgate file")

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

// Commits returns how many write transactions the store committed, and how
// many writes they carried: with concurrent writers, fewer commits than
// writes.
func (s *Store) Commits() (commits, writes uint64) {
	return s.c.commits.Load(), s.c.writes.Load()
}

// update runs fn in a shared write transaction (see committer.update).
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.c.update(fn)
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.c.mu.RLock()
	defer s.c.mu.RUnlock()
	if s.c.closed {
		return store.ErrClosed
	}
	return s.db.View(fn)
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.Event, error) {
	var size int64
	for i, e := range events {
		if e.Lane == "" {
			return nil, fmt.Errorf("append event %d: no lane: %w", i, store.ErrInvalid)
		}
		size += int64(len(e.Body))
	}
	if len(events) == 0 {
		return nil, nil
	}
	now := s.now()
	out := make([]store.Event, len(events))
	err := s.update(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		cnt := readCounters(meta)
		if !s.fits(cnt, len(events), size) {
			return store.ErrFull
		}
		b := tx.Bucket(bucketEvents)
		for i, e := range events {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			out[i] = store.Event{Seq: seq, Lane: e.Lane, Body: e.Body, Accepted: now}
			var enc record.Encoder
			encodeEvent(&enc, out[i])
			if err := b.Put(seqKey(seq), enc.B); err != nil {
				return err
			}
		}
		cnt.pending += int64(len(events))
		cnt.pendingBytes += size
		return cnt.write(meta)
	})
	if err != nil {
		if errors.Is(err, store.ErrFull) {
			return nil, err
		}
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	for i := range out {
		out[i].Body = bytes.Clone(out[i].Body)
	}
	return out, nil
}

// Pending implements store.Store.
func (s *Store) Pending(ctx context.Context) ([]store.Event, error) {
	var out []store.Event
	err := s.view(ctx, func(tx *bolt.Tx) error {
		progress := tx.Bucket(bucketProgress)
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			seq := binary.BigEndian.Uint64(k)
			ev, err := readEvent(seq, v, progress)
			if err != nil {
				return err
			}
			out = append(out, ev)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pending events: %w", err)
	}
	return out, nil
}

// readEvent decodes the event stored as v and its progress.
func readEvent(seq uint64, v []byte, progress *bolt.Bucket) (store.Event, error) {
	d := record.NewDecoder(v)
	ev := decodeEvent(d, seq)
	if err := d.Done(); err != nil {
		return store.Event{}, fmt.Errorf("event %d: %w: %w", seq, ErrCorrupt, err)
	}
	if p := progress.Get(seqKey(seq)); p != nil {
		d := record.NewDecoder(p)
		ev.Progress = record.DecodeProgress(d)
		if err := d.Done(); err != nil {
			return store.Event{}, fmt.Errorf("progress of event %d: %w: %w", seq, ErrCorrupt, err)
		}
	}
	return ev, nil
}

// Progress implements store.Store.
func (s *Store) Progress(ctx context.Context, seq uint64, p store.Progress) error {
	var enc record.Encoder
	record.EncodeProgress(&enc, p)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEvents).Get(seqKey(seq)) == nil {
			return store.ErrNotFound
		}
		return tx.Bucket(bucketProgress).Put(seqKey(seq), enc.B)
	})
	if err != nil {
		return fmt.Errorf("progress of event %d: %w", seq, err)
	}
	return nil
}

// removePending deletes a pending event and its progress, and returns it.
func removePending(tx *bolt.Tx, seq uint64) (store.Event, error) {
	events, progress := tx.Bucket(bucketEvents), tx.Bucket(bucketProgress)
	v := events.Get(seqKey(seq))
	if v == nil {
		return store.Event{}, store.ErrNotFound
	}
	ev, err := readEvent(seq, v, progress)
	if err != nil {
		return store.Event{}, err
	}
	if err := events.Delete(seqKey(seq)); err != nil {
		return store.Event{}, err
	}
	if err := progress.Delete(seqKey(seq)); err != nil {
		return store.Event{}, err
	}
	meta := tx.Bucket(bucketMeta)
	cnt := readCounters(meta)
	cnt.pending--
	cnt.pendingBytes -= ev.Size()
	return ev, cnt.write(meta)
}

// Complete implements store.Store.
func (s *Store) Complete(ctx context.Context, seq uint64, c store.Completion) error {
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("complete event %d: %w", seq, err)
	}
	now := s.now()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := removePending(tx, seq); err != nil {
			return err
		}
		return s.apply(tx, c, now)
	})
	if err != nil {
		return fmt.Errorf("complete event %d: %w", seq, err)
	}
	return nil
}

// apply saves the state and records the dedup keys of a completion.
func (s *Store) apply(tx *bolt.Tx, c store.Completion, now time.Time) error {
	if c.State != nil {
		if err := s.saveState(tx, *c.State); err != nil {
			return err
		}
	}
	for _, k := range c.DedupKeys {
		if err := remember(tx, k, now.Add(c.DedupTTL)); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetter implements store.Store.
func (s *Store) DeadLetter(ctx context.Context, seq uint64, f store.Failure, c store.Completion) error {
	if err := store.CheckCompletion(c); err != nil {
		return fmt.Errorf("dead-letter event %d: %w", seq, err)
	}
	now := s.now()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		ev, err := removePending(tx, seq)
		if err != nil {
			return err
		}
		dead, meta := tx.Bucket(bucketDead), tx.Bucket(bucketMeta)
		if err := dead.Put(seqKey(seq), encodeDeadLetter(store.DeadLetter{ID: seq, Event: ev, Failure: f})); err != nil {
			return err
		}
		cnt := readCounters(meta)
		cnt.dead++
		for cnt.dead > int64(s.limits.MaxDeadLetters) {
			k, _ := dead.Cursor().First()
			if err := dead.Delete(k); err != nil {
				return err
			}
			cnt.dead--
			cnt.deadEvicted++
		}
		if err := cnt.write(meta); err != nil {
			return err
		}
		return s.apply(tx, c, now)
	})
	if err != nil {
		return fmt.Errorf("dead-letter event %d: %w", seq, err)
	}
	return nil
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	var out []store.DeadLetter
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			dl, err := decodeDeadLetter(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return fmt.Errorf("dead letter %d: %w: %w", binary.BigEndian.Uint64(k), ErrCorrupt, err)
			}
			out = append(out, dl)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

// Replay implements store.Store.
func (s *Store) Replay(ctx context.Context, id uint64) (store.Event, error) {
	var ev store.Event
	err := s.update(ctx, func(tx *bolt.Tx) error {
		dead, meta, events := tx.Bucket(bucketDead), tx.Bucket(bucketMeta), tx.Bucket(bucketEvents)
		v := dead.Get(seqKey(id))
		if v == nil {
			return store.ErrNotFound
		}
		dl, err := decodeDeadLetter(id, v)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		ev = dl.Event
		cnt := readCounters(meta)
		if !s.fits(cnt, 1, ev.Size()) {
			return store.ErrFull
		}
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		ev.Seq, ev.ReplayOf, ev.Progress = seq, id, store.ReplayProgress(ev.Progress)
		var enc record.Encoder
		encodeEvent(&enc, ev)
		if err := events.Put(seqKey(seq), enc.B); err != nil {
			return err
		}
		enc = record.Encoder{}
		record.EncodeProgress(&enc, ev.Progress)
		if err := tx.Bucket(bucketProgress).Put(seqKey(seq), enc.B); err != nil {
			return err
		}
		if err := dead.Delete(seqKey(id)); err != nil {
			return err
		}
		cnt.dead--
		cnt.pending++
		cnt.pendingBytes += ev.Size()
		return cnt.write(meta)
	})
	if err != nil {
		if errors.Is(err, store.ErrFull) {
			return store.Event{}, err
		}
		return store.Event{}, fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	return ev, nil
}

// Drop implements store.Store.
func (s *Store) Drop(ctx context.Context, id uint64) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		dead := tx.Bucket(bucketDead)
		if dead.Get(seqKey(id)) == nil {
			return store.ErrNotFound
		}
		if err := dead.Delete(seqKey(id)); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		cnt := readCounters(meta)
		cnt.dead--
		return cnt.write(meta)
	})
	if err != nil {
		return fmt.Errorf("drop dead letter %d: %w", id, err)
	}
	return nil
}

// Seen implements store.Store.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	var seen bool
	now := s.now()
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDedup).Get([]byte(key))
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("dedup key expiry: %w", ErrCorrupt)
		}
		seen = int64(binary.BigEndian.Uint64(v)) > timeKey(now)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("look up dedup key: %w", err)
	}
	return seen, nil
}

// Remember implements store.Store.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return fmt.Errorf("remember dedup key: empty key or no TTL: %w", store.ErrInvalid)
	}
	exp := s.now().Add(ttl)
	if err := s.update(ctx, func(tx *bolt.Tx) error { return remember(tx, key, exp) }); err != nil {
		return fmt.Errorf("remember dedup key: %w", err)
	}
	return nil
}

// remember records key until exp, keeping a later expiry already recorded.
func remember(tx *bolt.Tx, key string, exp time.Time) error {
	dedup, byExp := tx.Bucket(bucketDedup), tx.Bucket(bucketDedupByExp)
	k := []byte(key)
	if old := dedup.Get(k); len(old) == 8 {
		oldExp := int64(binary.BigEndian.Uint64(old))
		if oldExp >= timeKey(exp) {
			return nil
		}
		if err := byExp.Delete(indexKey(time.Unix(0, oldExp), key)); err != nil {
			return err
		}
	}
	if err := dedup.Put(k, binary.BigEndian.AppendUint64(nil, uint64(timeKey(exp)))); err != nil {
		return err
	}
	return byExp.Put(indexKey(exp, key), nil)
}

// indexKey orders key by t.
func indexKey(t time.Time, key string) []byte {
	return append(sortableTime(t), key...)
}

// ExpireDedup implements store.Store.
func (s *Store) ExpireDedup(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		dedup, byExp := tx.Bucket(bucketDedup), tx.Bucket(bucketDedupByExp)
		limit := sortableTime(now)
		c := byExp.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0; k, _ = c.First() {
			if err := dedup.Delete(k[8:]); err != nil {
				return err
			}
			if err := byExp.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire dedup keys: %w", err)
	}
	return n, nil
}

// LoadState implements store.Store.
func (s *Store) LoadState(ctx context.Context, key string) ([]byte, bool, error) {
	var data []byte
	var ok bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStates).Get([]byte(key))
		if v == nil {
			return nil
		}
		st, err := decodeState(key, v)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		data, ok = st.Data, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("load state: %w", err)
	}
	return data, ok, nil
}

// SaveState implements store.Store.
func (s *Store) SaveState(ctx context.Context, st store.State) error {
	if st.Key == "" {
		return fmt.Errorf("save state: no key: %w", store.ErrInvalid)
	}
	if err := s.update(ctx, func(tx *bolt.Tx) error { return s.saveState(tx, st) }); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// saveState writes st and its age index entry, then evicts the least
// recently active states beyond the limit.
func (s *Store) saveState(tx *bolt.Tx, st store.State) error {
	states, byAge, meta := tx.Bucket(bucketStates), tx.Bucket(bucketStatesAge), tx.Bucket(bucketMeta)
	k := []byte(st.Key)
	if old := states.Get(k); old != nil {
		prev, err := decodeState(st.Key, old)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err := byAge.Delete(indexKey(prev.LastActive, st.Key)); err != nil {
			return err
		}
	} else {
		cnt := readCounters(meta)
		cnt.states++
		if err := cnt.write(meta); err != nil {
			return err
		}
	}
	if err := states.Put(k, encodeState(st)); err != nil {
		return err
	}
	if err := byAge.Put(indexKey(st.LastActive, st.Key), nil); err != nil {
		return err
	}
	for readCounters(meta).states > int64(s.limits.MaxStates) {
		if err := evictOldestState(tx); err != nil {
			return err
		}
	}
	return nil
}

func evictOldestState(tx *bolt.Tx) error {
	byAge := tx.Bucket(bucketStatesAge)
	k, _ := byAge.Cursor().First()
	if k == nil {
		return fmt.Errorf("%w: state count above the states kept", ErrCorrupt)
	}
	if err := tx.Bucket(bucketStates).Delete(k[8:]); err != nil {
		return err
	}
	if err := byAge.Delete(k); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	cnt := readCounters(meta)
	cnt.states--
	return cnt.write(meta)
}

// scanChunk is how many states ScanStates reads per read transaction: fn is
// called outside any transaction, so it may write to the store.
const scanChunk = 1000

// ScanStates implements store.Store.
func (s *Store) ScanStates(ctx context.Context, fn func(store.State) error) error {
	var after []byte
	for {
		var chunk []store.State
		err := s.view(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketStates).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(chunk) < scanChunk; k, v = c.Next() {
				st, err := decodeState(string(k), v)
				if err != nil {
					return fmt.Errorf("state %q: %w: %w", k, ErrCorrupt, err)
				}
				chunk = append(chunk, st)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("scan states: %w", err)
		}
		for _, st := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(st); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
		after = []byte(chunk[len(chunk)-1].Key)
	}
}

// ExpireStates implements store.Store.
func (s *Store) ExpireStates(ctx context.Context, before time.Time) (int, error) {
	n := 0
	limit := sortableTime(before)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketStatesAge).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) < 0; k, _ = c.First() {
			if err := evictOldestState(tx); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire states: %w", err)
	}
	return n, nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		cnt := readCounters(tx.Bucket(bucketMeta))
		st = store.Stats{
			Pending:            int(cnt.pending),
			PendingBytes:       cnt.pendingBytes,
			DeadLetters:        int(cnt.dead),
			DeadLettersEvicted: uint64(cnt.deadEvicted),
			States:             int(cnt.states),
		}
		return nil
	})
	if err != nil {
		return store.Stats{}, fmt.Errorf("read store stats: %w", err)
	}
	return st, nil
}

// Close implements store.Store: it waits for the writes already accepted,
// then closes the file and releases its lock.
func (s *Store) Close() error {
	if !s.c.close() {
		return store.ErrClosed
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close data file %s: %w", s.path, err)
	}
	return nil
}

// counters are kept in the meta bucket, in the same transactions as the
// records they count, so the limits are checked against exact numbers.
type counters struct {
	pending, pendingBytes, dead, deadEvicted, states int64
}

// fits reports whether n more events of size bytes stay within the limits.
func (s *Store) fits(c counters, n int, size int64) bool {
	return c.pending+int64(n) <= int64(s.limits.MaxPending) && c.pendingBytes+size <= s.limits.MaxPendingBytes
}

func readCounters(meta *bolt.Bucket) counters {
	return counters{
		pending:      getInt(meta, keyPending),
		pendingBytes: getInt(meta, keyPendingBytes),
		dead:         getInt(meta, keyDead),
		deadEvicted:  getInt(meta, keyDeadEvicted),
		states:       getInt(meta, keyStates),
	}
}

func (c counters) write(meta *bolt.Bucket) error {
	for _, kv := range []struct {
		key []byte
		v   int64
	}{{keyPending, c.pending}, {keyPendingBytes, c.pendingBytes}, {keyDead, c.dead}, {keyDeadEvicted, c.deadEvicted}, {keyStates, c.states}} {
		if err := meta.Put(kv.key, binary.BigEndian.AppendUint64(nil, uint64(kv.v))); err != nil {
			return err
		}
	}
	return nil
}

// getInt reads a counter of the meta bucket (0 when absent).
func getInt(meta *bolt.Bucket, key []byte) int64 {
	v := meta.Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}
