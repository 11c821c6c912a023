package buildinfo

import (
	"runtime"
	"testing"
)

func TestRead(t *testing.T) {
	info := Read()
	if info.GoVersion != runtime.Version() || info.Version == "" || info.Commit == "" || info.Time == "" {
		t.Errorf("build info %+v", info)
	}
}
