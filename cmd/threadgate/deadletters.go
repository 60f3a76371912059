package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/threadgate/threadgate/gateway"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// deadLetter is one entry of GET /-/deadletters, as the gateway writes it.
type deadLetter = gateway.DeadLetterJSON

// replayed is one dead letter put back in the queue: its ID and the
// sequence number of the new pending event.
type replayed = gateway.ReplayedJSON

const deadLettersUsage = `usage:
  threadgate deadletters list   [--addr HOST:PORT] [--json]
  threadgate deadletters replay [--addr HOST:PORT] ID... | --all
  threadgate deadletters drop   [--addr HOST:PORT] ID... | --all

Lists, replays or drops the dead letters of the gateway running at --addr: the events
whose steps failed for good or ran out of retries. A replay runs the steps that had not
succeeded yet; a drop forgets the event. The gateway answers these requests only from
its own machine unless it runs with --allow-remote-admin: run this command there
(docker exec, kubectl exec) or through kubectl port-forward.

flags:
`

// deadLetters runs `threadgate deadletters list|replay|drop`: a client of
// the running gateway's /-/deadletters endpoints.
func deadLetters(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		newDeadLettersFlags(getenv).printUsage(w)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	switch sub {
	case "list", "replay", "drop":
	default:
		fmt.Fprintf(stderr, "threadgate deadletters: unknown command %q: want list, replay or drop\n", sub)
		return exitUsage
	}
	f := newDeadLettersFlags(getenv)
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() { f.printUsage(stderr) }
	positional, err := parseInterleaved(f.fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	c, err := newAdminClient(*f.addr, *f.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "threadgate deadletters: --addr %q: %v\n", *f.addr, err)
		return exitUsage
	}
	ids, err := parseIDs(positional)
	if err != nil {
		fmt.Fprintln(stderr, "threadgate deadletters:", err)
		return exitUsage
	}
	switch sub {
	case "list":
		if len(ids) > 0 || *f.all {
			fmt.Fprintln(stderr, "threadgate deadletters list: takes no IDs and no --all")
			return exitUsage
		}
		return listDeadLetters(c, *f.asJSON, stdout, stderr)
	default:
		if *f.asJSON {
			fmt.Fprintf(stderr, "threadgate deadletters %s: --json is for list\n", sub)
			return exitUsage
		}
		if (len(ids) == 0) == !*f.all {
			fmt.Fprintf(stderr, "threadgate deadletters %s: give the IDs of the dead letters (see threadgate deadletters list) or --all, not both\n", sub)
			return exitUsage
		}
		if sub == "replay" {
			return replayDeadLetters(c, ids, *f.all, stdout, stderr)
		}
		return dropDeadLetters(c, ids, *f.all, stdout, stderr)
	}
}

// deadLettersFlags are the flags every deadletters command takes.
type deadLettersFlags struct {
	fs      *flag.FlagSet
	addr    *string
	timeout *time.Duration
	asJSON  *bool
	all     *bool
}

// newDeadLettersFlags defines the flags, with serve's address as --addr's
// default.
func newDeadLettersFlags(getenv func(string) string) deadLettersFlags {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	f := deadLettersFlags{
		fs:      fs,
		addr:    fs.String("addr", defaultServeAddr(getenv), "address the gateway listens on, HOST:PORT or a URL (env THREADGATE_ADDR, or :$PORT); an empty or unspecified host means this machine"),
		timeout: fs.Duration("timeout", 10*time.Second, "how long to wait for each answer"),
		asJSON:  fs.Bool("json", false, "list: print the gateway's JSON answer as it is"),
		all:     fs.Bool("all", false, "replay, drop: every dead letter"),
	}
	return f
}

