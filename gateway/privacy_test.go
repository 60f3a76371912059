package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/rules"
)

// The log's remote is the connection's address: a client cannot put
// another address there with X-Forwarded-For, unless the request came
// through a proxy named in --trusted-proxies.
func TestLogRemoteTrustsOnlyNamedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []string
		want    string
	}{
		{"no proxy trusted", nil, `"remote":"127.0.0.1"`},
		{"loopback trusted", []string{"127.0.0.1"}, `"remote":"6.6.6.6"`},
		{"another proxy trusted", []string{"10.0.0.0/8"}, `"remote":"127.0.0.1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, loadExampleRules(t), func(c *gateway.Config) { c.TrustedProxies = tt.trusted })
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhook", strings.NewReader(`{"object":"page","entry":[]}`))
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("unsigned webhook: status %d, want 401", resp.StatusCode)
			}
			if logs := h.logs.String(); !strings.Contains(logs, tt.want) {
				t.Errorf("logs do not contain %s:\n%s", tt.want, logs)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := gateway.ParseTrustedProxies(" 10.0.0.0/8, 192.168.1.7 ,,::1")
	if err != nil || strings.Join(got, "|") != "10.0.0.0/8|192.168.1.7|::1" {
		t.Errorf("ParseTrustedProxies = %q, %v", got, err)
	}
	if got, err := gateway.ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty list = %q, %v, want none", got, err)
	}
	if _, err := gateway.ParseTrustedProxies("10.0.0.0/8,proxy.local"); err == nil || !strings.Contains(err.Error(), `"proxy.local"`) {
		t.Errorf("a host name: err = %v, want it named", err)
	}
}

// A `when` that fails on what the user wrote is logged with the rule, the
// position and the kind of error: the user's text (here a card number)
// never reaches the log.
func TestFailingWhenLogsNoUserText(t *testing.T) {
	t.Parallel()
	f, err := rules.Parse("when.yaml", []byte(`version: 1
rules:
  - name: big-number
    when: 'int(text) > 5'
    do: [{reply: "big"}]
  - name: echo
    do: [{echo: "[bot] "}]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, f.Set, nil)
	const card = "4111 1111 1111 1111"
	h.mustPost(envelope("messaging", textEvent("u1", card)))
	poll.Until(t, "the echo", func() bool { return len(h.graph.Texts("u1")) == 1 })
	logs := h.logs.String()
	if !strings.Contains(logs, `rule \"big-number\": when: invalid operation at 1:1`) {
		t.Errorf("the failing when is not logged with its rule and kind:\n%s", logs)
	}
	if strings.Contains(logs, "4111") {
		t.Errorf("the user's text reached the logs:\n%s", logs)
	}
}
