package main

import (
	"fmt"
	"io"

	"github.com/threadgate/threadgate/rules"
)

// schema runs `threadgate schema`: it prints the JSON Schema of the rules
// file, the same as rules/schema.json.
func schema(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: threadgate schema\n\nPrints the JSON Schema (draft-07) of the rules file, for editors; rules/schema.json is a copy.")
		if args[0] == "-h" || args[0] == "--help" {
			return exitOK
		}
		return exitUsage
	}
	b, err := rules.SchemaJSON()
	if err != nil {
		fmt.Fprintln(stderr, "threadgate schema:", err)
		return exitFailed
	}
	if _, err := stdout.Write(b); err != nil {
		return exitFailed
	}
	return exitOK
}
