package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/touchpoint-dev/touchpoint/engine"
)

// The admin API is operator-facing and rare, so its answers are encoded
// with encoding/json. Its request bodies are parsed like every other body,
// with fastjson by parseBody's rules.

// handleAdmin authenticates every /admin/ request before routing it, so an
// unauthenticated caller cannot probe which admin paths exist.
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx, ep *endpoint) {
	noStore(ctx)
	switch string(ctx.Path()) {
	case "/admin/reload":
		*ep = epAdminReload
	case "/admin/ruleset":
		*ep = epAdminRuleset
	}
	if !s.requireAdmin(ctx, "the admin API is disabled: no admin key is configured; set server.admin_key or TOUCHPOINT_ADMIN_KEY") {
		return
	}
	switch *ep {
	case epAdminReload:
		if !ctx.IsPost() {
			s.methodNotAllowed(ctx, "POST")
			return
		}
		s.handleReload(ctx)
	case epAdminRuleset:
		if s.allowGet(ctx) {
			s.writeAdminJSON(ctx, fasthttp.StatusOK, statusJSON(s.decider.Status()))
		}
	case epAdminOther:
		if isWorkbenchPath(string(ctx.Path())) {
			s.handleWorkbench(ctx)
			return
		}
		if string(ctx.Path()) != "/admin/bandits" || s.experiments == nil {
			s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
				message: "no endpoint at " + string(ctx.Path())})
			return
		}
		if s.allowGet(ctx) {
			s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]any{"bandits": nonNil(s.experiments.Bandits())})
		}
	default:
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound,
			message: "no endpoint at " + string(ctx.Path())})
	}
}

// requireAdmin answers 403 when no admin key is configured (with
// disabledMsg) and 401 when the request does not carry it, and reports
// whether the request may go on.
func (s *Server) requireAdmin(ctx *fasthttp.RequestCtx, disabledMsg string) bool {
	return s.checkAdmin(ctx, "Authorization", disabledMsg, "Authorization must be Bearer <admin key>", "")
}

// requireAdminFor answers 403 or 401 when a request uses field, which
// only the admin key may, without it; it reports whether the request may
// go on.
func (s *Server) requireAdminFor(ctx *fasthttp.RequestCtx, field string) bool {
	return s.checkAdmin(ctx, field, field+" needs the admin key, and none is configured; set server.admin_key or TOUCHPOINT_ADMIN_KEY",
		field+" asks for a preview (no side effects, for the playground), which needs Authorization: Bearer <admin key>", field)
}

// checkAdmin is requireAdmin and requireAdminFor: 403 disabledMsg when no
// admin key is configured (naming disabledField, if any), 401
// unauthorizedMsg naming field when the request lacks the key.
func (s *Server) checkAdmin(ctx *fasthttp.RequestCtx, field, disabledMsg, unauthorizedMsg, disabledField string) bool {
	if !s.adminEnabled {
		s.writeError(ctx, &apiError{status: fasthttp.StatusForbidden, code: codeAdminDisabled, field: disabledField, message: disabledMsg})
		return false
	}
	if !s.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="touchpoint-admin"`)
		s.writeError(ctx, &apiError{status: fasthttp.StatusUnauthorized, code: codeUnauthorized, field: field, message: unauthorizedMsg})
		return false
	}
	return true
}

// authorized compares SHA-256 digests in constant time, which hides both
// the key's bytes and its length from timing.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	const scheme = "bearer "
	h := ctx.Request.Header.Peek("Authorization")
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return false
	}
	sum := sha256.Sum256(bytes.TrimSpace(h[len(scheme):]))
	return subtle.ConstantTimeCompare(sum[:], s.adminKeyHash[:]) == 1
}

type reloadJSON struct {
	Ruleset  string `json:"ruleset"`
	LoadedAt string `json:"loaded_at"`
}

func (s *Server) handleReload(ctx *fasthttp.RequestCtx) {
	if err := s.decider.Reload(); err != nil {
		// The error text is the operator's own ruleset's file:line:col
		// diagnostics; the old ruleset keeps serving. The engine has logged
		// the failure, so it is only answered here.
		s.writeError(ctx, &apiError{status: fasthttp.StatusUnprocessableEntity, code: codeRulesetInvalid,
			message: err.Error()})
		return
	}
	st := s.decider.Status()
	s.log.Info().Str("ruleset", st.Version).Msg("ruleset reloaded")
	s.writeAdminJSON(ctx, fasthttp.StatusOK, reloadJSON{Ruleset: st.Version, LoadedAt: formatTime(st.LoadedAt)})
}

// rulesetJSON is engine.Status on the wire. Times are RFC 3339 in UTC; a
// time that never happened is null, as is an absent last error.
type rulesetJSON struct {
	Version     string      `json:"version"`
	LoadedAt    *string     `json:"loaded_at"`
	Files       []string    `json:"files"`
	Rules       int         `json:"rules"`
	Touchpoints int         `json:"touchpoints"`
	Placements  int         `json:"placements"`
	Models      []modelJSON `json:"models"`
	Warnings    []string    `json:"warnings"`
	LastError   *string     `json:"last_error"`
	LastErrorAt *string     `json:"last_error_at"`
	Reloads     uint64      `json:"reloads"`
	FailedLoads uint64      `json:"failed_loads"`
}

// modelJSON is engine.ModelStatus on the wire.
type modelJSON struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Objective    string `json:"objective"`
	File         string `json:"file,omitempty"`
	Trees        int    `json:"trees"`
	Inputs       int    `json:"inputs"`
	PerCandidate bool   `json:"per_candidate"`
}

func statusJSON(st engine.Status) rulesetJSON {
	out := rulesetJSON{
		Version:     st.Version,
		LoadedAt:    optionalTime(st.LoadedAt),
		Files:       st.Files,
		Rules:       st.Rules,
		Touchpoints: st.Touchpoints,
		Placements:  st.Placements,
		Warnings:    st.Warnings,
		LastErrorAt: optionalTime(st.LastErrorAt),
		Reloads:     st.Reloads,
		FailedLoads: st.FailedLoads,
	}
	if out.Files == nil {
		out.Files = []string{}
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	out.Models = []modelJSON{}
	for _, m := range st.Models {
		out.Models = append(out.Models, modelJSON{ID: m.ID, Type: m.Type, Objective: m.Objective, File: m.File,
			Trees: m.Trees, Inputs: m.Inputs, PerCandidate: m.PerCandidate})
	}
	if st.LastError != "" {
		out.LastError = &st.LastError
	}
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

func (s *Server) writeAdminJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error().Err(err).Msg("encoding admin answer")
		s.writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: codeInternal,
			message: "internal error"})
		return
	}
	writeJSON(ctx, status, b)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
