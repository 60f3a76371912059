package redisstore

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/threadgate/threadgate/store"
)

// Progress, failures and states are kept in Redis as opaque values the
// scripts never look into: sequences of fields, each an unsigned varint,
// a signed varint (times as Unix nanoseconds, 0 for the zero time) or a
// length-prefixed byte string, after a format byte. Sequence numbers,
// partitions, sizes and accept times are plain decimal strings, because
// the scripts read or compare them.

// formatVersion is the first byte of every encoded value.
const formatVersion = 1

// errCorrupt is returned for a value that cannot be decoded.
var errCorrupt = errors.New("redisstore: a value in Redis cannot be decoded (written by another program or version?)")

type encoder struct{ b []byte }

func newEncoder() *encoder          { return &encoder{b: []byte{formatVersion}} }
func (e *encoder) uint(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(v []byte)   { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) string(v string)  { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) time(t time.Time) { e.int(unixNano(t)) }
func (e *encoder) result() string   { return string(e.b) }
func (e *encoder) optional(ok bool) {
	if ok {
		e.uint(1)
	} else {
		e.uint(0)
	}
}
func (e *encoder) ints(vs ...int) {
	for _, v := range vs {
		e.int(int64(v))
	}
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(s string) *decoder {
	if len(s) == 0 || s[0] != formatVersion {
		return &decoder{err: errCorrupt}
	}
	return &decoder{b: []byte(s[1:])}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errCorrupt
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string  { return string(d.bytes()) }
func (d *decoder) time() time.Time { return fromUnixNano(d.int()) }
func (d *decoder) intv() int       { return int(d.int()) }
func (d *decoder) optional() bool  { return d.uint() == 1 }

// done returns the decoding error, or errCorrupt when bytes are left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return d.err
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// micros is t in Unix microseconds: exact in a Redis sorted set's score
// (a float64) for the next 285 years.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func encodeProgress(p store.Progress) string {
	if progressIsZero(p) {
		return ""
	}
	e := newEncoder()
	e.bytes(p.Plan)
	e.ints(p.StepsDone, p.Attempts)
	e.time(p.RetryingSince)
	e.time(p.NotBefore)
	e.string(p.LastError)
	return e.result()
}

func progressIsZero(p store.Progress) bool {
	return len(p.Plan) == 0 && p.StepsDone == 0 && p.Attempts == 0 && p.RetryingSince.IsZero() && p.NotBefore.IsZero() && p.LastError == ""
}

func decodeProgress(s string) (store.Progress, error) {
	if s == "" {
		return store.Progress{}, nil
	}
	d := newDecoder(s)
	p := store.Progress{Plan: d.bytes(), StepsDone: d.intv(), Attempts: d.intv(), RetryingSince: d.time(), NotBefore: d.time(), LastError: d.string()}
	if len(p.Plan) == 0 {
		p.Plan = nil
	}
	return p, d.done()
}

func encodeFailure(f store.Failure) string {
	e := newEncoder()
	e.string(f.Rule)
	e.ints(f.Step)
	e.string(f.StepKind)
	e.optional(f.Graph != nil)
	if g := f.Graph; g != nil {
		e.ints(g.HTTPStatus, g.Code, g.Subcode)
		e.string(g.Type)
		e.string(g.Message)
		e.string(g.FBTraceID)
	}
	e.string(f.Error)
	e.ints(f.Attempts)
	e.time(f.At)
	return e.result()
}

func decodeFailure(s string) (store.Failure, error) {
	d := newDecoder(s)
	f := store.Failure{Rule: d.string(), Step: d.intv(), StepKind: d.string()}
	if d.optional() {
		f.Graph = &store.GraphError{HTTPStatus: d.intv(), Code: d.intv(), Subcode: d.intv(), Type: d.string(), Message: d.string(), FBTraceID: d.string()}
	}
	f.Error, f.Attempts, f.At = d.string(), d.intv(), d.time()
	return f, d.done()
}

func encodeState(s store.State) string {
	e := newEncoder()
	e.time(s.LastActive)
	e.bytes(s.Data)
	return e.result()
}

func decodeState(key, v string) (store.State, error) {
	d := newDecoder(v)
	s := store.State{Key: key, LastActive: d.time(), Data: d.bytes()}
	return s, d.done()
}
