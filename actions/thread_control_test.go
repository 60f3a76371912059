package actions

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// controlCase runs one of take/request/release_thread_control.
type controlCase struct {
	name      string
	src       string
	d         *Data
	want      map[string]any
	wantCalls []call
	wantErr   string
}

func runControlCases(t *testing.T, kind string, cases []controlCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := planCase(t, tt.src, tt.d, tt.wantErr)
			if !ok {
				return
			}
			if s.Kind() != kind {
				t.Errorf("Kind() = %q, want %q", s.Kind(), kind)
			}
			if !reflect.DeepEqual(s.Fields(), tt.want) {
				t.Errorf("Fields() = %v, want %v", s.Fields(), tt.want)
			}
			calls, err := execute(t, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Fatalf("calls:\n got %+v\nwant %+v", calls, tt.wantCalls)
			}
			method := tt.wantCalls[0].Method
			_, err = execute(t, s, map[string]error{method: errGraph})
			if !errors.Is(err, errGraph) {
				t.Fatalf("error %v does not wrap the platform's", err)
			}
			mustContain(t, err, kind+": ")
		})
	}
}

// metadataDecodeCases are the decode cases shared by the kinds that take
// {metadata: TEMPLATE}.
func metadataDecodeCases(kind string) []decodeCase {
	return []decodeCase{
		{name: "empty mapping", src: kind + `: {}`},
		{name: "null", src: kind + `:`},
		{name: "tilde", src: kind + `: ~`},
		{name: "metadata", src: kind + `: {metadata: "bot resumes after {{ .Rule }}"}`},
		{name: "unknown key", src: kind + `: {meta: x}`, want: []string{
			"1:" + col(kind, 4) + ": " + kind + `: unknown key "meta", expected one of: metadata`,
		}},
		{name: "string", src: kind + `: now`, want: []string{
			"1:" + col(kind, 3) + ": " + kind + ": expected {} or {metadata: TEXT}, got a string",
		}},
		{name: "bad template", src: kind + `: {metadata: "{{ .Nope }}"}`, want: []string{
			"1:" + col(kind, 18) + ": " + kind + ".metadata: unknown field .Nope, a template can read " + fieldList,
		}},
		{name: "metadata too long", src: kind + `: {metadata: "` + strings.Repeat("m", 1001) + `"}`, want: []string{
			"1:" + col(kind, 14) + ": " + kind + ".metadata: the text is 1001 characters long, the limit is 1000",
		}},
	}
}

// col is the column of the character at offset off from the end of KIND
// (the ":" is at offset 1).
func col(kind string, off int) string {
	return strconv.Itoa(len(kind) + off)
}
