package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/rules/ruletest"
)

// explain runs `threadgate explain [flags] [TEXT]`: which rule fires for an
// event, the actions it would run with their text rendered, and for every
// rule before it why it did not fire. Nothing is sent.
func explain(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("explain", flag.ContinueOnError)
	fset.SetOutput(stderr)
	rulesDefault := os.Getenv("THREADGATE_RULES")
	explicit := rulesDefault != ""
	if rulesDefault == "" {
		rulesDefault = defaultRulesPath
	}
	var in ruletest.Input
	rulesPath := fset.String("rules", rulesDefault, "rules file (env THREADGATE_RULES); without it and without rules.yaml here, the embedded example rules that serve runs in sandbox mode")
	fset.StringVar(&in.Postback, "postback", "", "explain a postback with this payload (a button the user tapped)")
	fset.StringVar(&in.QuickReply, "quick-reply", "", "the message carries the quick reply with this payload")
	attachment := fset.String("attachment", "", "the message carries attachments of these types, comma-separated (image, video, audio, file, location, fallback, sticker)")
	fset.StringVar(&in.Event, "event", "", "the event kind: message, postback, pass_thread_control, take_thread_control, request_thread_control, returned")
	fset.BoolVar(&in.Standby, "standby", false, "the event arrives on the standby channel (another app owns the thread)")
	fset.StringVar(&in.Metadata, "metadata", "", "the metadata of a handover event")
	at := fset.String("at", "", "the time that now() reads, e.g. 2026-01-05T10:00:00+01:00 (default: now)")
	fset.StringVar(&in.Owner, "owner", "", "who owns the thread: self, idle, other or an app name (default self, other with --standby)")
	fset.BoolVar(&in.Paused, "paused", false, "the bot is paused for this user")
	asJSON := fset.Bool("json", false, "print JSON, as POST /-/explain answers")
	fset.Usage = func() {
		fmt.Fprintln(stderr, `usage: threadgate explain [flags] [TEXT]

Shows what the rules do with one event, without doing it: the rule that fires,
the actions it would run with their text rendered, and for each rule above it
why it did not fire. TEXT is the message the user writes.

examples:
  threadgate explain --rules rules.yaml 'chat with agent'
  threadgate explain --postback TALK_TO_AGENT
  threadgate explain --at 2026-01-04T22:00:00+01:00 'agent please'
  threadgate explain --event pass_thread_control

flags:`)
		fset.PrintDefaults()
	}
	// Flags may come before or after the text.
	var texts []string
	rest := args
	for {
		if err := fset.Parse(rest); err != nil {
			return exitUsage
		}
		rest = fset.Args()
		if len(rest) == 0 {
			break
		}
		texts = append(texts, rest[0])
		rest = rest[1:]
	}
	if len(texts) > 1 {
		fmt.Fprintf(stderr, "threadgate explain: give the message as one argument in quotes, got %d: %q\n", len(texts), texts)
		return exitUsage
	}
	if len(texts) == 1 {
		in.Message = texts[0]
	}
	if *attachment != "" {
		for _, a := range strings.Split(*attachment, ",") {
			in.Attachments = append(in.Attachments, strings.TrimSpace(a))
		}
	}
	if *at != "" {
		t, err := ruletest.ParseTime(*at)
		if err != nil {
			fmt.Fprintln(stderr, "threadgate explain: --at:", err)
			return exitUsage
		}
		in.At = t
	}
	if err := in.Validate(); err != nil {
		fmt.Fprintln(stderr, "threadgate explain:", err)
		fset.Usage()
		return exitUsage
	}
	fset.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rules" })
	// The same rules serve would run here: in sandbox mode, with no rules
	// file given and no rules.yaml, the embedded example.
	src := pickRules(*rulesPath, explicit, sandboxEnv(os.Getenv))
	if src.Embedded {
		fmt.Fprintf(stderr, "threadgate explain: no %s here: explaining the embedded example rules, which serve runs in sandbox mode (give --rules PATH for others)\n", defaultRulesPath)
	}
	files, err := reload.Read(src.Path, src.Read)
	if err != nil {
		printRulesError(stderr, err)
		return exitFailed
	}
	f, err := rules.Parse(files.Path, files.Data)
	if err != nil {
		printRulesError(stderr, err)
		return exitFailed
	}
	x := ruletest.Explain(f.Set, in, time.Now())
	x.Rules = &ruletest.RulesRef{Path: f.Path, Hash: f.Hash}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			fmt.Fprintln(stderr, "threadgate explain:", err)
			return exitFailed
		}
		return exitOK
	}
	if err := x.WriteText(stdout, f.Path); err != nil {
		return exitFailed
	}
	return exitOK
}