// printUsage writes the commands' usage and the flags' defaults to w.
func (f deadLettersFlags) printUsage(w io.Writer) {
	fmt.Fprint(w, deadLettersUsage)
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseIDs reads dead letter IDs: positive decimal integers.
func parseIDs(args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not a dead letter ID (a positive number, as threadgate deadletters list shows)", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// defaultServeAddr is serve's default --addr: THREADGATE_ADDR, else :$PORT,
// else :8080.
func defaultServeAddr(getenv func(string) string) string {
	if a := getenv("THREADGATE_ADDR"); a != "" {
		return a
	}
	if p := getenv("PORT"); p != "" {
		return ":" + p
	}
	return ":8080"
}

// localBaseURL turns serve's listen address into the URL a client on the
// same machine reaches it at: an empty or unspecified host (":8080",
// "0.0.0.0:8080", "[::]:8080") becomes 127.0.0.1.
func localBaseURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// adminClient calls the gateway's /-/ endpoints.
type adminClient struct {
	base string
	http *http.Client
}

// newAdminClient returns a client of the gateway at addr: serve's listen
// address, or a URL such as http://127.0.0.1:8080.
func newAdminClient(addr string, timeout time.Duration) (*adminClient, error) {
	base := strings.TrimRight(addr, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		var err error
		if base, err = localBaseURL(addr); err != nil {
			return nil, err
		}
	}
	return &adminClient{base: base, http: &http.Client{Timeout: timeout}}, nil
}

// errStatus is an answer other than 200 from the gateway.
type errStatus struct {
	status  int
	message string // the answer's "error", or its first line
}

func (e *errStatus) Error() string {
	if e.message == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.message)
}

// do sends a request and decodes a 200 answer's JSON body into out.
func (c *adminClient) do(method, path string, out any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := ""
		if json.Unmarshal(body, &e) == nil {
			msg = e.Error
		} else {
			msg, _, _ = strings.Cut(strings.TrimSpace(string(body)), "\n")
		}
		return &errStatus{status: resp.StatusCode, message: msg}
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = body
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not what a threadgate gateway sends: %w", method, path, err)
	}
	return nil
}

// explain turns an error calling the gateway into words an operator can act
// on: the gateway is not running, refuses callers from elsewhere, or is too
// old to have dead letters.
func (c *adminClient) explain(err error) string {
	var st *errStatus
	if errors.As(err, &st) {
		switch st.status {
		case http.StatusForbidden:
			return fmt.Sprintf("the gateway at %s refuses admin requests from this machine (%v).\n"+
				"Run this command on the gateway's machine (docker exec CONTAINER threadgate deadletters …, kubectl exec deploy/threadgate -- threadgate deadletters …),\n"+
				"or forward its port here first (kubectl -n threadgate port-forward deploy/threadgate 8080) and use --addr 127.0.0.1:8080", c.base, st)
		case http.StatusNotFound:
			return fmt.Sprintf("the gateway at %s has no /-/deadletters endpoints (%v): is it an older threadgate?", c.base, st)
		}
		return fmt.Sprintf("the gateway at %s answered %v", c.base, st)
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return fmt.Sprintf("no gateway answers at %s (%v).\n"+
			"Is threadgate serve running on this machine? Give its address with --addr HOST:PORT (or THREADGATE_ADDR)", c.base, err)
	}
	return fmt.Sprintf("calling the gateway at %s: %v", c.base, err)
}

