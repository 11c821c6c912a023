package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce collects the burst of events one save produces (editors
// write, rename and chmod) into a single reload.
const reloadDebounce = 100 * time.Millisecond

// Watch reloads when files in the rules directory or the schema change,
// until ctx is cancelled. A failed reload is logged and kept for Status; the
// previous ruleset keeps serving.
func (e *Engine) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("cannot watch rules: %w", err)
	}
	defer w.Close()
	if err := addTree(w, e.cfg.RulesDir); err != nil {
		return fmt.Errorf("cannot watch rules directory %q: %w", e.cfg.RulesDir, err)
	}
	// Watch the schema's directory, not the file: editors replace files by
	// renaming, which would end a watch on the file itself.
	schemaDir := filepath.Dir(e.cfg.SchemaPath)
	if err := w.Add(schemaDir); err != nil {
		return fmt.Errorf("cannot watch schema directory %q: %w", schemaDir, err)
	}
	schemaPath := filepath.Clean(e.cfg.SchemaPath)
	rulesDir := filepath.Clean(e.cfg.RulesDir)
	e.catchUp()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Clean(ev.Name)
			if name != schemaPath && !within(rulesDir, name) {
				continue // another file beside the schema
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(name); err == nil && info.IsDir() {
					_ = addTree(w, name) // a new subdirectory of rules
				}
			}
			timer.Reset(reloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn().Err(err).Msg("file watch error")
		case <-timer.C:
			_ = e.Reload() // the outcome is logged and kept for Status
		}
	}
}

func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != "../")
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}
