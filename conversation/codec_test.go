package conversation

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden file and the fuzz seeds in testdata/")

// fullState has every field set, among the times ones with nanoseconds,
// one before 1970 and one past 2262 (beyond UnixNano), and a transcript of
// multibyte text.
var fullState = State{
	Owner:           AppOwner("263902037430900"),
	OwnerSince:      time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
	LastActivity:    time.Date(2026, 3, 1, 12, 5, 0, 1, time.UTC),
	PausedUntil:     time.Date(2026, 3, 1, 12, 35, 0, 0, time.UTC),
	Transcript:      []string{"hi", "é ✓ \"quoted\"", "日本語のテキスト 🙂", ""},
	LastUserMessage: time.Date(2026, 3, 1, 12, 4, 0, 999999999, time.UTC),
	OwnerLookupAt:   time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC),
	ReturnTriedAt:   time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC),
	Object:          "instagram",
}

// codecCase is a state, and what it decodes to when that differs (times
// in UTC without a monotonic reading, no empty transcript).
type codecCase struct {
	name string
	in   State
	want *State
	// binaryOnly: encoding/json does not keep the state (it replaces
	// invalid UTF-8).
	binaryOnly bool
}

// codecCases are representative states.
var codecCases = []codecCase{
	{name: "zero", in: State{}},
	{name: "owner self", in: State{Owner: Self, OwnerSince: t0, Object: "page"}},
	{name: "owner idle", in: State{Owner: Idle, OwnerSince: t0}},
	{name: "owner other", in: State{Owner: Other, LastUserMessage: t0}},
	{name: "owner app", in: State{Owner: AppOwner("2006"), OwnerSince: t0, Transcript: []string{"help"}}},
	{name: "owner app without ID", in: State{Owner: Owner{Kind: OwnerApp}}},
	{name: "owner self with an app ID", in: State{Owner: Owner{Kind: OwnerSelf, AppID: "7"}}},
	{name: "all fields", in: fullState},
	{name: "transcript of invalid UTF-8", in: State{Transcript: []string{"\xff\xfe", strings.Repeat("x", 300)}}, binaryOnly: true},
	{
		name: "empty transcript",
		in:   State{Owner: Self, Transcript: []string{}},
		want: &State{Owner: Self},
	},
	{
		name: "time zones",
		in: State{
			OwnerSince:   time.Date(2026, 3, 1, 13, 0, 0, 5, time.FixedZone("CET", 3600)),
			LastActivity: time.Date(2026, 3, 1, 4, 0, 0, 0, time.FixedZone("PST", -8*3600)),
		},
		want: &State{OwnerSince: t0.Add(5), LastActivity: t0},
	},
	{name: "far times", in: State{PausedUntil: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), OwnerLookupAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}},
}

// wantDecoded is what a case's state decodes to.
func wantDecoded(tc codecCase) State {
	if tc.want != nil {
		return *tc.want
	}
	want := tc.in
	for _, t := range stateTimes(&want) {
		*t = t.UTC() // in UTC, without a monotonic reading
	}
	return want
}

func TestStateBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := tc.in.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if data[0] != stateFormatV1 {
				t.Errorf("first byte %#02x, want the version %#02x", data[0], stateFormatV1)
			}
			var got State
			if err := got.UnmarshalBinary(data); err != nil {
				t.Fatalf("UnmarshalBinary(%x): %v", data, err)
			}
			if want := wantDecoded(tc); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip gave\n%#v\nwant\n%#v", got, want)
			}
			again, err := got.MarshalBinary()
			if err != nil || !bytes.Equal(again, data) {
				t.Errorf("encoding the decoded state gave %x (%v), want %x", again, err, data)
			}

			prefixed, err := tc.in.AppendBinary([]byte("prefix"))
			if err != nil || string(prefixed[:6]) != "prefix" || !bytes.Equal(prefixed[6:], data) {
				t.Errorf("AppendBinary(prefix) = %q, %v, want prefix then %x", prefixed, err, data)
			}
		})
	}
}

