package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Every default path (configs/touchpoint.yaml, configs/rules, …) is relative
// to the working directory, so the defaults exist only when touchpoint runs
// from the repository root. These helpers turn a bare "no such file" into
// a message that says which setting named the path and where relative
// paths start.

// pathSetting is a file or directory a command needs, with the setting
// that names it as a user would write it (config key and flag).
type pathSetting struct {
	setting string
	path    string
}

// checkPaths reports the first path that cannot be opened, naming its
// setting. Empty paths are skipped (the setting is off).
func checkPaths(paths ...pathSetting) error {
	for _, p := range paths {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return pathError(err, p.setting, p.path)
		}
	}
	return nil
}

// pathError explains err about path, named by setting.
func pathError(err error, setting, path string) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %q: %w", setting, path, err)
	}
	if filepath.IsAbs(path) {
		return fmt.Errorf("%s %q does not exist", setting, path)
	}
	return fmt.Errorf("%s %q does not exist in the working directory %s: relative paths, and the defaults under configs/, "+
		"start there, so run from the repository root or give the path from here", setting, path, workingDir())
}

func workingDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "(unknown)"
	}
	return wd
}
