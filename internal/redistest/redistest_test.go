package redistest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/threadgate/threadgate/internal/redistest"
)

func TestServerStopRestart(t *testing.T) {
	tests := []struct {
		name     string
		opts     redistest.Options
		kill     bool // Kill instead of Stop
		wantKept bool // the key written before Stop is there after Restart
	}{
		{name: "no persistence", opts: redistest.Options{}, wantKept: false},
		{name: "AOF always", opts: redistest.Options{AppendFsyncAlways: true}, wantKept: true},
		{name: "AOF always, killed", opts: redistest.Options{AppendFsyncAlways: true}, kill: true, wantKept: true},
		{name: "password", opts: redistest.Options{Password: "pw", AppendFsyncAlways: true}, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := redistest.Start(t, tt.opts)
			co, err := redis.ParseURL(srv.URL())
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", srv.URL(), err)
			}
			co.MaxRetries = -1
			c := redis.NewClient(co)
			defer c.Close()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if tt.kill {
				srv.Kill()
			} else {
				srv.Stop()
			}
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatal("PING answered after Stop")
			}
			srv.Restart()
			got, err := c.Get(ctx, "k").Result()
			if err != nil && err != redis.Nil {
				// The first command may meet a connection the restart closed.
				got, err = c.Get(ctx, "k").Result()
			}
			if kept := err == nil && got == "v"; kept != tt.wantKept {
				t.Errorf("after Restart GET k = %q, %v; want kept = %v", got, err, tt.wantKept)
			}
		})
	}
}

// outcome records how Start ended a test, without ending the real one.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (o *outcome) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingServerSkipsOutsideCIAndFailsInCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server there
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		o := &outcome{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			redistest.Start(o, redistest.Options{})
		}()
		<-done
		switch {
		case ci == "true" && (o.failed == "" || o.skipped != ""):
			t.Errorf("CI=true: skipped %q, failed %q; want a failure", o.skipped, o.failed)
		case ci == "" && (o.skipped == "" || o.failed != ""):
			t.Errorf("outside CI: skipped %q, failed %q; want a skip", o.skipped, o.failed)
		}
		if msg := o.skipped + o.failed; !strings.Contains(msg, "apt-get install redis-server") {
			t.Errorf("message %q does not say how to install redis-server", msg)
		}
	}
}
