package conversation

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The stored form of a State is binary (AppendBinary, MarshalBinary,
// UnmarshalBinary), so that the gateway's load and save of a conversation on
// every event cost little. Version 1, in order:
//
//	version     1 byte, stateFormatV1
//	times       1 byte: bit i set when the i-th time of stateTimes is not zero
//	owner kind  1 byte: ownerCodes
//	owner app   string
//	each set time, in stateTimes' order:
//	            varint (zigzag) seconds since 1970 UTC, uvarint nanoseconds (< 1e9)
//	object      string
//	transcript  uvarint count, then each message as a string
//
// A string is a uvarint length and as many bytes. Varints are those of
// encoding/binary, in their shortest form. Nothing may follow the last
// message. Every State has exactly one encoding, and an encoding decodes to
// the State it came from but for two things encoding/json loses as well:
// times come back in UTC without a monotonic clock reading, and an empty
// transcript comes back nil.
//
// The version byte can never start JSON text. Data that starts with '{' (or
// JSON whitespace) is the JSON form (encoding/json of State) that earlier
// versions stored, and UnmarshalBinary still reads it.
const stateFormatV1 byte = 0x01

// Interface guards.
var (
	_ encoding.BinaryAppender    = State{}
	_ encoding.BinaryMarshaler   = State{}
	_ encoding.BinaryUnmarshaler = (*State)(nil)
)

// ownerCodes are the owner kinds' codes in the binary form, by code. The
// codes are part of the format: never renumber them.
var ownerCodes = [...]OwnerKind{0: OwnerUnknown, 1: OwnerSelf, 2: OwnerIdle, 3: OwnerApp, 4: OwnerOther}

// ownerCode returns the code of an owner kind, and false for a kind that
// is none of the known ones.
func ownerCode(k OwnerKind) (byte, bool) {
	for c, kind := range ownerCodes {
		if kind == k {
			return byte(c), true
		}
	}
	return 0, false
}

// stateTimeCount is the number of times in a State.
const stateTimeCount = 6

// allTimes is the mask of the time flags' bits in use.
const allTimes = 1<<stateTimeCount - 1

// stateTimes are the state's times, in their order in the binary form.
func stateTimes(st *State) [stateTimeCount]*time.Time {
	return [...]*time.Time{&st.OwnerSince, &st.LastActivity, &st.PausedUntil, &st.LastUserMessage, &st.OwnerLookupAt, &st.ReturnTriedAt}
}

// AppendBinary appends the binary form of the state to b and returns the
// extended buffer (encoding.BinaryAppender). It grows b at most once. It
// fails only on an owner kind that is none of the known ones.
func (st State) AppendBinary(b []byte) ([]byte, error) {
	code, ok := ownerCode(st.Owner.Kind)
	if !ok {
		return b, fmt.Errorf("conversation: encoding a state: owner kind %q unknown", st.Owner.Kind)
	}
	if n := st.binarySize(); cap(b)-len(b) < n {
		// Not slices.Grow: under the race detector it allocates twice.
		grown := make([]byte, len(b), len(b)+n)
		copy(grown, b)
		b = grown
	}
	times := stateTimes(&st)
	var set byte
	for i, t := range times {
		if !t.IsZero() {
			set |= 1 << i
		}
	}
	b = append(b, stateFormatV1, set, code)
	b = appendString(b, st.Owner.AppID)
	for _, t := range times {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.Unix())
			b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
		}
	}
	b = appendString(b, st.Object)
	b = binary.AppendUvarint(b, uint64(len(st.Transcript)))
	for _, m := range st.Transcript {
		b = appendString(b, m)
	}
	return b, nil
}

// MarshalBinary returns the binary form of the state, in one allocation
// (encoding.BinaryMarshaler).
func (st State) MarshalBinary() ([]byte, error) {
	return st.AppendBinary(nil)
}

