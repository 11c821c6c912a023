package engine

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/touchpoint-dev/touchpoint/bandits"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// scratch is the per-Decision working memory, sized for one ruleset. It is
// rebuilt only when the ruleset changes, so steady-state decisions reuse it.
type scratch struct {
	rs           *rules.Ruleset
	env          *rules.Env
	vm           vm.VM
	matched      []match
	suppressedBy []int               // per touchpoint: index of the rule suppressing it by id, or -1
	shownIn      []int               // per touchpoint: index of the request placement showing it, or -1
	touched      []int               // touchpoints whose suppressedBy or shownIn is set
	suppressAll  int                 // first matched rule suppressing "*", or -1
	suppressKind [rules.NumKinds]int // per rules.Kind: first matched rule suppressing that kind, or -1
	candAt       []int32             // per touchpoint: its index in cands while arbitrating, or -1
	limits       []features.DecisionLimit
	cands        []candidate
	content      []byte
	envValue     any

	// Contact policy state for the request being decided.
	rec            *features.Record
	countersOK     bool // false when the store failed: capped touchpoints fail closed
	today          int32
	channel        string
	channelBit     uint64
	schedClock     rules.Clock
	quiet          bool
	consentGranted bool
	fx             *effects
	effects        effects // backing store for fx, so a decision allocates none
	now            time.Time

	// Cost limits: the engine's counters (nil for fixtures) and the
	// deadline for evaluating rules.
	costs    *costs
	deadline time.Duration
	clock    ruleClock

	// Rule selection: placement indexes of the request, the candidate
	// rules, and per-rule stamps that dedupe candidates without clearing.
	oneTP [1]int
	// variantOf is, per experiment, the customer's variant index, or
	// notInExperiment or heldOut.
	variantOf []int
	// forced, set for fixtures, replaces assignment: per experiment a
	// variant index, heldOut or notInExperiment.
	forced         []int
	logged         *[]LoggedCandidate // Decision.Logged when the request asked for it, else nil
	traces         []CandidateTrace   // explanations of eligible candidates, by candidate.trace
	placementIdx   []int
	wanted         uint64 // placement bits of the request
	candidateRules []int32
	seen           []uint32
	epoch          uint32
	idBuf          [maxDecisionIDLen]byte

	// The learning loop (nil learn for fixtures and replays, whose bandit
	// placements then rank by score): per experiment the arm the decision
	// showed (-1: none), the decision id's tags, and the bandit band of
	// the placement being arbitrated.
	learn   *learning
	rng     *mrand.Rand
	pcg     *mrand.PCG    // rng's source
	arm     experimentArm // of the placement being decided
	exposed []int
	tags    []idTag
	band    banditBand
}

// idTag is one tag of a decision id: an item's touchpoint and the arm it
// counts for.
type idTag struct {
	kind byte // 'x' experiment arm, 'b' bandit arm
	tp   uint16
	arm  uint32
}

// banditBand is a bandit placement's candidates as ranked: within each
// priority band that starts before the placement's count, in sampled
// order.
type banditBand struct {
	state   *banditState // nil: not a bandit placement
	post    *posteriors
	segment int
	slots   int // the placement's count
	// bands are [start, end) ranges of s.cands; tps and arms hold the
	// candidates of s.cands[:len(tps)] in their ranked order.
	bands  [][2]int
	tps    []int
	arms   []bandits.Arm
	order  []int
	draws  []float64
	ranked []candidate
}

// match is a matched offer rule: for every touchpoint it offers (tp < 0),
// or, for a rule evaluated per candidate, for touchpoint tp alone.
type match struct {
	rule  int
	tp    int
	score float64
}

type candidate struct {
	tp       int
	rule     int
	priority int
	score    float64 // the placement's arbitration: propensity × value × lever × rule score by default

	chosen bool
	trace  int // index in scratch.traces, with explain
	// model is the propensity model that ranked it (-1 for none) and
	// modelOut its output.
	model    int
	modelOut float64
	// skip and skipBy say why a candidate that won arbitration was still
	// not issued: its budget was spent or a decision cap had no room.
	skip, skipBy string
}

// vmMemoryBudget bounds what one rule evaluation on the expr VM may build:
// items of ranges (1..n), literal lists and maps. Rules that loop over a
// range would otherwise escape max_items; past the budget the rule fails
// for that request (expression_error).
const vmMemoryBudget = 1000

// checkEvery is how many rules may run between two readings of the clock
// for the decide deadline; a rule that loops over lists or runs models is
// followed by a reading whatever the count.
const checkEvery = 16

// ruleClock tells when the decide deadline has passed, reading the clock
// only every checkEvery rules.
type ruleClock struct {
	until  time.Time // zero: no deadline
	since  int       // rules started since the last reading
	passed bool
}

// start begins timing: the first rule reads the clock.
func (c *ruleClock) start(now time.Time, deadline time.Duration) {
	c.until, c.passed, c.since = time.Time{}, false, checkEvery
	if deadline > 0 {
		c.until = now.Add(deadline)
	}
}

// readSoon makes the next expired call read the clock.
func (c *ruleClock) readSoon() { c.since = checkEvery }

// expired is called before each rule; it reports whether the deadline
// has passed.
func (c *ruleClock) expired() bool {
	if c.passed || c.until.IsZero() {
		return c.passed
	}
	if c.since++; c.since < checkEvery {
		return false
	}
	c.since = 0
	c.passed = !time.Now().Before(c.until)
	return c.passed
}

// Reset clears the decision's results, keeping its buffers.
func (d *Decision) Reset() {
	d.ID, d.CustomerID, d.Ruleset = "", "", ""
	d.KnownCustomer, d.Degraded, d.DegradedReasons, d.held = false, false, 0, false
	for i := range d.Placements {
		d.Placements[i].Items = d.Placements[i].Items[:0]
	}
	d.Placements = d.Placements[:0]
	d.Explain = nil
	d.Logged = d.Logged[:0]
}

