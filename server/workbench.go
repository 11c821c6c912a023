package server

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/touchpoint-dev/touchpoint/workbench"
)

// Workbench answers the playground's admin calls; *workbench.Workbench
// satisfies it.
type Workbench interface {
	Schema() workbench.Schema
	Rules() workbench.Catalog
	File(path string) ([]byte, error)
	Check(d workbench.Draft) (*workbench.Check, error)
	Replay(ctx context.Context, d workbench.Draft, limit int) (*workbench.ReplayReport, error)
	Customer(ctx context.Context, id string) (*workbench.Customer, error)
}

var _ Workbench = (*workbench.Workbench)(nil)

const (
	// maxDraftBody bounds a draft's body: hand-written rule files are tens
	// of kilobytes, and a larger bound would raise how much fasthttp reads
	// for every endpoint (see New).
	maxDraftBody = 1 << 20
	// replayTimeout bounds one replay; MaxReplay decisions take well under
	// a second each way.
	replayTimeout = 60 * time.Second
)

// Workbench paths, under /admin/.
const (
	pathSchema      = "/admin/schema"
	pathRules       = "/admin/rules"
	pathRuleFile    = "/admin/rules/file"
	pathDraftCheck  = "/admin/drafts/check"
	pathDraftReplay = "/admin/drafts/replay"
)

func isWorkbenchPath(p string) bool {
	switch p {
	case pathSchema, pathRules, pathRuleFile, pathDraftCheck, pathDraftReplay:
		return true
	}
	return false
}

// handleWorkbench serves the playground's admin calls; the caller has
// checked the admin key.
func (s *Server) handleWorkbench(ctx *fasthttp.RequestCtx) {
	p := string(ctx.Path())
	if s.workbench == nil {
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: codeNotSupported,
			message: p + " needs the rules workbench, which this server was started without"})
		return
	}
	switch p {
	case pathSchema:
		if s.allowGet(ctx) {
			s.writeAdminJSON(ctx, fasthttp.StatusOK, s.workbench.Schema())
		}
	case pathRules:
		if s.allowGet(ctx) {
			s.writeAdminJSON(ctx, fasthttp.StatusOK, s.workbench.Rules())
		}
	case pathRuleFile:
		if !s.allowGet(ctx) {
			return
		}
		path := ctx.QueryArgs().Peek("path")
		if len(path) == 0 {
			s.writeError(ctx, badField(codeMissingField, "path", "path is required: the rule file's path relative to the rules directory, such as ?path=cart.yaml"))
			return
		}
		src, err := s.workbench.File(string(path))
		if err != nil {
			s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound, field: "path", message: err.Error()})
			return
		}
		s.writeAdminJSON(ctx, fasthttp.StatusOK, map[string]string{"path": string(path), "content": string(src)})
	case pathDraftCheck, pathDraftReplay:
		if !ctx.IsPost() {
			s.methodNotAllowed(ctx, "POST")
			return
		}
		if len(ctx.PostBody()) > maxDraftBody {
			s.writeError(ctx, bodyTooLarge(maxDraftBody, epAdminOther))
			return
		}
		replaying := p == pathDraftReplay
		parser := s.parsers.Get()
		draft, limit, apiErr := decodeDraft(parser, ctx.PostBody(), replaying)
		s.parsers.Put(parser)
		if apiErr != nil {
			s.writeError(ctx, apiErr)
			return
		}
		if !replaying {
			s.answerCheck(ctx, draft)
			return
		}
		s.answerReplay(ctx, draft, limit)
	}
}

func (s *Server) answerCheck(ctx *fasthttp.RequestCtx, draft workbench.Draft) {
	res, err := s.workbench.Check(draft)
	if err != nil {
		// decodeDraft has validated the draft, so this is reading the live
		// files failing: the server's trouble.
		s.errLog.Error().Err(err).Msg("checking a draft failed")
		s.writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: codeInternal, message: err.Error()})
		return
	}
	s.writeAdminJSON(ctx, fasthttp.StatusOK, res)
}

