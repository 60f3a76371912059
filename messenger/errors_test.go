package messenger

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestGraphErrorRetryable(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		code, subcode int
		want          bool
	}{
		{"unknown error", 500, 1, 0, true},
		{"service unavailable", 503, 2, 0, true},
		{"temporary send failure", 400, 1200, 0, true},
		{"app rate limit", 400, 4, 0, true},
		{"user rate limit", 400, 17, 0, true},
		{"pages api limit", 400, 32, 0, true},
		{"application limit", 400, 341, 0, true},
		{"custom rate limit", 400, 613, 0, true},
		{"inconsistent volume", 400, 613, 1996, true},
		{"abusive tag warning", 400, 613, 2018338, false},
		{"buc pages", 400, 80001, 0, true},
		{"buc messenger", 400, 80006, 0, true},
		{"automated flow owns chat", 400, 10, 2018321, true},
		{"bare 5xx", 502, 0, 0, true},
		{"http 429", 429, 0, 0, true},
		{"not thread owner", 400, 10, 2018300, false},
		{"outside window", 400, 10, 2018278, false},
		{"invalid parameter", 400, 100, 2018001, false},
		{"ig not owner", 400, 100, 2534037, false},
		{"token expired", 400, 190, 463, false},
		{"token on 500", 500, 190, 0, false},
		{"user unavailable", 400, 551, 1545041, false},
		{"permission", 403, 200, 2018028, false},
		{"policy block", 400, 368, 0, false},
		{"bare 400", 400, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &GraphError{HTTPStatus: tt.status, Code: tt.code, Subcode: tt.subcode}
			if got := e.Retryable(); got != tt.want {
				t.Errorf("Retryable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsNotThreadOwner(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&GraphError{Code: 10, Subcode: 2018300}, true},
		{fmt.Errorf("wrapped: %w", &GraphError{Code: 100, Subcode: 2534037}), true},
		{&GraphError{Code: 10, Subcode: 2018278}, false},
		{&GraphError{Code: 100, Subcode: 2018001}, false},
		{errors.New("(#10) another app is controlling this thread"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsNotThreadOwner(tt.err); got != tt.want {
			t.Errorf("IsNotThreadOwner(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestGraphErrorString(t *testing.T) {
	e := &GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018300, Type: "OAuthException",
		Message: "(#10) another app is controlling this thread now.", FBTraceID: "AbC123xyz", Endpoint: "me/messages"}
	got := e.Error()
	for _, want := range []string{"me/messages", "HTTP 400", "code 10/2018300", "another app", "fbtrace_id AbC123xyz"} {
		if !strings.Contains(got, want) {
			t.Errorf("Error() = %q, missing %q", got, want)
		}
	}
}
