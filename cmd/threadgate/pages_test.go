package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/messenger"
)

func TestPageTokens(t *testing.T) {
	t.Parallel()
	if tok, ok := pageTokens("single", nil).Token("anything"); !ok || tok != "single" {
		t.Errorf("without a pages file every page gets the single token")
	}
	src := pageTokens("", messenger.PageTokens{"1": "one"})
	if tok, ok := src.Token("1"); !ok || tok != "one" {
		t.Errorf("page 1 got %q", tok)
	}
	if _, ok := src.Token("2"); ok {
		t.Errorf("a page outside the file got a token without PAGE_ACCESS_TOKEN")
	}
}

// TestServeManyPages runs the real server with a pages file and a rotated
// app secret against a fake Graph API that checks tokens.
func TestServeManyPages(t *testing.T) {
	t.Parallel()
	const (
		pageA, tokA = "111111111111111", "page-a-token-value-0001"
		pageB, tokB = "222222222222222", "page-b-token-value-0002"
		newSecret   = "new-app-secret"
		oldSecret   = "old-app-secret"
	)
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{tokA, tokB}})
	dir := t.TempDir()
	pagesPath := filepath.Join(dir, "pages.yaml")
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(pagesPath, []byte(fmt.Sprintf("%q: %s\n%q: %s\n", pageA, tokA, pageB, tokB)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rulesPath, []byte("version: 1\nrules: [{name: echo, do: [echo: \"[bot] \"]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--rules", rulesPath}, env(map[string]string{
		"THREADGATE_PAGES_FILE": pagesPath, "APP_SECRET": newSecret, "APP_SECRET_PREVIOUS": oldSecret, "GRAPH_API_URL": graph.BaseURL(),
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg)
	base := srv.base
	post := func(page, user, secret string) int {
		body := fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":1,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":2,"message":{"mid":"m_%s","text":"hi"}}]}]}`, page, user, page, user)
		req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", messenger.Sign([]byte(secret), []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		page, user, secret string
		want               int
	}{
		{pageA, "ua", newSecret, 200},
		{pageB, "ub", oldSecret, 200}, // still signed with the previous secret
		{pageA, "ux", "some-other-secret", 401},
	} {
		if got := post(c.page, c.user, c.secret); got != c.want {
			t.Errorf("webhook for %s signed with %s: %d, want %d", c.user, c.secret, got, c.want)
		}
	}
	calls := graph.WaitCalls(t, fakegraph.PathMessages, 2)
	used := map[string]string{} // user → token
	for _, c := range calls {
		used[c.User] = c.Token
	}
	if len(calls) != 2 || used["ua"] != tokA || used["ub"] != tokB {
		t.Errorf("%d calls; tokens mixed: ua got A's: %v, ub got B's: %v", len(calls), used["ua"] == tokA, used["ub"] == tokB)
	}
	if code := srv.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{tokA, tokB, newSecret, oldSecret} {
		if strings.Contains(srv.log(), s) {
			t.Errorf("a secret reached the logs")
		}
	}
}

func TestServeRefusesBadPagesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pagesPath := filepath.Join(dir, "pages.yaml")
	if err := os.WriteFile(pagesPath, []byte("shop: secret-token-never-shown\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte("version: 1\nrules: [{name: echo, do: [echo: x]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe([]string{"--addr", loopback.FreeAddr(t), "--rules", rulesPath}, env(map[string]string{
		"THREADGATE_PAGES_FILE": pagesPath, "APP_SECRET": "s",
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, &stderr); code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr.String(), "THREADGATE_PAGES_FILE") || !strings.Contains(stderr.String(), "line 1") || strings.Contains(stderr.String(), "secret-token-never-shown") {
		t.Errorf("stderr = %q", stderr.String())
	}
}
