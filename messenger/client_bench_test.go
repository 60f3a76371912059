package messenger

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// memoryTransport answers every request in memory, as the Send API does,
// so that a benchmark measures the client's own work, not the network.
type memoryTransport struct{ body string }

func (m memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(m.body)), Request: r}, nil
}

// memoryClient is a Client whose Send API answers from memory, with
// appsecret_proof and a fixed clock: what the client costs per reply, and
// nothing of the network's.
func memoryClient() *Client {
	return NewClient(Options{
		BaseURL:    "http://graph.invalid/v26.0",
		Tokens:     StaticToken(testToken),
		AppSecret:  []byte(testSecret),
		HTTPClient: &http.Client{Transport: memoryTransport{body: `{"recipient_id":"2400000000000001","message_id":"m_1"}`}},
		Now:        func() time.Time { return time.Unix(1_800_000_000, 0) },
	})
}

// BenchmarkClientSendMessage is one Send API call with appsecret_proof
// through an in-memory transport: the client's cost per reply.
func BenchmarkClientSendMessage(b *testing.B) {
	c := memoryClient()
	msg := &Message{Text: "[bot] hello"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.SendMessage(ctx, testUser, msg); err != nil {
			b.Fatal(err)
		}
	}
}
