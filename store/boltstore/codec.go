package boltstore

import (
	"encoding/binary"
	"time"

	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/internal/record"
)

// The records of format 1 are laid out by package record: sequences of
// varints and length-prefixed byte strings, progress and failures as the
// Redis store lays them out too. A record that ends early or has bytes
// left over is corrupt.

// timeKey is t in Unix nanoseconds, 0 for the zero time.
func timeKey(t time.Time) int64 { return record.UnixNano(t) }

// sortableTime is t as a big-endian key that sorts in time order.
func sortableTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(timeKey(t))^(1<<63))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func encodeEvent(e *record.Encoder, ev store.Event) {
	e.String(ev.Lane)
	e.Time(ev.Accepted)
	e.Uint(ev.ReplayOf)
	e.Bytes(ev.Body)
}

func decodeEvent(d *record.Decoder, seq uint64) store.Event {
	ev := store.Event{Seq: seq}
	ev.Lane = d.String()
	ev.Accepted = d.Time()
	ev.ReplayOf = d.Uint()
	ev.Body = d.Bytes()
	return ev
}

// A dead letter record is the event, its progress and the failure.
func encodeDeadLetter(dl store.DeadLetter) []byte {
	var e record.Encoder
	encodeEvent(&e, dl.Event)
	record.EncodeProgress(&e, dl.Event.Progress)
	record.EncodeFailure(&e, dl.Failure)
	return e.B
}

func decodeDeadLetter(id uint64, b []byte) (store.DeadLetter, error) {
	d := record.NewDecoder(b)
	dl := store.DeadLetter{ID: id}
	dl.Event = decodeEvent(d, id)
	dl.Event.Progress = record.DecodeProgress(d)
	dl.Failure = record.DecodeFailure(d)
	return dl, d.Done()
}

// A state record is the last activity and the data.
func encodeState(s store.State) []byte {
	var e record.Encoder
	e.Time(s.LastActive)
	e.Bytes(s.Data)
	return e.B
}

func decodeState(key string, b []byte) (store.State, error) {
	d := record.NewDecoder(b)
	s := store.State{Key: key}
	s.LastActive = d.Time()
	s.Data = d.Bytes()
	return s, d.Done()
}