// TestStateBinaryKnowsEveryField fails when State gains a field: the binary
// form must then learn it too, under a new version byte, or the field is
// silently lost by every store.
func TestStateBinaryKnowsEveryField(t *testing.T) {
	t.Parallel()
	known := []string{"Owner", "OwnerSince", "LastActivity", "PausedUntil", "Transcript", "LastUserMessage", "OwnerLookupAt", "ReturnTriedAt", "Object"}
	var fields []string
	for f := range reflect.TypeFor[State]().Fields() {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, known) {
		t.Errorf("State's fields are %v, the binary form (codec.go) knows %v", fields, known)
	}
	owner := []string{"Kind", "AppID"}
	fields = nil
	for f := range reflect.TypeFor[Owner]().Fields() {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, owner) {
		t.Errorf("Owner's fields are %v, the binary form (codec.go) knows %v", fields, owner)
	}
}

func TestStateBinaryDropsTheMonotonicReading(t *testing.T) {
	t.Parallel()
	now := time.Now()
	data := validEncoding(t, State{LastActivity: now})
	var got State
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if want := now.Round(0).UTC(); got.LastActivity != want {
		t.Errorf("LastActivity %v came back as %v, want %v", now, got.LastActivity, want)
	}
}

func TestStateBinaryAllocations(t *testing.T) {
	st := fullState
	var data []byte
	if n := testing.AllocsPerRun(100, func() { data, _ = st.MarshalBinary() }); n != 1 {
		t.Errorf("MarshalBinary made %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf, _ = st.AppendBinary(buf[:0]) }); n != 0 {
		t.Errorf("AppendBinary into a large enough buffer made %v allocations, want 0", n)
	}
	var got State
	// One copy of the data for the strings, one slice for the transcript.
	if n := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(data) }); n != 2 {
		t.Errorf("UnmarshalBinary made %v allocations, want 2", n)
	}
	data, _ = State{Owner: Self, OwnerSince: t0}.MarshalBinary()
	if n := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(data) }); n != 0 {
		t.Errorf("UnmarshalBinary of a state without strings made %v allocations, want 0", n)
	}
	// The usual objects are not copied out of the data.
	for _, object := range []string{"page", "instagram"} {
		data, _ = State{Owner: Self, OwnerSince: t0, Object: object}.MarshalBinary()
		if n := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(data) }); n != 0 {
			t.Errorf("UnmarshalBinary of a state whose only text is the object %q made %v allocations, want 0", object, n)
		}
		if got.Object != object {
			t.Errorf("object %q came back as %q", object, got.Object)
		}
	}
	data, _ = State{Owner: AppOwner("2006"), Object: "page"}.MarshalBinary()
	if n := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(data) }); n != 1 {
		t.Errorf("UnmarshalBinary of a state with an app ID made %v allocations, want 1", n)
	}
	if got.Owner != AppOwner("2006") || got.Object != "page" {
		t.Errorf("got owner %v, object %q", got.Owner, got.Object)
	}
}

func TestStateUnmarshalBinaryReusesNoInput(t *testing.T) {
	t.Parallel()
	data, _ := fullState.MarshalBinary()
	var got State
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	if !reflect.DeepEqual(got, fullState) {
		t.Errorf("overwriting the data changed the decoded state to %#v", got)
	}
}

