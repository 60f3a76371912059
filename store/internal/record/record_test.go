package record

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/threadgate/threadgate/store"
)

func TestRoundTrip(t *testing.T) {
	at := time.Unix(1_800_000_000, 123)
	tests := []struct {
		name string
		p    store.Progress
		f    store.Failure
	}{
		{"zero", store.Progress{}, store.Failure{}},
		{"full", store.Progress{Plan: []byte(`{"v":1}`), StepsDone: 2, Attempts: 7, RetryingSince: at, NotBefore: at.Add(time.Minute), LastError: "HTTP 500"},
			store.Failure{Rule: "agent", Step: 1, StepKind: "pass_thread_control", Graph: &store.GraphError{HTTPStatus: 400, Code: 190, Subcode: 463, Type: "OAuthException", Message: "expired", FBTraceID: "T"}, Error: "token", Attempts: 3, At: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			EncodeProgress(&e, tt.p)
			EncodeFailure(&e, tt.f)
			d := NewDecoder(e.B)
			p, f := DecodeProgress(d), DecodeFailure(d)
			if err := d.Done(); err != nil {
				t.Fatal(err)
			}
			if len(tt.p.Plan) == 0 {
				p.Plan = tt.p.Plan // an empty plan reads back as an empty slice
			}
			if !reflect.DeepEqual(p, tt.p) || !reflect.DeepEqual(f, tt.f) {
				t.Errorf("round trip:\n%+v %+v\nwant\n%+v %+v", p, f, tt.p, tt.f)
			}
		})
	}
}

func TestCorruptRecords(t *testing.T) {
	var e Encoder
	EncodeProgress(&e, store.Progress{Plan: []byte("plan"), LastError: "x"})
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"cut short", e.B[:len(e.B)-1], ErrShort},
		{"a length past the end", []byte{0x7f, 'a'}, ErrShort},
		{"bytes left over", append(append([]byte(nil), e.B...), 0), ErrTrailing},
	} {
		d := NewDecoder(tt.b)
		DecodeProgress(d)
		if err := d.Done(); !errors.Is(err, tt.want) {
			t.Errorf("%s: Done() = %v, want %v", tt.name, err, tt.want)
		}
	}
}