func (d *Decision) prepare(rs *rules.Ruleset) *scratch {
	d.Reset()
	s := d.scratch
	if s == nil || s.rs != rs {
		s = &scratch{
			rs:           rs,
			env:          rs.NewEnv(),
			suppressedBy: make([]int, len(rs.Touchpoints)),
			shownIn:      make([]int, len(rs.Touchpoints)),
			candAt:       make([]int32, len(rs.Touchpoints)),
			seen:         make([]uint32, len(rs.Rules)),
			variantOf:    make([]int, len(rs.Experiments)),
			exposed:      make([]int, len(rs.Experiments)),
		}
		for i := range rs.Touchpoints {
			s.suppressedBy[i], s.shownIn[i], s.candAt[i] = -1, -1, -1
		}
		s.envValue = s.env.Value()
		s.vm.MemoryBudget = vmMemoryBudget
		d.scratch = s
	}
	s.costs, s.deadline, s.forced = nil, 0, nil
	s.learn, s.tags = nil, s.tags[:0]
	for i := range s.exposed {
		s.exposed[i] = -1
	}
	s.env.Reset()
	s.matched = s.matched[:0]
	s.content = s.content[:0]
	// Per-touchpoint state is reset only where the last decision set it,
	// so a large ruleset costs nothing here.
	for _, tp := range s.touched {
		s.suppressedBy[tp], s.shownIn[tp] = -1, -1
	}
	s.touched = s.touched[:0]
	s.suppressAll = -1
	for k := range s.suppressKind {
		s.suppressKind[k] = -1
	}
	return s
}

// suppressor is the index of the first matched rule that suppresses
// touchpoint tp, or -1.
func (s *scratch) suppressor(tp int) int {
	by := s.suppressedBy[tp]
	if k := s.rs.Touchpoints[tp].KindIndex; k >= 0 {
		by = firstRule(by, s.suppressKind[k])
	}
	return firstRule(by, s.suppressAll)
}

func firstRule(a, b int) int {
	if a < 0 || b >= 0 && b < a {
		return b
	}
	return a
}

// validate rejects client mistakes before any work is done.
func validate(rs *rules.Ruleset, req *Request) *RequestError {
	for i, p := range req.Placements {
		pi := rs.Placement(p.ID)
		if pi < 0 {
			ids := make([]string, len(rs.Placements))
			for k := range rs.Placements {
				ids[k] = rs.Placements[k].ID
			}
			return &RequestError{Code: "unknown_placement", Field: "placements[" + strconv.Itoa(i) + "].id",
				Message: "placement " + strconv.Quote(p.ID) + " is not configured" + rules.Suggest(p.ID, ids)}
		}
		if p.Count < 0 {
			return &RequestError{Code: "invalid_field", Field: "placements[" + strconv.Itoa(i) + "].count",
				Message: "count must not be negative"}
		}
		if max := rs.Placements[pi].MaxCount; p.Count > max {
			return &RequestError{Code: "count_too_large", Field: "placements[" + strconv.Itoa(i) + "].count",
				Message: "count " + strconv.Itoa(p.Count) + " is above the maximum of " + strconv.Itoa(max) + " for placement " + strconv.Quote(p.ID)}
		}
	}
	schema := rs.Schema
	for _, c := range req.Context {
		fi := schema.ContextField(c.Name)
		if fi < 0 {
			names := make([]string, len(schema.Context))
			for k := range schema.Context {
				names[k] = schema.Context[k].Name
			}
			return &RequestError{Code: "unknown_context_field", Field: "context." + c.Name,
				Message: "context field " + strconv.Quote(c.Name) + " is not declared in the feature schema" + rules.Suggest(c.Name, names)}
		}
		f := &schema.Context[fi]
		if c.Value.Kind != f.Type.Kind() {
			return &RequestError{Code: "invalid_context_value", Field: "context." + c.Name,
				Message: "context." + c.Name + " must be a " + f.Type.String() + ", got a " + c.Value.Kind.String()}
		}
		if !f.Allows(c.Value) {
			return &RequestError{Code: "invalid_context_value", Field: "context." + c.Name,
				Message: "context." + c.Name + " must be one of " + strings.Join(f.Values, ", ") + ", got " + strconv.Quote(c.Value.Str) + rules.Suggest(c.Value.Str, f.Values)}
		}
	}
	for i := range schema.Context {
		f := &schema.Context[i]
		if !f.Required {
			continue
		}
		found := false
		for _, c := range req.Context {
			if c.Name == f.Name {
				found = true
				break
			}
		}
		if !found {
			return &RequestError{Code: "missing_field", Field: "context." + f.Name, Message: "context." + f.Name + " is required"}
		}
	}
	return nil
}