// binarySize is the length of the state's binary form.
func (st *State) binarySize() int {
	n := 3 + stringSize(st.Owner.AppID) + stringSize(st.Object) + uvarintSize(uint64(len(st.Transcript)))
	for _, t := range stateTimes(st) {
		if !t.IsZero() {
			n += varintSize(t.Unix()) + uvarintSize(uint64(t.Nanosecond()))
		}
	}
	for _, m := range st.Transcript {
		n += stringSize(m)
	}
	return n
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func varintSize(x int64) int {
	return uvarintSize(uint64(x<<1) ^ uint64(x>>63))
}

// UnmarshalBinary sets the state from its binary form
// (encoding.BinaryUnmarshaler), or from the JSON form earlier versions
// stored (data starting with '{'). It rejects truncated, overlong and
// malformed data with an error, and leaves the state unchanged then. The
// decoded strings share one copy of data: data may be reused afterwards.
func (st *State) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return errors.New("conversation: decoding a state: no data")
	}
	switch data[0] {
	case stateFormatV1:
		got, err := decodeStateV1(data)
		if err != nil {
			return fmt.Errorf("conversation: decoding a state: %w", err)
		}
		*st = got
		return nil
	case '{', ' ', '\t', '\n', '\r':
		got, err := decodeStateJSON(data)
		if err != nil {
			return fmt.Errorf("conversation: decoding a state stored as JSON: %w", err)
		}
		*st = got
		return nil
	}
	return fmt.Errorf("conversation: decoding a state: format 0x%02x unknown (want 0x%02x, or JSON)", data[0], stateFormatV1)
}

// decodeStateJSON decodes the JSON form and normalises it as the binary
// form would: times in UTC, no empty transcript, a known owner kind.
func decodeStateJSON(data []byte) (State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, err
	}
	if _, ok := ownerCode(st.Owner.Kind); !ok {
		return State{}, fmt.Errorf("owner kind %q unknown", st.Owner.Kind)
	}
	for _, t := range stateTimes(&st) {
		*t = t.UTC()
	}
	if len(st.Transcript) == 0 {
		st.Transcript = nil
	}
	return st, nil
}

// decodeStateV1 decodes version 1 of the binary form.
func decodeStateV1(data []byte) (State, error) {
	r := stateReader{data: data, off: 1}
	var st State
	set := r.byte()
	code := r.byte()
	if r.err == nil && set&^allTimes != 0 {
		return State{}, fmt.Errorf("time flags 0x%02x: unknown bits set", set)
	}
	if r.err == nil && int(code) >= len(ownerCodes) {
		return State{}, fmt.Errorf("owner kind %d unknown", code)
	}
	st.Owner = Owner{Kind: ownerCodes[code], AppID: r.string()}
	for i, t := range stateTimes(&st) {
		if set&(1<<i) != 0 {
			*t = r.time()
		}
	}
	st.Object = r.string()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(data)-r.off) {
		// Each message takes at least one byte: a longer count cannot be
		// true, and must not size an allocation.
		return State{}, fmt.Errorf("transcript of %d messages in %d bytes", n, len(data)-r.off)
	}
	if n > 0 {
		st.Transcript = make([]string, n)
		for i := range st.Transcript {
			st.Transcript[i] = r.string()
		}
	}
	if r.err != nil {
		return State{}, r.err
	}
	if r.off != len(data) {
		return State{}, fmt.Errorf("%d bytes after the end, at byte %d", len(data)-r.off, r.off)
	}
	return st, nil
}

// stateReader reads the binary form. After its first error it reads
// nothing more and every read returns the zero value.
type stateReader struct {
	data []byte
	// text is string(data), made at the first string that is not empty:
	// the strings are substrings of it, one allocation for them all.
	text string
	off  int
	err  error
}

func (r *stateReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *stateReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.data) {
		r.fail("truncated at byte %d", r.off)
		return 0
	}
	b := r.data[r.off]
	r.off++
	return b
}

func (r *stateReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.data[r.off:])
	switch {
	case n == 0:
		r.fail("truncated at byte %d", len(r.data))
		return 0
	case n < 0:
		r.fail("varint at byte %d overflows 64 bits", r.off)
		return 0
	case n > 1 && r.data[r.off+n-1] == 0:
		r.fail("varint at byte %d not in its shortest form", r.off)
		return 0
	}
	r.off += n
	return x
}

func (r *stateReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *stateReader) string() string {
	at := r.off
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.data)-r.off) {
		r.fail("string of %d bytes at byte %d, only %d left", n, at, len(r.data)-r.off)
		return ""
	}
	if n == 0 {
		return ""
	}
	if r.text == "" {
		// The usual objects need no copy of the data: a state that holds
		// no other text decodes without an allocation.
		for _, common := range [...]string{"page", "instagram"} {
			if string(r.data[r.off:r.off+int(n)]) == common {
				r.off += int(n)
				return common
			}
		}
		r.text = string(r.data)
	}
	s := r.text[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *stateReader) time() time.Time {
	at := r.off
	sec := r.varint()
	nsec := r.uvarint()
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		r.fail("time at byte %d: %d nanoseconds", at, nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		// The zero time is written as absent; present and zero would be a
		// second encoding of the same state.
		r.fail("time at byte %d is the zero time, flagged as set", at)
	}
	return t
}
