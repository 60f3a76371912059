package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// revision is the VCS revision for builds made without VCS stamping (a
// container build has no .git): go build -ldflags "-X main.revision=abc123".
var revision string

// versionString describes the build: module version, VCS revision and time.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "threadgate (unknown build)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		rev = revision
	}
	out := "threadgate " + v
	if rev != "" {
		out += " " + rev + dirty
	}
	if at != "" {
		out += " " + at
	}
	return out + " " + bi.GoVersion
}

func version(w io.Writer) int {
	fmt.Fprintln(w, versionString())
	return exitOK
}
