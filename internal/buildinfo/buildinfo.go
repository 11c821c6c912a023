// Package buildinfo says which build of Touchpoint is running: the module
// version, the commit it was built from and the Go version, as the Go
// toolchain recorded them in the binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Info describes a build. Fields the toolchain did not record (a binary
// built outside a git checkout, or by go run) are "unknown".
type Info struct {
	Version   string // module version, "(devel)" for a local build
	Commit    string // git commit, with "+dirty" when the tree had changes
	Time      string // commit time, RFC 3339
	GoVersion string
}

var read = sync.OnceValue(func() Info {
	info := Info{Version: "unknown", Commit: "unknown", Time: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Commit != "unknown" {
		info.Commit += "+dirty"
	}
	return info
})

// Read returns the running binary's build.
func Read() Info { return read() }