// run is the decision path proper: bind, evaluate, arbitrate, render. The
// request has been validated against rs. ruleErrors may be nil (fixtures).
func run(rs *rules.Ruleset, ruleErrors []*atomic.Uint64, rec *features.Record, req *Request, d *Decision, fx *effects) {
	s := d.scratch
	env := s.env
	schema := rs.Schema
	d.CustomerID = req.CustomerID
	d.Ruleset = rs.Version
	d.KnownCustomer = rec.Known()
	env.SetKnown(d.KnownCustomer)
	if rec != nil {
		s.setCustomer(schema, rec.Values)
	}
	channel := ""
	for _, c := range req.Context {
		fi := schema.ContextField(c.Name)
		v, cut := schema.Context[fi].Truncate(c.Value)
		if cut && s.costs != nil {
			s.costs.listsTruncated.Add(1)
		}
		env.SetContext(fi, v)
		if c.Name == "channel" {
			channel = c.Value.Str
		}
	}
	var ex *Explanation
	if req.Explain {
		ex = &Explanation{}
		d.Explain = ex
	}
	now := req.decisionTime()
	if rec != nil && len(schema.Counters) > 0 {
		// Counter features depend on the day, so they are computed per
		// decision rather than bound once per cached record.
		today := features.Day(now)
		for _, fi := range schema.Counters {
			env.SetCustomer(fi, features.Number(schema.Customer[fi].Counter.Value(rec.Counters, today)))
		}
	}
	s.rec, s.fx, s.now, s.channel = rec, fx, now, channel
	if fx != nil {
		s.learn = fx.learn
	}
	s.logged = nil
	if req.Log {
		s.logged = &d.Logged
	}
	s.channelBit = rs.ChannelBit(channel)
	s.schedClock = rules.Clock{Now: now}
	s.countersOK = d.DegradedReasons&DegradedFeatureStore == 0
	s.today = features.Day(now)
	s.consentGranted = false
	if c := rs.Policy.Consent; c != nil && rec != nil {
		s.consentGranted = c.Granted(rec.Consent, env, channel)
	}
	s.quiet = rs.Policy.Quiet != nil && rs.Policy.Quiet.QuietFor(env, channel, now)
	if req.when != nil {
		out, err := s.vm.Run(req.when, s.envValue)
		if ok, _ := out.(bool); err != nil || !ok {
			d.held = true
			for _, preq := range req.Placements {
				d.addPlacement(preq.ID)
			}
			return
		}
	}

	start := now
	if s.deadline > 0 && !req.Now.IsZero() {
		start = time.Now() // a fixed decision time says nothing of the clock
	}
	s.clock.start(start, s.deadline)
	s.assignExperiments(req.CustomerID)
	suppressDone := s.evaluateRules(req, ruleErrors, ex)
	if s.clock.passed {
		d.degrade(DegradedRuleDeadline)
		if s.costs != nil {
			s.costs.deadlineExceeded.Add(1)
		}
	}
	if !suppressDone {
		for _, preq := range req.Placements {
			d.addPlacement(preq.ID)
		}
		return
	}

	for pi, preq := range req.Placements {
		pl := &rs.Placements[rs.Placement(preq.ID)]
		count := preq.Count
		if count == 0 {
			count = pl.Count
		}
		res := d.addPlacement(preq.ID)
		held := s.holdout(rs.Placement(preq.ID))
		s.arm = s.placementArm(rs.Placement(preq.ID), held)
		if s.arm.x >= 0 {
			// Exposed: the customer entered and asked for a placement the
			// experiment covers, whatever it then shows.
			s.exposed[s.arm.x] = s.arm.arm
			res.Experiment, res.Variant = s.armOf()
		}
		if held >= 0 {
			// The holdout sees what the placement shows without any rule:
			// its fallback, below.
			s.cands = s.cands[:0]
		} else {
			s.arbitrate(pl, rs.Placement(preq.ID), pi, channel, ex, req)
		}
		s.band.state = nil
		if s.learn != nil && pl.Bandit != nil {
			s.rankBands(s.learn.bandits[rs.Placement(preq.ID)], count)
		}
		chosen := 0
		for i, c := range s.cands {
			if len(res.Items) == count {
				break
			}
			if by := s.reserveDecisionCaps(c.tp, c.rule, req.CustomerID); by != "" {
				s.cands[i].skip, s.cands[i].skipBy = ReasonCapped, by
				continue
			}
			if by := s.spendBudget(c.tp, req.CustomerID); by != "" {
				s.cands[i].skip, s.cands[i].skipBy = ReasonOverBudget, by
				continue
			}
			s.shownIn[c.tp] = pi
			s.touched = append(s.touched, c.tp)
			s.cands[i].chosen = true
			chosen++
			it := s.item(c.tp, rs.Rules[c.rule].ID, c.score, false)
			it.Experiment, it.Variant = s.armOf()
			s.tagItem(c.tp, rs.Placement(preq.ID))
			res.Items = append(res.Items, it)
		}
		if ex != nil {
			s.traceArbitration(ex, pl.ID)
		}
		if s.logged != nil {
			s.logArbitration(pi)
		}
		if len(res.Items) == 0 && pl.Fallback >= 0 {
			fb := pl.Fallback
			t := &rs.Touchpoints[fb]
			if s.suppressor(fb) < 0 && s.shownIn[fb] < 0 && t.FitsChannelBit(s.channelBit) {
				if reason, _ := s.policyBlocks(t, nil); reason == "" && s.reserveDecisionCaps(fb, -1, req.CustomerID) == "" &&
					s.spendBudget(fb, req.CustomerID) == "" {
					s.shownIn[fb] = pi
					s.touched = append(s.touched, fb)
					it := s.item(fb, "", 0, true)
					it.Experiment, it.Variant = s.armOf()
					s.tagItem(fb, -1)
					res.Items = append(res.Items, it)
					if s.logged != nil {
						*s.logged = append(*s.logged, LoggedCandidate{Placement: pi, Touchpoint: t.ID, Reason: ReasonFallback, Chosen: true,
							Propensity: s.armShare(), Experiment: it.Experiment, Variant: it.Variant})
					}
				}
			}
		}
	}
}

// Values of scratch.variantOf besides variant indexes.
const (
	notInExperiment = -1
	heldOut         = -2
)

