package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// uiPrefix is where the playground is served.
const uiPrefix = "/ui/"

// uiAsset is one playground file, read once when the server starts.
type uiAsset struct {
	body        []byte
	contentType string
	etag        string
}

// uiPolicy keeps the page to its own files: scripts and styles from the
// server only (the editor sets styles inline, hence 'unsafe-inline' for
// styles alone), data from the admin API, and no framing, so a hostile
// site can neither inject script nor overlay the page to steal clicks.
const uiPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// loadUI reads every file of the playground into memory, keyed by its path
// under /ui/ ("" is index.html).
func loadUI(files fs.FS) (map[string]uiAsset, error) {
	out := map[string]uiAsset{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".txt", ".md":
			ct = "text/plain; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		a := uiAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		out[p] = a
		if p == "index.html" {
			out[""] = a
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the playground's files: %w", err)
	}
	return out, nil
}

// handleUI serves the playground's files. They hold no data, so they are
// served without the admin key; the page asks for the key and sends it
// with every call it makes to the admin API.
func (s *Server) handleUI(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		s.methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	p := string(ctx.Path())
	if p == "/ui" {
		ctx.Redirect(uiPrefix, fasthttp.StatusPermanentRedirect)
		return
	}
	a, ok := s.ui[strings.TrimPrefix(p, uiPrefix)]
	if !ok {
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
			message: "no playground file at " + p})
		return
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", uiPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && bytes.Contains(inm, []byte(a.etag)) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(a.contentType)
	ctx.SetBody(a.body)
}
