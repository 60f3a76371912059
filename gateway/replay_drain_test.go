package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/fakegraph"
)

// A replay asked for while the gateway shuts down is refused (503): with
// the memory store it would be taken and then lost at exit; the dead letter
// stays, to be replayed after the restart.
func TestReplayWhileShuttingDownIsRefused(t *testing.T) {
	t.Parallel()
	d := newDurable(t, durableOptions{})
	d.graph.Script(fakegraph.Match{Path: fakegraph.PathMessages, User: "u1"}, fakegraph.GraphError{Status: 400, Code: 100, FBTraceID: "TRACEDRAIN"}.Answer())
	d.mustPost(envelope("messaging", textEvent("u1", "hello")))
	id := d.waitDeadLetters(1).DeadLetters[0].ID
	if err := d.gw.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.gw.Replay(context.Background(), id); !errors.Is(err, gateway.ErrShuttingDown) {
		t.Errorf("Replay while shutting down = %v, want ErrShuttingDown", err)
	}
	var out map[string]any
	if code := d.admin(http.MethodPost, "/-/deadletters/"+strconv.FormatUint(id, 10)+"/replay", &out); code != http.StatusServiceUnavailable {
		t.Errorf("POST replay while shutting down = %d %v, want 503", code, out)
	}
	if l := d.deadLetters(); l.Count != 1 {
		t.Errorf("%d dead letters kept, want the one not replayed", l.Count)
	}
}