// assignExperiments places the customer in every experiment that is
// active and whose condition the request meets, and sets what variant()
// reads. Assignment is a hash of the customer id: no store, no state.
func (s *scratch) assignExperiments(customerID string) {
	rs, env := s.rs, s.env
	for i := range rs.Experiments {
		x := &rs.Experiments[i]
		s.variantOf[i] = notInExperiment
		if x.Active != nil && !x.Active.ActiveOn(&s.schedClock) {
			continue
		}
		if x.WhenNative != nil {
			if !x.WhenNative(env) {
				continue
			}
		} else if x.When != nil {
			out, err := s.vm.Run(x.When, s.envValue)
			if ok, _ := out.(bool); err != nil || !ok {
				continue
			}
		}
		if s.forced != nil {
			if v := s.forced[i]; v >= 0 {
				s.variantOf[i] = v
				env.SetVariant(i, x.Variants[v].Name)
			} else {
				s.variantOf[i] = v
			}
			continue
		}
		a := x.Assign(customerID)
		switch {
		case !a.In:
		case a.Holdout:
			s.variantOf[i] = heldOut
		default:
			s.variantOf[i] = a.Variant
			env.SetVariant(i, x.Variants[a.Variant].Name)
		}
	}
}

// holdout returns the experiment whose holdout covers placement pi for
// this customer, or -1.
func (s *scratch) holdout(pi int) int {
	for i, v := range s.variantOf {
		if v == heldOut && s.rs.Experiments[i].HoldsOut(pi) {
			return i
		}
	}
	return -1
}

// experimentArm is an experiment arm: the experiment's index and the arm's,
// a variant index or, for the holdout, len(Variants).
type experimentArm struct{ x, arm int }

// noArm is the arm of a placement no experiment the customer entered covers.
var noArm = experimentArm{-1, -1}

// placementArm is the experiment arm placement pi's items are attributed
// to: the holdout the customer is in, if one covers pi, else the variant
// of the first experiment covering pi that the customer entered. Every
// item shown there counts for that arm, whichever rule offered it, so
// that each arm counts the same customers and the same placements.
func (s *scratch) placementArm(pi, held int) experimentArm {
	if held >= 0 {
		return experimentArm{held, len(s.rs.Experiments[held].Variants)}
	}
	for x, v := range s.variantOf {
		if v >= 0 && s.rs.Experiments[x].HoldsOut(pi) {
			return experimentArm{x, v}
		}
	}
	return noArm
}

// armOf names the arm of the placement being decided: its experiment and
// variant (or VariantHoldout), or empty strings.
func (s *scratch) armOf() (experiment, variant string) {
	if s.arm.x < 0 {
		return "", ""
	}
	x := &s.rs.Experiments[s.arm.x]
	if s.arm.arm >= len(x.Variants) {
		return x.ID, VariantHoldout
	}
	return x.ID, x.Variants[s.arm.arm].Name
}

// armShare is the probability that a customer entering the experiment
// gets the arm of the placement being decided (1 without one).
func (s *scratch) armShare() float64 {
	if s.arm.x < 0 {
		return 1
	}
	x := &s.rs.Experiments[s.arm.x]
	if s.arm.arm >= len(x.Variants) {
		return x.Share(-1)
	}
	return x.Share(s.arm.arm)
}

// evaluateRules evaluates the rules that matter for req until the decide
// deadline (s.clock) passes. Suppress rules run before offer rules, so that
// when the deadline cuts evaluation short it is known whether every
// suppress rule ran; suppressDone is false when one did not, and then
// nothing may be offered: a skipped suppress rule must not let through what
// it would have held back.
func (s *scratch) evaluateRules(req *Request, ruleErrors []*atomic.Uint64, ex *Explanation) (suppressDone bool) {
	rs, env := s.rs, s.env
	suppressDone = true
	s.wanted = 0
	for _, p := range req.Placements {
		s.wanted |= rules.PlacementBit(rs.Placement(p.ID))
	}
	if ex != nil {
		// Explanations evaluate every rule so they can say what each did.
		ex.Rules = make([]RuleTrace, len(rs.Rules))
		for pass := 0; pass < 2; pass++ {
			suppress := pass == 0
			s.clock.readSoon()
			for i := range rs.Rules {
				r := &rs.Rules[i]
				if r.IsSuppress() != suppress {
					continue
				}
				if s.clock.expired() {
					// A rule whose guards fail is false without evaluating
					// it, as the path without explain knows too.
					outcome := OutcomeConditionFalse
					if guardsPass(r.Guards, env) {
						outcome = OutcomeSkippedDeadline
						suppressDone = suppressDone && !suppress
					}
					ex.Rules[i] = RuleTrace{Rule: r.ID, Action: ruleAction(r), Outcome: outcome}
					continue
				}
				s.evaluate(i, ruleErrors, ex)
				if r.Loops > 0 || len(r.Models) > 0 {
					s.clock.readSoon()
				}
			}
		}
	} else {
		// Otherwise only the rules the index says could matter; the others
		// are certain to be false or to offer nothing that fits.
		wanted := s.wanted
		s.placementIdx = s.placementIdx[:0]
		for _, p := range req.Placements {
			s.placementIdx = append(s.placementIdx, rs.Placement(p.ID))
		}
		s.epoch++
		if s.epoch == 0 {
			clear(s.seen)
			s.epoch = 1
		}
		var suppress int
		s.candidateRules, suppress = rs.CandidateRules(s.placementIdx, env, s.seen, s.epoch, s.candidateRules[:0])
		for k, ri := range s.candidateRules {
			if k == suppress {
				s.clock.readSoon()
			}
			r := &rs.Rules[ri]
			if !r.MayOffer(wanted, s.channelBit) || !guardsPass(r.Guards, env) {
				continue
			}
			if s.clock.expired() {
				suppressDone = k >= suppress
				break
			}
			s.evaluate(int(ri), ruleErrors, nil)
			if r.Loops > 0 || len(r.Models) > 0 {
				s.clock.readSoon()
			}
		}
	}
	return suppressDone
}