func (s *Server) answerReplay(ctx *fasthttp.RequestCtx, draft workbench.Draft, limit int) {
	c, cancel := context.WithTimeout(s.baseCtx, replayTimeout)
	defer cancel()
	rep, err := s.workbench.Replay(c, draft, limit)
	var invalid *workbench.DraftError
	switch {
	case err == nil:
		s.writeAdminJSON(ctx, fasthttp.StatusOK, rep)
	case errors.As(err, &invalid):
		s.writeError(ctx, &apiError{status: fasthttp.StatusUnprocessableEntity, code: codeRulesetInvalid,
			message: "the draft does not compile; check it first:\n" + err.Error()})
	case errors.Is(err, workbench.ErrNoTraffic):
		s.writeError(ctx, &apiError{status: fasthttp.StatusConflict, code: codeNotSupported, message: err.Error()})
	default:
		s.errLog.Error().Err(err).Msg("replaying a draft failed")
		s.writeError(ctx, &apiError{status: fasthttp.StatusInternalServerError, code: codeInternal, message: err.Error()})
	}
}

// decodeDraft reads {"files": {"cart.yaml": "…"}} and, for a replay, an
// optional "limit".
func decodeDraft(p *fastjson.Parser, body []byte, replaying bool) (workbench.Draft, int, *apiError) {
	const example = `{"files": {"cart.yaml": "rules: …"}}`
	root, apiErr := parseBody(p, body)
	if apiErr != nil {
		return nil, 0, apiErr
	}
	top, err := root.Object()
	if err != nil {
		return nil, 0, badField(codeInvalidJSON, "", "request body must be a JSON object such as "+example+", got "+root.Type().String())
	}
	draft := workbench.Draft{}
	limit := workbench.DefaultReplay
	var fail *apiError
	seen := map[string]bool{}
	top.Visit(func(k []byte, v *fastjson.Value) {
		key := string(k)
		switch {
		case fail != nil:
			return
		case seen[key]:
			fail = badField(codeInvalidField, key, key+" is given more than once")
			return
		}
		seen[key] = true
		switch {
		case key == "files":
			fail = decodeDraftFiles(v, draft)
		case key == "limit" && replaying:
			n, err := v.Int()
			if err != nil || n < 1 || n > workbench.MaxReplay {
				fail = badField(codeInvalidField, "limit", "limit must be a whole number from 1 to "+strconv.Itoa(workbench.MaxReplay)+": how many of the latest logged decisions to replay")
				return
			}
			limit = n
		default:
			expected := "files"
			if replaying {
				expected = "files or limit"
			}
			fail = badField(codeUnknownField, key, key+" is not a known field; expected "+expected)
		}
	})
	if fail != nil {
		return nil, 0, fail
	}
	if !seen["files"] {
		return nil, 0, badField(codeMissingField, "files", "files is required: "+example)
	}
	if err := draft.Validate(); err != nil {
		return nil, 0, badField(codeInvalidField, "files", err.Error())
	}
	return draft, limit, nil
}

func decodeDraftFiles(v *fastjson.Value, into workbench.Draft) *apiError {
	obj, err := v.Object()
	if err != nil {
		return badField(codeInvalidField, "files", "files must be an object from a rule file's path to its text, got "+v.Type().String())
	}
	var fail *apiError
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if fail != nil {
			return
		}
		path := string(k)
		field := "files." + path
		if _, dup := into[path]; dup {
			fail = badField(codeInvalidField, field, field+" is given more than once")
			return
		}
		text, err := fv.StringBytes()
		if err != nil {
			fail = badField(codeInvalidField, field, field+" must be the file's text as a string, got "+fv.Type().String())
			return
		}
		into[path] = append([]byte(nil), text...)
	})
	return fail
}
