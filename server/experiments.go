package server

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/experiments"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// ExperimentReporter reports A/B tests and bandit placements from their
// live counters; *engine.Engine with a store's tallies satisfies it.
type ExperimentReporter interface {
	ExperimentReport(ctx context.Context, id string) (*experiments.Report, error)
	ExperimentIDs() []string
	// Bandits describes the Thompson placements for GET /admin/bandits.
	Bandits() []engine.BanditStatus
}

var _ ExperimentReporter = (*engine.Engine)(nil)

// experimentsPrefix is where experiment reports live.
const experimentsPrefix = "/v1/experiments/"

// handleExperiment serves GET /v1/experiments/{id}: the experiment's
// report from the counters every node adds to. It is an operator's and
// analyst's view, so it needs the admin key.
func (s *Server) handleExperiment(ctx *fasthttp.RequestCtx) {
	noStore(ctx)
	if !s.requireAdmin(ctx, "experiment reports need the admin API: no admin key is configured; set server.admin_key or TOUCHPOINT_ADMIN_KEY") {
		return
	}
	if !s.allowGet(ctx) {
		return
	}
	if s.experiments == nil {
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotImplemented, code: codeNotSupported,
			message: "this server keeps no experiment counters"})
		return
	}
	id := ctx.Path()[len(experimentsPrefix):]
	if problem := idProblem(id, maxNameBytes); problem != "" {
		s.writeError(ctx, badField(codeInvalidField, "id", "the experiment id"+problem))
		return
	}
	c, cancel := context.WithTimeout(s.baseCtx, storeTimeout)
	defer cancel()
	rep, err := s.experiments.ExperimentReport(c, string(id))
	switch {
	case errors.Is(err, engine.ErrNoExperiment):
		ids := s.experiments.ExperimentIDs()
		msg := "no experiment " + strconv.Quote(string(id)) + " in the ruleset being served" + rules.Suggest(string(id), ids)
		if len(ids) > 0 {
			slices.Sort(ids)
			msg += "; it has " + strings.Join(ids, ", ")
		}
		s.writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: codeNotFound, message: msg})
		return
	case err != nil:
		s.storeLog.Warn().Err(err).Msg("cannot read experiment counters")
		ctx.Response.Header.Set("Retry-After", "1")
		s.writeError(ctx, &apiError{status: fasthttp.StatusServiceUnavailable, code: codeUnavailable,
			message: "the customer store did not answer with the experiment's counters; retry"})
		return
	}
	s.writeAdminJSON(ctx, fasthttp.StatusOK, rep.Summarize())
}
