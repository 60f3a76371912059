package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// profileTarget is one Page whose Messenger profile the rules file declares.
type profileTarget struct {
	// label names the Page in the output.
	label string
	// pageID selects the token ("" with a single PAGE_ACCESS_TOKEN).
	pageID string
	want   messenger.Profile
}

// profileCmd runs `threadgate profile diff|apply`: it compares the profile
// section of the rules file with the live Messenger profile of each Page and
// prints the plan field by field; apply then makes the plan's calls.
func profileCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, `usage: threadgate profile diff  [--rules PATH]
       threadgate profile apply [--rules PATH] [--prune]

diff reads each Page's live Messenger profile (Graph API) and prints what would change, field by
field, to make it what the rules file's profile section declares. apply makes those changes: it
sets only the fields that differ, and deletes a field the file no longer declares only with
--prune. The token comes from PAGE_ACCESS_TOKEN or THREADGATE_PAGES_FILE, as for serve.`)
	}
	if len(args) == 0 || (args[0] != "diff" && args[0] != "apply") {
		usage()
		return exitUsage
	}
	apply := args[0] == "apply"
	fs := flag.NewFlagSet("profile "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesPath := getenv("THREADGATE_RULES")
	if rulesPath == "" {
		rulesPath = "rules.yaml"
	}
	fs.StringVar(&rulesPath, "rules", rulesPath, "rules file (env THREADGATE_RULES)")
	prune := false
	if apply {
		fs.BoolVar(&prune, "prune", false, "also delete the profile fields that the rules file does not declare")
	}
	fs.Usage = usage
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "threadgate profile %s takes no arguments, got %q\n", args[0], fs.Args())
		return exitUsage
	}
	f, err := rules.Load(rulesPath)
	if err != nil {
		printRulesError(stderr, err)
		return exitFailed
	}
	token, pagesFile := getenv("PAGE_ACCESS_TOKEN"), getenv("THREADGATE_PAGES_FILE")
	var pages messenger.PageTokens
	if pagesFile != "" {
		if pages, err = messenger.LoadPageTokens(pagesFile); err != nil {
			fmt.Fprintf(stderr, "threadgate profile: %v\n", err)
			return exitUsage
		}
	}
	if token == "" && len(pages) == 0 {
		fmt.Fprintln(stderr, "threadgate profile: set PAGE_ACCESS_TOKEN (or THREADGATE_PAGES_FILE): the profile is read and written with the Page's token")
		return exitUsage
	}
	targets, err := profileTargets(f, token, pages)
	if err != nil {
		fmt.Fprintf(stderr, "threadgate profile: %v\n", err)
		return exitFailed
	}
	graphURL := strings.TrimRight(getenv("GRAPH_API_URL"), "/")
	if graphURL == "" {
		graphURL = defaultGraphURL
	}
	var secret []byte
	if s := getenv("APP_SECRET"); s != "" {
		secret = []byte(s)
	}
	client := messenger.NewClient(messenger.Options{
		BaseURL:   graphURL,
		Tokens:    pageTokens(token, pages),
		AppSecret: secret,
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := exitOK
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		live, err := client.GetProfile(ctx, t.pageID, nil)
		if err != nil {
			fmt.Fprintf(stderr, "threadgate profile: %s: reading the live profile: %v\n", t.label, err)
			code = exitFailed
			continue
		}
		plan := messenger.PlanProfile(t.want, live, prune)
		writePlan(stdout, t.label, plan, apply)
		if !apply || plan.Empty() {
			continue
		}
		if err := client.ApplyProfilePlan(ctx, t.pageID, plan); err != nil {
			fmt.Fprintf(stderr, "threadgate profile: %s: %v\n", t.label, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "applied: %s\n", appliedSummary(plan))
	}
	return code
}

// profileTargets lists the Pages to compare: with one profile for every
// Page, the Page of PAGE_ACCESS_TOKEN or every Page of the pages file; with
// profiles by page name, those Pages (by their IDs in pages).
func profileTargets(f *rules.File, token string, pages messenger.PageTokens) ([]profileTarget, error) {
	ps := f.Profiles()
	if !ps.Declared() {
		return nil, fmt.Errorf("%s has no profile section: nothing to compare", f.Path)
	}
	if ps.Shared != nil {
		if len(pages) == 0 {
			return []profileTarget{{label: "the Page of PAGE_ACCESS_TOKEN", want: *ps.Shared}}, nil
		}
		ids := make([]string, 0, len(pages))
		for id := range pages {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		out := make([]profileTarget, len(ids))
		for i, id := range ids {
			out[i] = profileTarget{label: "page " + id, pageID: id, want: *ps.Shared}
		}
		return out, nil
	}
	idOf := map[string]string{}
	for id, p := range f.Set.Handover().Pages {
		idOf[p.Name] = id
	}
	var out []profileTarget
	for _, name := range ps.PageNames() {
		id, ok := idOf[name]
		if !ok {
			return nil, fmt.Errorf("page %q of the profile section is not in pages", name)
		}
		if _, ok := pages[id]; !ok && token == "" {
			return nil, fmt.Errorf("page %q (%s) has no token in THREADGATE_PAGES_FILE", name, id)
		}
		want, _ := ps.For(name)
		out = append(out, profileTarget{label: fmt.Sprintf("page %s (%s)", name, id), pageID: id, want: want})
	}
	return out, nil
}

// writePlan prints a plan field by field: each field the file or the Page
// sets, how it changes, and the old (-) and new (+) values.
func writePlan(w io.Writer, label string, plan messenger.ProfilePlan, apply bool) {
	fmt.Fprintf(w, "%s:\n", label)
	if len(plan.Changes) == 0 {
		fmt.Fprintln(w, "  neither the rules file nor the Page sets a profile field")
	}
	for _, c := range plan.Changes {
		switch {
		case c.Kind == messenger.ChangeRemove && !c.Applied:
			fmt.Fprintf(w, "  %s: on the Page, not in the file (kept; apply --prune deletes it)\n", c.Field)
		default:
			fmt.Fprintf(w, "  %s: %s\n", c.Field, c.Kind)
		}
		if c.Kind == messenger.ChangeNone {
			continue
		}
		if c.Live != nil {
			fmt.Fprintf(w, "    - %s\n", c.Live)
		}
		if c.Want != nil {
			fmt.Fprintf(w, "    + %s\n", c.Want)
		}
	}
	switch {
	case plan.Empty():
		fmt.Fprintln(w, "no changes: the Page's profile is as declared")
	case apply:
		fmt.Fprintf(w, "plan: %d field(s) to set, %d to delete\n", len(plan.SetFields), len(plan.Delete))
	default:
		fmt.Fprintf(w, "plan: %d field(s) to set, %d to delete (threadgate profile apply makes these changes)\n", len(plan.SetFields), len(plan.Delete))
	}
}

func appliedSummary(plan messenger.ProfilePlan) string {
	var parts []string
	if len(plan.SetFields) > 0 {
		parts = append(parts, "set "+strings.Join(plan.SetFields, ", "))
	}
	if len(plan.Delete) > 0 {
		parts = append(parts, "deleted "+strings.Join(plan.Delete, ", "))
	}
	return strings.Join(parts, "; ")
}
