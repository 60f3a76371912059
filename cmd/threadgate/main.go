// Command threadgate runs a Facebook Messenger (and Instagram) bot from a
// rules file and hands conversations to human agents.
//
//	threadgate serve  [--rules PATH] [--addr HOST:PORT]   run the gateway
//	threadgate check  [--strict] PATH...                   validate rules files
//	threadgate test   PATH...                              run rule test files
//	threadgate explain [--rules PATH] [flags] [TEXT]       explain which rule fires
//	threadgate schema                                      print the rules JSON Schema
//	threadgate profile diff|apply [--rules PATH] [--prune] the Page's Messenger profile
//	threadgate healthcheck [--addr HOST:PORT]              check the local /healthz
//	threadgate deadletters list|replay|drop [ID...|--all]  the running gateway's dead letters
//	threadgate version
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // invalid rules, failed tests, runtime failure
	exitUsage  = 2 // bad command line or refused configuration
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "test":
		return testRules(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "schema":
		return schema(args[1:], stdout, stderr)
	case "profile": // profile.go (issue 14)
		return profileCmd(args[1:], os.Getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], os.Getenv, stderr)
	case "deadletters":
		return deadLetters(args[1:], os.Getenv, stdout, stderr)
	case "version", "--version", "-version":
		return version(stdout)
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "threadgate: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  threadgate serve  [--rules PATH] [--addr HOST:PORT]   run the gateway
  threadgate check  [--strict] PATH...                   validate rules files, run their tests, warn of likely mistakes; exit 0 ok, 1 invalid
  threadgate test   PATH...                              run rule test files; exit 0 when all pass, 1 when not
  threadgate explain [--rules PATH] [flags] [TEXT]       show which rule fires for an event, and why the others do not
  threadgate schema                                      print the JSON Schema of the rules file
  threadgate profile diff|apply [--rules PATH] [--prune] compare or apply the rules file's Messenger profile (menu, greeting, ...)
  threadgate version                                     print the version
  threadgate healthcheck [--addr HOST:PORT]              exit 0 when the local server's /healthz answers 200
  threadgate deadletters list|replay|drop [ID...|--all]  list, replay or drop the running gateway's dead letters

Run "threadgate COMMAND -h" for a command's flags.
`)
}
