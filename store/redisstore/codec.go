package redisstore

import (
	"errors"
	"strconv"
	"time"

	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/internal/record"
)

// Progress, failures and states are kept in Redis as opaque values the
// scripts never look into: a format byte, then a record as package record
// lays it out (the embedded store's layout). Sequence numbers,
// partitions, sizes and accept times are plain decimal strings, because
// the scripts read or compare them.

// formatVersion is the first byte of every encoded value.
const formatVersion = 1

// errCorrupt is returned for a value that cannot be decoded.
var errCorrupt = errors.New("redisstore: a value in Redis cannot be decoded (written by another program or version?)")

// newEncoder starts a value with the format byte.
func newEncoder() *record.Encoder { return &record.Encoder{B: []byte{formatVersion}} }

// newDecoder reads a value written after newEncoder: a value without the
// format byte decodes as corrupt.
func newDecoder(s string) *decoder {
	if len(s) == 0 || s[0] != formatVersion {
		return &decoder{d: record.NewDecoder(nil), bad: true}
	}
	return &decoder{d: record.NewDecoder([]byte(s[1:]))}
}

// decoder is a record.Decoder whose errors are errCorrupt.
type decoder struct {
	d   *record.Decoder
	bad bool
}

// done returns errCorrupt when the value did not decode whole.
func (d *decoder) done() error {
	if d.bad || d.d.Done() != nil {
		return errCorrupt
	}
	return nil
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 { return record.UnixNano(t) }

func fromUnixNano(n int64) time.Time { return record.FromUnixNano(n) }

// micros is t in Unix microseconds: exact in a Redis sorted set's score
// (a float64) for the next 285 years.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func encodeProgress(p store.Progress) string {
	if progressIsZero(p) {
		return ""
	}
	e := newEncoder()
	record.EncodeProgress(e, p)
	return string(e.B)
}

func progressIsZero(p store.Progress) bool {
	return len(p.Plan) == 0 && p.StepsDone == 0 && p.Attempts == 0 && p.RetryingSince.IsZero() && p.NotBefore.IsZero() && p.LastError == ""
}

func decodeProgress(s string) (store.Progress, error) {
	if s == "" {
		return store.Progress{}, nil
	}
	d := newDecoder(s)
	p := record.DecodeProgress(d.d)
	if len(p.Plan) == 0 {
		p.Plan = nil
	}
	return p, d.done()
}

func encodeFailure(f store.Failure) string {
	e := newEncoder()
	record.EncodeFailure(e, f)
	return string(e.B)
}

func decodeFailure(s string) (store.Failure, error) {
	d := newDecoder(s)
	f := record.DecodeFailure(d.d)
	return f, d.done()
}

func encodeState(s store.State) string {
	e := newEncoder()
	e.Time(s.LastActive)
	e.Bytes(s.Data)
	return string(e.B)
}

func decodeState(key, v string) (store.State, error) {
	d := newDecoder(v)
	s := store.State{Key: key, LastActive: d.d.Time(), Data: d.d.Bytes()}
	return s, d.done()
}