// listDeadLetters prints the dead letters as a table, or the raw JSON.
func listDeadLetters(c *adminClient, asJSON bool, stdout, stderr io.Writer) int {
	var raw json.RawMessage
	if err := c.do(http.MethodGet, "/-/deadletters", &raw); err != nil {
		fmt.Fprintln(stderr, "threadgate deadletters:", c.explain(err))
		return exitFailed
	}
	if asJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			fmt.Fprintln(stderr, "threadgate deadletters: the answer is not JSON:", err)
			return exitFailed
		}
		buf.WriteByte('\n')
		_, _ = stdout.Write(buf.Bytes())
		return exitOK
	}
	var answer struct {
		DeadLetters []deadLetter `json:"dead_letters"`
		Count       int          `json:"count"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		fmt.Fprintln(stderr, "threadgate deadletters: the answer is not what a threadgate gateway sends:", err)
		return exitFailed
	}
	writeDeadLetterTable(stdout, answer.DeadLetters)
	return exitOK
}

// writeDeadLetterTable prints dead letters one per line, oldest first, and
// how to replay or drop them.
func writeDeadLetterTable(w io.Writer, dls []deadLetter) {
	if len(dls) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED AT\tUSER\tKIND\tRULE\tSTEP\tTRIES\tGRAPH ERROR\tERROR")
	for _, d := range dls {
		id := strconv.FormatUint(d.ID, 10)
		if d.ReplayOf != 0 {
			id += fmt.Sprintf(" (replay of %d)", d.ReplayOf)
		}
		step := "-"
		if d.StepKind != "" {
			step = fmt.Sprintf("%d %s", d.Step+1, d.StepKind)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, shortTime(d.FailedAt),
			orDash(d.User), orDash(d.Kind), orDash(d.Rule), step, d.Attempts, graphSummary(d), oneLine(d.Error))
	}
	_ = tw.Flush()
	noun := "dead letters"
	if len(dls) == 1 {
		noun = "dead letter"
	}
	fmt.Fprintf(w, "\n%d %s. Replay: threadgate deadletters replay ID... (or --all). Drop: threadgate deadletters drop ID... (or --all).\n", len(dls), noun)
}

// graphSummary is the Graph API error of a dead letter in one cell, e.g.
// "190/460 HTTP 400 fbtrace A1b2".
func graphSummary(d deadLetter) string {
	g := d.Graph
	if g == nil || (g.Code == 0 && g.HTTPStatus == 0) {
		return "-"
	}
	s := fmt.Sprintf("code %d", g.Code)
	if g.Subcode != 0 {
		s += fmt.Sprintf("/%d", g.Subcode)
	}
	if g.HTTPStatus != 0 {
		s += fmt.Sprintf(" HTTP %d", g.HTTPStatus)
	}
	if g.FBTraceID != "" {
		s += " fbtrace " + g.FBTraceID
	}
	return s
}

// shortTime writes an RFC 3339 time of the gateway's answer to the second,
// in UTC; what does not parse is shown as it is.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return orDash(s)
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// replayDeadLetters replays the given dead letters, or all of them.
func replayDeadLetters(c *adminClient, ids []uint64, all bool, stdout, stderr io.Writer) int {
	if all {
		var answer struct {
			Replayed []replayed `json:"replayed"`
			Count    int        `json:"count"`
		}
		if err := c.do(http.MethodPost, "/-/deadletters/replay", &answer); err != nil {
			fmt.Fprintln(stderr, "threadgate deadletters:", c.explainReplay(err))
			return exitFailed
		}
		for _, r := range answer.Replayed {
			fmt.Fprintf(stdout, "replayed %d as event %d\n", r.ID, r.Seq)
		}
		fmt.Fprintf(stdout, "%d replayed\n", answer.Count)
		return exitOK
	}
	code := exitOK
	for _, id := range ids {
		var answer struct {
			Replayed uint64 `json:"replayed"`
			Seq      uint64 `json:"seq"`
		}
		if err := c.do(http.MethodPost, fmt.Sprintf("/-/deadletters/%d/replay", id), &answer); err != nil {
			fmt.Fprintf(stderr, "threadgate deadletters: replay %d: %s\n", id, c.explainItem(err))
			code = exitFailed
			if !isItemError(err) {
				return code
			}
			continue
		}
		fmt.Fprintf(stdout, "replayed %d as event %d\n", answer.Replayed, answer.Seq)
	}
	return code
}

// dropDeadLetters drops the given dead letters, or all of them.
func dropDeadLetters(c *adminClient, ids []uint64, all bool, stdout, stderr io.Writer) int {
	if all {
		var answer struct {
			Dropped int `json:"dropped"`
		}
		if err := c.do(http.MethodDelete, "/-/deadletters", &answer); err != nil {
			fmt.Fprintln(stderr, "threadgate deadletters:", c.explain(err))
			return exitFailed
		}
		fmt.Fprintf(stdout, "%d dropped\n", answer.Dropped)
		return exitOK
	}
	code := exitOK
	for _, id := range ids {
		var answer struct {
			Dropped uint64 `json:"dropped"`
		}
		if err := c.do(http.MethodDelete, fmt.Sprintf("/-/deadletters/%d", id), &answer); err != nil {
			fmt.Fprintf(stderr, "threadgate deadletters: drop %d: %s\n", id, c.explainItem(err))
			code = exitFailed
			if !isItemError(err) {
				return code
			}
			continue
		}
		fmt.Fprintf(stdout, "dropped %d\n", answer.Dropped)
	}
	return code
}

// isItemError reports whether err concerns one dead letter (not found), so
// that the others are still tried.
func isItemError(err error) bool {
	var st *errStatus
	return errors.As(err, &st) && st.status == http.StatusNotFound
}

// explainItem explains an error about one dead letter: a 404 means there is
// no such dead letter, not an old gateway.
func (c *adminClient) explainItem(err error) string {
	if isItemError(err) {
		return "no such dead letter (replayed or dropped already? threadgate deadletters list shows those kept)"
	}
	return c.explainReplay(err)
}

// explainReplay explains an error of a replay: a 503 means the store is
// full.
func (c *adminClient) explainReplay(err error) string {
	var st *errStatus
	if errors.As(err, &st) && st.status == http.StatusServiceUnavailable {
		return fmt.Sprintf("the gateway's queue is full (%v): try again once it has drained (threadgate_queue_depth)", st)
	}
	return c.explain(err)
}