// effects are the side effects a served decision has on shared state:
// budgets consumed and decisions counted. Fixtures run without them.
type effects struct {
	ctx     context.Context
	budgets features.Budgets
	writer  features.Writer
	learn   *learning // nil: no learning loop (fixtures, replays)
	// preview: decide as if, writing nothing (budgets are assumed left
	// and decision caps are not reserved, as in fixtures).
	preview bool
}

// spendBudget consumes one unit of a budgeted touchpoint's budget and
// returns "" when it may be shown, or why not. Without a budget store, or
// when the store fails, budgeted touchpoints are not shown: a budget must
// never be overspent.
func (s *scratch) spendBudget(tp int, customerID string) string {
	t := &s.rs.Touchpoints[tp]
	if t.Budget == nil {
		return ""
	}
	if s.fx == nil || s.fx.preview {
		return "" // fixtures and previews assume budget is left
	}
	if s.fx.budgets == nil {
		return "no budget store"
	}
	ok, err := s.fx.budgets.Consume(s.fx.ctx, t.ID, s.today, t.Budget.Total, t.Budget.PerDay)
	switch {
	case err != nil:
		return "budget unavailable"
	case !ok:
		return "budget spent"
	}
	return ""
}

// reserveDecisionCaps applies the caps that count decisions to issuing
// touchpoint tp offered by rule (-1 for a fallback): it reserves a decision
// under each of them at once in the customer store, so concurrent decisions
// on several nodes cannot pass a cap, and returns "" when tp may be issued
// or the cap that stopped it. Unknown customers have no counters to cap.
func (s *scratch) reserveDecisionCaps(tp, rule int, customerID string) string {
	if !s.rs.CountsDecisions || !s.rec.Known() || s.fx == nil || s.fx.preview {
		return "" // fixtures and previews check decision caps against the counters instead
	}
	limits := s.limits[:0]
	add := func(c *rules.Cap) {
		if c != nil && c.Event == features.EventDecision {
			limits = append(limits, features.DecisionLimit{Subject: c.Subject, Days: c.Days, Count: c.Count})
		}
	}
	t := &s.rs.Touchpoints[tp]
	add(t.Cap)
	if rule >= 0 {
		add(s.rs.Rules[rule].Cap)
	}
	for i := range s.rs.Policy.Caps {
		if c := &s.rs.Policy.Caps[i]; (c.Kind == "" || c.Kind == t.Kind) && (c.Channel == "" || c.Channel == s.channel) {
			add(c)
		}
	}
	s.limits = limits
	if len(limits) == 0 {
		return ""
	}
	if s.fx.writer == nil {
		return "no customer store to count decisions"
	}
	ok, err := s.fx.writer.ReserveDecisions(s.fx.ctx, customerID, s.today, limits)
	switch {
	case err != nil:
		return "counters unavailable"
	case !ok:
		var caps []string
		for _, l := range limits {
			caps = append(caps, fmt.Sprintf("%d decisions per %dd of %s", l.Count, l.Days, l.Subject))
		}
		return strings.Join(caps, " or ")
	}
	return ""
}

// policyBlocks applies the contact policy to a touchpoint offered by rule r
// (nil for a fallback): consent, quiet hours and caps.
func (s *scratch) policyBlocks(t *rules.Touchpoint, r *rules.Rule) (reason, by string) {
	p := &s.rs.Policy
	if p.Consent != nil && p.Consent.Requires(t.Kind, s.channel) && !s.consentGranted {
		return ReasonNoConsent, "no consent for " + s.channel
	}
	if s.quiet {
		return ReasonQuietHours, "quiet hours on " + s.channel
	}
	if c := t.Cap; c != nil {
		if by := s.capReached(c); by != "" {
			return ReasonCapped, by
		}
	}
	if r != nil && r.Cap != nil {
		if by := s.capReached(r.Cap); by != "" {
			return ReasonCapped, by
		}
	}
	for i := range p.Caps {
		c := &p.Caps[i]
		if c.Kind != "" && c.Kind != t.Kind || c.Channel != "" && c.Channel != s.channel {
			continue
		}
		if by := s.capReached(c); by != "" {
			return ReasonCapped, by
		}
	}
	return "", ""
}

func (s *scratch) capReached(c *rules.Cap) string {
	if !s.countersOK {
		return "counters unavailable"
	}
	if s.rec != nil && c.Reached(s.rec.Counters, s.today) {
		return c.String()
	}
	return ""
}

// setCustomer sets the customer's features in the environment. Values of
// the wrong type are left out, so the field keeps its default, and lists
// longer than their field's max_items are cut (and counted).
func (s *scratch) setCustomer(schema *rules.Schema, values features.Values) {
	l := values.Layout()
	if l == nil {
		return
	}
	for i, fi := range l.Derived(schema, bindLayout).([]int32) {
		if fi < 0 {
			continue
		}
		v := values.At(i)
		if v.Kind == features.KindList {
			var cut bool
			if v, cut = schema.Customer[fi].Truncate(v); cut && s.costs != nil {
				s.costs.listsTruncated.Add(1)
			}
		}
		s.env.SetCustomer(int(fi), v)
	}
}

// bindLayout matches a layout's features to the schema that is key (for
// Layout.Derived), once per layout and schema: the schema field each
// feature sets, or -1 for a feature the schema does not have, has with
// another type, or computes from counters.
func bindLayout(key any, l *features.Layout) any {
	schema := key.(*rules.Schema)
	fields := make([]int32, l.Len())
	for i := range fields {
		fields[i] = -1
		fi := schema.CustomerField(l.Name(i))
		if fi < 0 {
			continue
		}
		if f := &schema.Customer[fi]; l.Kind(i) == f.Type.Kind() && f.Counter == nil {
			fields[i] = int32(fi)
		}
	}
	return fields
}

func guardsPass(guards []rules.Guard, env *rules.Env) bool {
	for i := range guards {
		if !guards[i].Pass(env) {
			return false
		}
	}
	return true
}

