package main

import (
	"fmt"
	"io"

	"github.com/touchpoint-dev/touchpoint/internal/buildinfo"
)

// version prints the running build, for bug reports and deploy checks.
func version(stdout io.Writer) error {
	info := buildinfo.Read()
	fmt.Fprintf(stdout, "touchpoint %s\ncommit %s (%s)\n%s\n", info.Version, info.Commit, info.Time, info.GoVersion)
	return nil
}
