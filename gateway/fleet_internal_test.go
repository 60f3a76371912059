package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/threadgate/threadgate/conversation"
)

func TestReturnCheckEncoding(t *testing.T) {
	t.Parallel()
	rc := returnCheck{PageID: "p1", UserID: "u1", Key: "r:p1/u1:1:0"}
	body, err := encodeReturnCheck(rc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		body    string
		want    returnCheck
		isCheck bool
		wantErr string
	}{
		{name: "a return check", body: string(body), want: rc, isCheck: true},
		{name: "a webhook event", body: `{"object":"page","page_id":"p1","event":{}}`},
		{name: "not JSON after the prefix", body: `{"return":[`, isCheck: true, wantErr: "decoding a return check"},
		{name: "no key", body: `{"return":{"page_id":"p1","user_id":"u1"}}`, isCheck: true, wantErr: "a field is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := decodeReturnCheck([]byte(tt.body))
			if ok != tt.isCheck {
				t.Fatalf("is a return check: %v, want %v", ok, tt.isCheck)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReturnKeyNamesTheQuietPeriod(t *testing.T) {
	t.Parallel()
	c := conversation.Key{PageID: "p1", UserID: "u1"}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	st := conversation.State{Owner: conversation.AppOwner("200"), OwnerSince: t0}
	same := st
	same.LastActivity = t0.Add(time.Hour) // activity does not start another period by itself
	tried := st
	tried.ReturnTriedAt = t0.Add(2 * time.Hour)
	passedAgain := st
	passedAgain.OwnerSince = t0.Add(3 * time.Hour)
	other := conversation.Key{PageID: "p1", UserID: "u2"}
	if returnKey(c, st) != returnKey(c, same) {
		t.Error("the key changed with the activity of the same holding")
	}
	for name, k := range map[string]string{
		"after a failed try":    returnKey(c, tried),
		"after a new hand-over": returnKey(c, passedAgain),
		"of another user":       returnKey(other, st),
	} {
		if k == returnKey(c, st) {
			t.Errorf("the key %s is the same: %s", name, k)
		}
	}
}
