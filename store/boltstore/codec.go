package boltstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/threadgate/threadgate/store"
)

// The records of format 1 are sequences of fields: unsigned varints,
// signed varints (times as Unix nanoseconds, 0 for the zero time) and
// length-prefixed byte strings. A record that ends early or has bytes left
// over is corrupt.

// errShortRecord is returned for a record that ends before its last field.
var errShortRecord = errors.New("record ends early")

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)     { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(v []byte)  { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) string(v string) { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) time(t time.Time) {
	e.int(timeKey(t))
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRecord
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
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a copy: bbolt's memory is valid only inside its transaction.
func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShortRecord
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	n := d.int()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// done returns the first error, or an error if bytes are left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("record has trailing bytes")
	}
	return d.err
}

// timeKey is t in Unix nanoseconds, 0 for the zero time.
func timeKey(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// sortableTime is t as a big-endian key that sorts in time order.
func sortableTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(timeKey(t))^(1<<63))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func encodeEvent(e *encoder, ev store.Event) {
	e.string(ev.Lane)
	e.time(ev.Accepted)
	e.uint(ev.ReplayOf)
	e.bytes(ev.Body)
}

func decodeEvent(d *decoder, seq uint64) store.Event {
	ev := store.Event{Seq: seq}
	ev.Lane = d.string()
	ev.Accepted = d.time()
	ev.ReplayOf = d.uint()
	ev.Body = d.bytes()
	return ev
}

func encodeProgress(e *encoder, p store.Progress) {
	e.bytes(p.Plan)
	e.uint(uint64(p.StepsDone))
	e.uint(uint64(p.Attempts))
	e.time(p.RetryingSince)
	e.time(p.NotBefore)
	e.string(p.LastError)
}

func decodeProgress(d *decoder) store.Progress {
	var p store.Progress
	p.Plan = d.bytes()
	p.StepsDone = int(d.uint())
	p.Attempts = int(d.uint())
	p.RetryingSince = d.time()
	p.NotBefore = d.time()
	p.LastError = d.string()
	return p
}

func encodeFailure(e *encoder, f store.Failure) {
	e.string(f.Rule)
	e.int(int64(f.Step))
	e.string(f.StepKind)
	if g := f.Graph; g != nil {
		e.uint(1)
		e.int(int64(g.HTTPStatus))
		e.int(int64(g.Code))
		e.int(int64(g.Subcode))
		e.string(g.Type)
		e.string(g.Message)
		e.string(g.FBTraceID)
	} else {
		e.uint(0)
	}
	e.string(f.Error)
	e.uint(uint64(f.Attempts))
	e.time(f.At)
}

func decodeFailure(d *decoder) store.Failure {
	var f store.Failure
	f.Rule = d.string()
	f.Step = int(d.int())
	f.StepKind = d.string()
	if d.uint() == 1 {
		g := &store.GraphError{}
		g.HTTPStatus = int(d.int())
		g.Code = int(d.int())
		g.Subcode = int(d.int())
		g.Type = d.string()
		g.Message = d.string()
		g.FBTraceID = d.string()
		f.Graph = g
	}
	f.Error = d.string()
	f.Attempts = int(d.uint())
	f.At = d.time()
	return f
}

// A dead letter record is the event, its progress and the failure.
func encodeDeadLetter(dl store.DeadLetter) []byte {
	var e encoder
	encodeEvent(&e, dl.Event)
	encodeProgress(&e, dl.Event.Progress)
	encodeFailure(&e, dl.Failure)
	return e.b
}

func decodeDeadLetter(id uint64, b []byte) (store.DeadLetter, error) {
	d := decoder{b: b}
	dl := store.DeadLetter{ID: id}
	dl.Event = decodeEvent(&d, id)
	dl.Event.Progress = decodeProgress(&d)
	dl.Failure = decodeFailure(&d)
	return dl, d.done()
}

// A state record is the last activity and the data.
func encodeState(s store.State) []byte {
	var e encoder
	e.time(s.LastActive)
	e.bytes(s.Data)
	return e.b
}

func decodeState(key string, b []byte) (store.State, error) {
	d := decoder{b: b}
	s := store.State{Key: key}
	s.LastActive = d.time()
	s.Data = d.bytes()
	return s, d.done()
}
