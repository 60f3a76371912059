// Package record is the binary layout that the durable stores (boltstore,
// redisstore) give the values they keep: a sequence of fields, each an
// unsigned varint, a signed varint (times as Unix nanoseconds, 0 for the
// zero time) or a length-prefixed byte string, with the layouts of a
// store.Progress and a store.Failure that both stores share. A record that
// ends early or has bytes left over is corrupt.
package record

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/threadgate/threadgate/store"
)

// ErrShort is the error of a record that ends before its last field.
var ErrShort = errors.New("record ends early")

// ErrTrailing is the error of a record with bytes after its last field.
var ErrTrailing = errors.New("record has trailing bytes")

// Encoder appends fields to B.
type Encoder struct {
	// B is the record so far.
	B []byte
}

// Uint appends an unsigned varint.
func (e *Encoder) Uint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }

// Int appends a signed varint.
func (e *Encoder) Int(v int64) { e.B = binary.AppendVarint(e.B, v) }

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(v []byte) { e.Uint(uint64(len(v))); e.B = append(e.B, v...) }

// String appends a length-prefixed string.
func (e *Encoder) String(v string) { e.Uint(uint64(len(v))); e.B = append(e.B, v...) }

// Time appends t as Unix nanoseconds, 0 for the zero time.
func (e *Encoder) Time(t time.Time) { e.Int(UnixNano(t)) }

// Bool appends 1 or 0.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint(1)
	} else {
		e.Uint(0)
	}
}

// Decoder reads fields in the order they were appended. After the first
// error every read returns a zero value; Done reports it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads the record b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Uint reads an unsigned varint.
func (d *Decoder) Uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Int reads a signed varint.
func (d *Decoder) Int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = ErrShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Bytes reads a byte string, as a copy: the record's memory may be valid
// only for a while (bbolt's, inside its transaction).
func (d *Decoder) Bytes() []byte {
	n := d.Uint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = ErrShort
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

// String reads a string.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Time reads a time written by Encoder.Time.
func (d *Decoder) Time() time.Time { return FromUnixNano(d.Int()) }

// Bool reads a bool written by Encoder.Bool.
func (d *Decoder) Bool() bool { return d.Uint() == 1 }

// Done returns the first error, or ErrTrailing when bytes are left over.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = ErrTrailing
	}
	return d.err
}

// UnixNano is t in Unix nanoseconds, 0 for the zero time.
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromUnixNano is the inverse of UnixNano.
func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// EncodeProgress appends an event's progress.
func EncodeProgress(e *Encoder, p store.Progress) {
	e.Bytes(p.Plan)
	e.Uint(uint64(p.StepsDone))
	e.Uint(uint64(p.Attempts))
	e.Time(p.RetryingSince)
	e.Time(p.NotBefore)
	e.String(p.LastError)
}

// DecodeProgress reads what EncodeProgress appended.
func DecodeProgress(d *Decoder) store.Progress {
	var p store.Progress
	p.Plan = d.Bytes()
	p.StepsDone = int(d.Uint())
	p.Attempts = int(d.Uint())
	p.RetryingSince = d.Time()
	p.NotBefore = d.Time()
	p.LastError = d.String()
	return p
}

// EncodeFailure appends why an event became a dead letter.
func EncodeFailure(e *Encoder, f store.Failure) {
	e.String(f.Rule)
	e.Int(int64(f.Step))
	e.String(f.StepKind)
	e.Bool(f.Graph != nil)
	if g := f.Graph; g != nil {
		e.Int(int64(g.HTTPStatus))
		e.Int(int64(g.Code))
		e.Int(int64(g.Subcode))
		e.String(g.Type)
		e.String(g.Message)
		e.String(g.FBTraceID)
	}
	e.String(f.Error)
	e.Uint(uint64(f.Attempts))
	e.Time(f.At)
}

// DecodeFailure reads what EncodeFailure appended.
func DecodeFailure(d *Decoder) store.Failure {
	var f store.Failure
	f.Rule = d.String()
	f.Step = int(d.Int())
	f.StepKind = d.String()
	if d.Bool() {
		g := &store.GraphError{}
		g.HTTPStatus = int(d.Int())
		g.Code = int(d.Int())
		g.Subcode = int(d.Int())
		g.Type = d.String()
		g.Message = d.String()
		g.FBTraceID = d.String()
		f.Graph = g
	}
	f.Error = d.String()
	f.Attempts = int(d.Uint())
	f.At = d.Time()
	return f
}