func TestStateUnmarshalBinaryReadsLegacyJSON(t *testing.T) {
	t.Parallel()
	// As earlier versions stored states: encoding/json of State.
	tests := []struct {
		name string
		json string
		want State
	}{
		{name: "zero", json: `{"owner":{}}`, want: State{}},
		{name: "app", json: `{"owner":{"kind":"app","app_id":"42"},"owner_since":"2026-03-01T12:00:00Z"}`, want: State{Owner: AppOwner("42"), OwnerSince: t0}},
		{
			name: "all fields",
			json: `{"owner":{"kind":"other"},"owner_since":"2026-03-01T13:00:00.5+01:00","last_activity":"2026-03-01T12:01:00Z",` +
				`"paused_until":"2026-03-01T12:30:00Z","transcript":["hi","é ✓"],"last_user_message":"2026-03-01T12:02:00Z",` +
				`"owner_lookup_at":"2026-03-01T12:03:00Z","return_tried_at":"2026-03-01T12:04:00Z","object":"page"}`,
			want: State{
				Owner: Other, OwnerSince: t0.Add(500 * time.Millisecond), LastActivity: t0.Add(time.Minute),
				PausedUntil: t0.Add(30 * time.Minute), Transcript: []string{"hi", "é ✓"}, LastUserMessage: t0.Add(2 * time.Minute),
				OwnerLookupAt: t0.Add(3 * time.Minute), ReturnTriedAt: t0.Add(4 * time.Minute), Object: "page",
			},
		},
		{name: "empty transcript", json: `{"owner":{"kind":"self"},"transcript":[]}`, want: State{Owner: Self}},
		{name: "leading whitespace", json: "\n {\"owner\":{\"kind\":\"idle\"}}", want: State{Owner: Idle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got State
			if err := got.UnmarshalBinary([]byte(tt.json)); err != nil {
				t.Fatalf("UnmarshalBinary(%s): %v", tt.json, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UnmarshalBinary(%s) =\n%#v\nwant\n%#v", tt.json, got, tt.want)
			}
		})
	}
	// Whatever encoding/json makes of a state reads back as the binary
	// form's round trip does.
	for _, tc := range codecCases {
		if tc.binaryOnly {
			continue
		}
		data, err := json.Marshal(tc.in)
		if err != nil {
			t.Fatalf("%s: json.Marshal: %v", tc.name, err)
		}
		var got State
		if err := got.UnmarshalBinary(data); err != nil {
			t.Errorf("%s: UnmarshalBinary(%s): %v", tc.name, data, err)
		} else if want := wantDecoded(tc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: UnmarshalBinary(%s) =\n%#v\nwant\n%#v", tc.name, data, got, want)
		}
	}
}

// validEncoding is the binary form of a small state; the rejected cases
// below change it.
func validEncoding(t testing.TB, st State) []byte {
	t.Helper()
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStateUnmarshalBinaryRejectsMalformedData(t *testing.T) {
	t.Parallel()
	small := validEncoding(t, State{Owner: Self, Object: "page"}) // 01 00 01 00 04 page 00
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "empty", data: nil, want: "no data"},
		{name: "unknown version", data: []byte{0x02, 0, 0, 0, 0, 0}, want: "format 0x02 unknown"},
		{name: "zero byte", data: []byte{0x00}, want: "format 0x00 unknown"},
		{name: "JSON array", data: []byte(`[1]`), want: "format 0x5b unknown"},
		{name: "JSON null", data: []byte(`null`), want: "format 0x6e unknown"},
		{name: "trailing byte", data: append(bytes.Clone(small), 0), want: "1 bytes after the end"},
		{name: "unknown time flag", data: []byte{0x01, 0x40, 0, 0, 0, 0}, want: "time flags 0x40"},
		{name: "unknown owner kind", data: []byte{0x01, 0, 5, 0, 0, 0}, want: "owner kind 5 unknown"},
		{name: "string longer than the data", data: []byte{0x01, 0, 3, 0x7f, 'a'}, want: "string of 127 bytes at byte 3, only 1 left"},
		{name: "huge string length", data: []byte{0x01, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, want: "only 0 left"},
		{name: "varint overflow", data: []byte{0x01, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, want: "overflows 64 bits"},
		{name: "varint not shortest", data: []byte{0x01, 0, 0, 0x80, 0x00, 0, 0}, want: "not in its shortest form"},
		{name: "huge transcript", data: []byte{0x01, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, want: "transcript of 4294967295 messages in 0 bytes"},
		{name: "transcript longer than the data", data: []byte{0x01, 0, 0, 0, 0, 3, 0, 0}, want: "transcript of 3 messages in 2 bytes"},
		{name: "nanoseconds of a second or more", data: []byte{0x01, 1, 0, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0}, want: "1000000000 nanoseconds"},
		{name: "zero time flagged as set", data: append([]byte{0x01, 1, 0, 0}, zeroTimeVarints()...), want: "zero time, flagged as set"},
		{name: "JSON of another shape", data: []byte(`{"owner":"self"}`), want: "stored as JSON"},
		{name: "JSON of an unknown owner", data: []byte(`{"owner":{"kind":"robot"}}`), want: `owner kind "robot" unknown`},
		{name: "JSON garbage", data: []byte(`{{`), want: "stored as JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := State{Object: "unchanged"}
			err := got.UnmarshalBinary(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UnmarshalBinary(%x) = %v, want an error with %q", tt.data, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "conversation: decoding a state") {
				t.Errorf("error %q does not say what was decoded", err)
			}
			if !reflect.DeepEqual(got, State{Object: "unchanged"}) {
				t.Errorf("a failed UnmarshalBinary changed the state to %#v", got)
			}
		})
	}
}

// zeroTimeVarints is the zero time as seconds and nanoseconds, then an
// empty object and transcript.
func zeroTimeVarints() []byte {
	b := binary.AppendVarint(nil, time.Time{}.Unix())
	return append(b, 0, 0, 0)
}

func TestStateUnmarshalBinaryRejectsEveryTruncation(t *testing.T) {
	t.Parallel()
	var inputs [][]byte
	for _, tc := range codecCases {
		inputs = append(inputs, validEncoding(t, tc.in))
	}
	legacy, _ := json.Marshal(fullState)
	inputs = append(inputs, legacy)
	for _, data := range inputs {
		for n := range len(data) {
			var got State
			if err := got.UnmarshalBinary(data[:n]); err == nil {
				t.Errorf("UnmarshalBinary of the first %d of %d bytes %x succeeded: %#v", n, len(data), data, got)
			}
		}
	}
}

func TestStateAppendBinaryRejectsUnknownOwnerKind(t *testing.T) {
	t.Parallel()
	b, err := State{Owner: Owner{Kind: "robot"}}.AppendBinary([]byte("x"))
	if err == nil || !strings.Contains(err.Error(), `owner kind "robot" unknown`) || string(b) != "x" {
		t.Errorf("AppendBinary of an unknown owner kind = %q, %v, want x and an error", b, err)
	}
}

// TestStateBinaryGolden compares the binary form of fullState with
// testdata/state-v1.hex, so that a change of the stored format is never an
// accident: states written by one version must load in the next. Run with
// -update only for a deliberate change, with a new version byte.
func TestStateBinaryGolden(t *testing.T) {
	data := validEncoding(t, fullState)
	path := filepath.Join("testdata", "state-v1.hex")
	if *update {
		writeSeeds(t)
		var text strings.Builder
		for chunk := range slices.Chunk(data, 32) {
			text.WriteString(hex.EncodeToString(chunk) + "\n")
		}
		if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./conversation -run TestStateBinaryGolden -update to create it)", err)
	}
	golden, err := hex.DecodeString(strings.ReplaceAll(string(text), "\n", ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(data, golden) {
		t.Errorf("the binary form of fullState is\n%x\nnot %s's\n%x\nA stored state must load in the next version: keep the format, or add a version", data, path, golden)
	}
	var got State
	if err := got.UnmarshalBinary(golden); err != nil || !reflect.DeepEqual(got, fullState) {
		t.Errorf("%s decodes to %#v, %v, want fullState", path, got, err)
	}
}

// writeSeeds writes the fuzz test's seed corpus: the binary form of each
// case and the JSON form of fullState.
func writeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzStateUnmarshalBinary")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range codecCases {
		write("binary-"+strings.ReplaceAll(tc.name, " ", "-"), validEncoding(t, tc.in))
	}
	legacy, _ := json.Marshal(fullState)
	write("legacy-json", legacy)
}

// FuzzStateUnmarshalBinary checks that no input makes UnmarshalBinary
// panic, that what it accepts encodes and decodes to the same state, and
// that an accepted binary form is the one encoding of its state.
func FuzzStateUnmarshalBinary(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{stateFormatV1})
	f.Add([]byte(`{"owner":{"kind":"app","app_id":"42"},"owner_since":"2026-03-01T12:00:00+02:00","transcript":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st State
		if err := st.UnmarshalBinary(data); err != nil {
			return
		}
		b1, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded state does not encode: %#v: %v", st, err)
		}
		if data[0] == stateFormatV1 && !bytes.Equal(b1, data) {
			t.Fatalf("%x decodes to a state that encodes as %x", data, b1)
		}
		var st2 State
		if err := st2.UnmarshalBinary(b1); err != nil {
			t.Fatalf("%x, the encoding of a decoded state, does not decode: %v", b1, err)
		}
		if !reflect.DeepEqual(st, st2) {
			t.Fatalf("decode, encode, decode changed\n%#v\nto\n%#v", st, st2)
		}
		if b2, err := st2.MarshalBinary(); err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", b1, b2, err)
		}
	})
}

// BenchmarkStateCodec compares the binary form with encoding/json, the
// stored form of earlier versions, on a state with every field set.
func BenchmarkStateCodec(b *testing.B) {
	st := fullState
	bin, _ := st.MarshalBinary()
	js, _ := json.Marshal(st)
	b.Run("binary/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(bin)), "bytes/state")
	})
	b.Run("binary/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got State
			if err := got.UnmarshalBinary(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(st); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes/state")
	})
	b.Run("json/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got State
			if err := got.UnmarshalBinary(js); err != nil {
				b.Fatal(err)
			}
		}
	})
}