// evaluate runs rule i: its schedule, its condition and, for a matched
// offer rule, its score. A run-time failure skips the rule and is counted.
func (s *scratch) evaluate(i int, ruleErrors []*atomic.Uint64, ex *Explanation) {
	r := &s.rs.Rules[i]
	trace := func(outcome, errText string, score float64) {
		if ex != nil {
			ex.Rules[i] = RuleTrace{Rule: r.ID, Action: ruleAction(r), Outcome: outcome, Error: errText, Score: score, Models: s.ruleModels(r)}
		}
	}
	if r.Active != nil && !r.Active.ActiveOn(&s.schedClock) {
		trace(OutcomeInactiveSchedule, "", 0)
		return
	}
	if r.PerCandidate && !r.IsSuppress() {
		s.evaluatePerCandidate(i, ruleErrors, ex)
		return
	}
	matched, errText := s.when(r)
	if errText != "" {
		countRuleError(ruleErrors, i)
		trace(OutcomeExpressionError, errText, 0)
		return
	}
	if !matched {
		trace(OutcomeConditionFalse, "", 0)
		if ex != nil {
			ex.Rules[i].TermsOp, ex.Rules[i].FailedTerms = s.termValues(i)
		}
		return
	}
	if r.IsSuppress() {
		if r.SuppressAll && s.suppressAll < 0 {
			s.suppressAll = i
		}
		for k := range s.suppressKind {
			if r.SuppressKinds&(1<<uint(k)) != 0 && s.suppressKind[k] < 0 {
				s.suppressKind[k] = i
			}
		}
		for _, tp := range r.SuppressIDs {
			if s.suppressedBy[tp] < 0 {
				s.suppressedBy[tp] = i
				s.touched = append(s.touched, tp)
			}
		}
		trace(OutcomeMatched, "", 0)
		return
	}
	score, errText := s.ruleScore(r)
	if errText != "" {
		countRuleError(ruleErrors, i)
		trace(OutcomeExpressionError, errText, 0)
		return
	}
	s.matched = append(s.matched, match{rule: i, tp: -1, score: score})
	trace(OutcomeMatched, "", score)
}

// evaluatePerCandidate evaluates a rule that reads touchpoint attributes
// once for each touchpoint it offers that could fill the request.
func (s *scratch) evaluatePerCandidate(i int, ruleErrors []*atomic.Uint64, ex *Explanation) {
	r := &s.rs.Rules[i]
	outcome, errText, best := OutcomeConditionFalse, "", 0.0
	for _, tp := range r.Offer {
		t := &s.rs.Touchpoints[tp]
		if !t.FitsChannelBit(s.channelBit) || !t.FitsAnyPlacement(s.wanted) {
			continue
		}
		s.env.SetTouchpoint(tp, t)
		matched, e := s.when(r)
		if e == "" && matched {
			var score float64
			if score, e = s.ruleScore(r); e == "" {
				s.matched = append(s.matched, match{rule: i, tp: tp, score: score})
				if outcome != OutcomeMatched || score > best {
					best = score
				}
				outcome = OutcomeMatched
			}
		}
		if e != "" && errText == "" {
			errText = t.ID + ": " + e
		}
	}
	if errText != "" {
		countRuleError(ruleErrors, i)
		if outcome != OutcomeMatched {
			outcome = OutcomeExpressionError
		}
	}
	if ex != nil {
		ex.Rules[i] = RuleTrace{Rule: r.ID, Action: ruleAction(r), Outcome: outcome, Error: errText, Score: best}
		if outcome == OutcomeConditionFalse {
			// The terms' values for the first touchpoint the rule could
			// have shown here (terms may read the touchpoint).
			for _, tp := range r.Offer {
				t := &s.rs.Touchpoints[tp]
				if t.FitsChannelBit(s.channelBit) && t.FitsAnyPlacement(s.wanted) {
					s.env.SetTouchpoint(tp, t)
					ex.Rules[i].TermsTouchpoint = t.ID
					ex.Rules[i].TermsOp, ex.Rules[i].FailedTerms = s.termValues(i)
					break
				}
			}
		}
	}
}

// ruleModels explains the models a rule's condition and score read once
// per request; those read per candidate are explained on the candidates.
func (s *scratch) ruleModels(r *rules.Rule) []rules.ModelExplanation {
	var out []rules.ModelExplanation
	for _, m := range r.Models {
		if !s.rs.Models[m].PerCandidate {
			out = append(out, s.env.ExplainModel(m))
		}
	}
	return out
}

// when evaluates a rule's condition; errText is set when it failed.
func (s *scratch) when(r *rules.Rule) (matched bool, errText string) {
	if r.WhenNative != nil {
		return r.WhenNative(s.env), ""
	}
	if len(r.Models) > 0 {
		s.env.PrepareModels(r.Models)
	}
	out, err := s.vm.Run(r.When, s.envValue)
	if err != nil {
		return false, "when: " + errMessage(err)
	}
	matched, _ = out.(bool)
	return matched, ""
}

// ruleScore evaluates a matched offer rule's score (1 without one).
func (s *scratch) ruleScore(r *rules.Rule) (float64, string) {
	if r.ScoreNative != nil {
		return r.ScoreNative(s.env), ""
	}
	if r.Score == nil {
		return 1, ""
	}
	if len(r.Models) > 0 {
		s.env.PrepareModels(r.Models)
	}
	out, err := s.vm.Run(r.Score, s.envValue)
	score := 0.0
	if err == nil {
		score, err = toFloat(out)
	}
	if err != nil {
		return 0, "score: " + errMessage(err)
	}
	return score, ""
}

// ruleAction is "offer" or "suppress", as explanations name it.
func ruleAction(r *rules.Rule) string {
	if r.IsSuppress() {
		return "suppress"
	}
	return "offer"
}

