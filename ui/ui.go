// Package ui owns the playground: a single-page app for marketers, built
// from plain ES modules and a vendored code editor, embedded in the binary
// so that serving it needs no build step or install. It holds files only;
// the server decides how they are served, and every piece of data the page
// shows comes from the admin API, behind the admin key.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed assets
var assets embed.FS

// Assets is the playground's files, index.html at the root.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // "assets" is embedded above; fs.Sub fails only on a bad name
	}
	return sub
}
