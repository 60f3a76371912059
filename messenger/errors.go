package messenger

import (
	"errors"
	"fmt"
	"strings"
)

// GraphError is an error answered by the Graph API, or an HTTP failure
// status without a Graph error body (then Code is 0).
type GraphError struct {
	// HTTPStatus is the status code of the response.
	HTTPStatus int
	// Code and Subcode are the Graph "code" and "error_subcode".
	Code, Subcode int
	// Type is the Graph error type, e.g. "OAuthException".
	Type string
	// Message is Graph's message.
	Message string
	// FBTraceID identifies the failed request in support tickets.
	FBTraceID string
	// Endpoint is the path that was called, e.g. "me/messages", without
	// the base URL or the query string.
	Endpoint string
}

// Error describes the failure with its code, subcode and fbtrace_id.
func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph api %s: HTTP %d", e.Endpoint, e.HTTPStatus)
	if e.Code != 0 || e.Subcode != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "/%d", e.Subcode)
		}
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.FBTraceID != "" {
		fmt.Fprintf(&b, " (fbtrace_id %s)", e.FBTraceID)
	}
	return b.String()
}

// Retryable reports whether the call may succeed if repeated later: the
// transient codes 1, 2 and 1200, the throttling codes 4, 17, 32, 341, 613,
// 80001 and 80006, subcode 2018321 (an automated flow holds the chat), HTTP
// 429, and HTTP 5xx unless the code says the request itself is wrong.
// Ownership (10/2018300), window, parameter (100), token (190) and
// reachability (551) errors are not retryable.
func (e *GraphError) Retryable() bool {
	if e.Code == 613 && e.Subcode == 2018338 {
		return false // tag misuse warning: stop, don't hammer
	}
	if e.Subcode == 2018321 || e.Code == 2018321 {
		return true
	}
	switch e.Code {
	case 1, 2, 1200, 4, 17, 32, 341, 613, 80001, 80006:
		return true
	case 10, 100, 190, 368, 551:
		return false
	}
	if e.Code >= 200 && e.Code <= 299 {
		return false
	}
	return e.HTTPStatus >= 500 || e.HTTPStatus == 429
}

// IsNotThreadOwner reports whether err is the Graph error answered to an app
// that does not own the thread: 10/2018300 (Send API) or 100/2534037
// (Instagram control calls).
func IsNotThreadOwner(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	return (ge.Code == 10 && ge.Subcode == 2018300) || (ge.Code == 100 && ge.Subcode == 2534037)
}

// IsOutsideWindow reports whether err is the Graph error answered to a
// message sent after the messaging window closed: 10/2018278 (Messenger) or
// 10/2534022 (Instagram). Such a send is not retried: a person answers from
// the inbox (with the HUMAN_AGENT tag, within 7 days); a bot must not use
// tags to get around the window.
func IsOutsideWindow(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	return ge.Code == 10 && (ge.Subcode == 2018278 || ge.Subcode == 2534022)
}

// IsUnreachable reports whether err says the person cannot receive
// messages now: 551, 551/1545041, 200/1545041 or 10/2018108.
func IsUnreachable(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	return ge.Code == 551 || ge.Subcode == 1545041 || (ge.Code == 10 && ge.Subcode == 2018108)
}

// Error classes returned by Classify, for logs and metric labels.
const (
	ClassOutsideWindow  = "outside_window"
	ClassNotThreadOwner = "not_thread_owner"
	ClassUnreachable    = "unreachable"
	ClassTransient      = "transient"
	ClassOther          = "other"
)

// Classify names the kind of a failed Graph call with a fixed, small set of
// values (safe as a metric label): ClassOutsideWindow, ClassNotThreadOwner,
// ClassUnreachable, ClassTransient (a retryable Graph error, or no Graph
// error at all, such as a network failure) or ClassOther.
func Classify(err error) string {
	var ge *GraphError
	switch {
	case err == nil:
		return ""
	case IsOutsideWindow(err):
		return ClassOutsideWindow
	case IsNotThreadOwner(err):
		return ClassNotThreadOwner
	case IsUnreachable(err):
		return ClassUnreachable
	case !errors.As(err, &ge) || ge.Retryable():
		return ClassTransient
	}
	return ClassOther
}