func (d *Decision) addPlacement(id string) *PlacementResult {
	if len(d.Placements) < cap(d.Placements) {
		d.Placements = d.Placements[:len(d.Placements)+1]
	} else {
		d.Placements = append(d.Placements, PlacementResult{})
	}
	res := &d.Placements[len(d.Placements)-1]
	res.ID = id
	res.Items = res.Items[:0]
	res.Experiment, res.Variant = "", ""
	return res
}

func (s *scratch) item(tp int, rule string, score float64, fallback bool) Item {
	t := &s.rs.Touchpoints[tp]
	start := len(s.content)
	s.content = t.Content.AppendJSON(s.content, s.env)
	return Item{Touchpoint: t.ID, Kind: t.Kind, Rule: rule, Fallback: fallback, Score: score,
		Content: s.content[start:len(s.content):len(s.content)]}
}

// arbitrate fills s.cands with the eligible candidates for one placement,
// best first.
func (s *scratch) arbitrate(pl *rules.Placement, plIndex, pi int, channel string, ex *Explanation, req *Request) {
	rs := s.rs
	s.cands = s.cands[:0]
	s.traces = s.traces[:0]
	for _, m := range s.matched {
		r := &rs.Rules[m.rule]
		offers := r.Offer
		if m.tp >= 0 {
			offers = s.one(m.tp)
		}
		for _, tp := range offers {
			t := &rs.Touchpoints[tp]
			reason, by := "", ""
			switch {
			case !t.Fits(plIndex, pl.ID):
				reason = ReasonPlacementMismatch
			case !t.FitsChannelBit(s.channelBit):
				reason = ReasonChannelMismatch
			case s.suppressor(tp) >= 0:
				reason, by = ReasonSuppressed, rs.Rules[s.suppressor(tp)].ID
			case s.shownIn[tp] >= 0 && s.shownIn[tp] != pi:
				reason, by = ReasonAlreadyShown, req.Placements[s.shownIn[tp]].ID
			default:
				reason, by = s.policyBlocks(t, r)
			}
			if reason != "" {
				if ex != nil {
					ct := CandidateTrace{Placement: pl.ID, Touchpoint: t.ID, Rule: r.ID, Priority: r.Priority, Reason: reason, By: by}
					if reason != ReasonPlacementMismatch && reason != ReasonChannelMismatch {
						ct.Score, _, _ = s.rank(pl, r, m.score, tp, t, &ct)
					}
					ex.Candidates = append(ex.Candidates, ct)
				}
				if s.logged != nil && reason != ReasonPlacementMismatch && reason != ReasonChannelMismatch {
					*s.logged = append(*s.logged, LoggedCandidate{Placement: pi, Touchpoint: t.ID, Rule: r.ID, Reason: reason})
				}
				continue
			}
			c := candidate{tp: tp, rule: m.rule, priority: r.Priority}
			if ex != nil {
				c.trace = len(s.traces)
				s.traces = append(s.traces, CandidateTrace{})
				c.score, c.model, c.modelOut = s.rank(pl, r, m.score, tp, t, &s.traces[c.trace])
			} else {
				c.score, c.model, c.modelOut = s.rank(pl, r, m.score, tp, t, nil)
			}
			s.insert(c, ex, pl.ID)
		}
	}
	for _, c := range s.cands {
		s.candAt[c.tp] = -1
	}
	slices.SortFunc(s.cands, s.compare)
}

// one returns a one-element list holding tp, without allocating.
func (s *scratch) one(tp int) []int {
	s.oneTP[0] = tp
	return s.oneTP[:]
}

// rank scores candidate touchpoint tp offered by rule r (whose score was
// ruleScore) for placement pl: the placement's arbitration formula, or
// propensity × value × lever × rule score. With ct it also records the
// parts and the models that took part.
func (s *scratch) rank(pl *rules.Placement, r *rules.Rule, ruleScore float64, tp int, t *rules.Touchpoint, ct *CandidateTrace) (score float64, model int, modelOut float64) {
	model = t.Propensity
	if model < 0 {
		model = r.Propensity
	}
	if model < 0 && pl.Arbitration == nil && t.ValueExpr == nil && ct == nil {
		return ruleScore * t.Value * r.Lever * t.Lever, -1, 0 // nothing reads the candidate
	}
	env := s.env
	env.SetTouchpoint(tp, t)
	propensity := 1.0
	if model >= 0 {
		propensity = env.Model(model)
		modelOut = propensity
	} else if pl.Arbitration != nil {
		// A formula over propensity reads the rule's score when no model
		// gives one, so that rules without models still rank.
		propensity = ruleScore
	}
	value := t.Value
	if t.ValueNative != nil {
		value = t.ValueNative(env)
	} else if t.ValueExpr != nil {
		env.PrepareModels(t.ValueModels)
		value = s.runNumber(t.ValueExpr)
	}
	lever := r.Lever * t.Lever
	switch {
	case pl.Arbitration == nil:
		score = propensity * value * lever * ruleScore
	case pl.ArbitrationNative != nil:
		env.SetArbitration(propensity, value, lever, ruleScore)
		score = pl.ArbitrationNative(env)
	default:
		env.SetArbitration(propensity, value, lever, ruleScore)
		env.PrepareModels(pl.ArbitrationModels)
		score = s.runNumber(pl.Arbitration)
	}
	if ct != nil {
		ct.RuleScore, ct.Propensity, ct.Value, ct.Lever = ruleScore, propensity, value, lever
		ct.Models = s.explainModels(pl, r, t, model)
	}
	return score, model, modelOut
}

