package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

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
