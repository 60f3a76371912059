package gateway_test

import (
	"strings"
	"testing"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
)

// A reply the platform refuses because the 24-hour messaging window is
// closed is not retried: it is a dead letter of its own reason, logged and
// counted as such.
func TestOutsideWindowIsNotRetried(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	closed := fakegraph.GraphError{Status: 400, Code: 10, Subcode: 2018278, Type: "OAuthException",
		Message: "(#10) This message is sent outside of allowed window.", FBTraceID: "TRACEWINDOW"}.Answer()
	clear := d.graph.Fault(fakegraph.Match{Path: fakegraph.PathMessages, User: "u1"}, closed)
	d.mustPost(envelope("messaging", textEvent("u1", "late")))
	l := d.waitDeadLetters(1)
	if dl := l.DeadLetters[0]; dl.Graph == nil || dl.Graph.Code != 10 || dl.Graph.Subcode != 2018278 || dl.Attempts != 1 {
		t.Errorf("dead letter = %+v", dl)
	}
	if n := len(d.graph.CallsTo(fakegraph.PathMessages)); n != 1 {
		t.Errorf("%d sends, want 1: a closed window is not retried", n)
	}
	if n := d.counts.get(gateway.ReasonOutsideWindow); n != 1 {
		t.Errorf("%d dead letters counted as outside_window, want 1", n)
	}
	if logs := d.logs.String(); !strings.Contains(logs, `"msg":"event dead-lettered"`) || !strings.Contains(logs, `"subcode":2018278`) || !strings.Contains(logs, `"reason":"outside_window"`) {
		t.Errorf("the log does not tell the refusal:\n%s", logs)
	}
	clear()
}