// runNumber runs a number expression on the VM; a failure counts as 0,
// which ranks the candidate last among its priority.
func (s *scratch) runNumber(p *vm.Program) float64 {
	out, err := s.vm.Run(p, s.envValue)
	if err != nil {
		return 0
	}
	f, err := toFloat(out)
	if err != nil {
		return 0
	}
	return f
}

// explainModels lists every model that took part in ranking a candidate:
// those the rule reads, its propensity model, and those its value and the
// placement's formula read.
func (s *scratch) explainModels(pl *rules.Placement, r *rules.Rule, t *rules.Touchpoint, propensity int) []rules.ModelExplanation {
	var ids []int
	add := func(list ...int) {
		for _, m := range list {
			if m >= 0 && !slices.Contains(ids, m) {
				ids = append(ids, m)
			}
		}
	}
	add(propensity)
	add(r.Models...)
	add(t.ValueModels...)
	add(pl.ArbitrationModels...)
	if len(ids) == 0 {
		return nil
	}
	out := make([]rules.ModelExplanation, len(ids))
	for i, m := range ids {
		out[i] = s.env.ExplainModel(m)
	}
	return out
}

// insert adds c, keeping one entry per touchpoint (its best); arbitrate
// sorts once all are in.
func (s *scratch) insert(c candidate, ex *Explanation, placement string) {
	if at := s.candAt[c.tp]; at >= 0 {
		old := s.cands[at]
		if !s.better(c, old) {
			s.traceDuplicate(ex, placement, c, old)
			return
		}
		s.traceDuplicate(ex, placement, old, c)
		s.cands[at] = c
		return
	}
	s.candAt[c.tp] = int32(len(s.cands))
	s.cands = append(s.cands, c)
}

// compare orders candidates best first.
func (s *scratch) compare(a, b candidate) int {
	switch {
	case s.better(a, b):
		return -1
	case s.better(b, a):
		return 1
	}
	return 0
}

// traceDuplicate records that one rule's offer of a touchpoint lost to
// another rule's offer of the same touchpoint.
func (s *scratch) traceDuplicate(ex *Explanation, placement string, loser, winner candidate) {
	if ex == nil {
		return
	}
	rs := s.rs
	t := s.traces[loser.trace]
	t.Placement, t.Touchpoint, t.Rule, t.Priority, t.Score = placement, rs.Touchpoints[loser.tp].ID, rs.Rules[loser.rule].ID, loser.priority, loser.score
	t.Reason, t.By = ReasonLostArbitration, rs.Touchpoints[winner.tp].ID+" via rule "+rs.Rules[winner.rule].ID
	ex.Candidates = append(ex.Candidates, t)
}

// better ranks by priority, then weighted score, then touchpoint id.
func (s *scratch) better(a, b candidate) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if a.score != b.score {
		return a.score > b.score
	}
	return s.rs.Touchpoints[a.tp].ID < s.rs.Touchpoints[b.tp].ID
}

func (s *scratch) traceArbitration(ex *Explanation, placement string) {
	rs := s.rs
	lastChosen := ""
	for _, c := range s.cands {
		t := s.traces[c.trace]
		t.Placement, t.Touchpoint, t.Rule, t.Priority, t.Score = placement, rs.Touchpoints[c.tp].ID, rs.Rules[c.rule].ID, c.priority, c.score
		switch {
		case c.chosen:
			t.Chosen, t.Reason = true, ReasonChosen
			lastChosen = t.Touchpoint
		case c.skip != "":
			t.Reason, t.By = c.skip, c.skipBy
		default:
			t.Reason, t.By = ReasonLostArbitration, lastChosen
		}
		ex.Candidates = append(ex.Candidates, t)
	}
}

// logArbitration records the ranked candidates of request placement pi
// for the decision log, best first.
func (s *scratch) logArbitration(pi int) {
	rs := s.rs
	for i, c := range s.cands {
		l := LoggedCandidate{Placement: pi, Touchpoint: rs.Touchpoints[c.tp].ID, Rule: rs.Rules[c.rule].ID, Score: c.score, Reason: ReasonLostArbitration}
		switch {
		case c.chosen:
			l.Reason, l.Chosen, l.Propensity = ReasonChosen, true, s.propensityAt(i)*s.armShare()
			l.Experiment, l.Variant = s.armOf()
		case c.skip != "":
			l.Reason = c.skip
		}
		if c.model >= 0 {
			l.Model, l.ModelOutput = rs.Models[c.model].ID, c.modelOut
		}
		*s.logged = append(*s.logged, l)
	}
}

// errMessage drops expr's multi-line source snippet: the rule and its file
// position are already known to the reader of an explanation.
func errMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

func countRuleError(counters []*atomic.Uint64, i int) {
	if counters != nil {
		counters[i].Add(1)
	}
}

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case float32:
		return float64(n), nil
	}
	return 0, &scoreTypeError{v}
}

type scoreTypeError struct{ v any }

func (e *scoreTypeError) Error() string { return "score is not a number" }

// termValues evaluates the terms of rule i's condition, for explain.
func (s *scratch) termValues(i int) (string, []TermValue) {
	op, terms := s.rs.WhenTerms(i)
	return op, s.evalTerms(terms)
}

func (s *scratch) evalTerms(terms []rules.Term) []TermValue {
	if len(terms) == 0 {
		return nil
	}
	out := make([]TermValue, len(terms))
	for j := range terms {
		t := &terms[j]
		tv := TermValue{Term: t.Source, Segment: t.Segment, Error: t.Problem}
		if t.Program != nil {
			v, err := s.vm.Run(t.Program, s.envValue)
			b, ok := v.(bool)
			switch {
			case err != nil:
				tv.Error = errMessage(err)
			case !ok:
				tv.Error = fmt.Sprintf("not a bool: %v", v)
			default:
				tv.Value = b
			}
		}
		tv.Terms = s.evalTerms(t.Terms)
		out[j] = tv
	}
	return out
}
