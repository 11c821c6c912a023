package engine

import (
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Request is one decide call, already decoded from the wire. Strings may point
// into the caller's buffers; the engine does not keep them after Decide returns.
type Request struct {
	CustomerID string
	Placements []PlacementRequest
	Context    []ContextField
	Explain    bool
	// Log asks for Decision.Logged: what the decision log records.
	Log bool
	// Now is the decision time; zero means Received, or time.Now() when
	// that is zero too. Fixtures and previews set it.
	Now time.Time
	// Received is when the request arrived, read from the clock by whoever
	// received it (the server reads it for every request anyway), so that
	// a decision does not read the clock again for its time and id.
	Received time.Time
	// Preview decides without side effects, for the playground and time
	// travel: no budget is spent, no decision is reserved under a cap, no
	// exposure is counted, and bandit placements rank by score.
	Preview bool
	// WhatIf changes the customer for a preview; Decide ignores it unless
	// Preview is set, so it can never reach a real decision.
	WhatIf *WhatIf

	// when, set by Fire, is a trigger's condition: when it does not hold,
	// the placements are decided empty and the decision is held.
	when *vm.Program
}

// decisionTime is the time the rules see: Now, else Received, else the
// clock.
func (r *Request) decisionTime() time.Time {
	switch {
	case !r.Now.IsZero():
		return r.Now
	case !r.Received.IsZero():
		return r.Received
	}
	return time.Now()
}

// arrival is when the request arrived, for its decision id: Received, or
// the clock (never Now, which may be a preview's time elsewhere).
func (r *Request) arrival() time.Time {
	if r.Received.IsZero() {
		return time.Now()
	}
	return r.Received
}

// WhatIf is a customer other than the stored one, for previews: the
// playground's "what if she had no consent for email?".
type WhatIf struct {
	// Features, when not nil, replace the stored features entirely
	// (checked against the schema by the caller).
	Features map[string]features.Value
	// Consent overrides the stored answers channel by channel: the
	// recorded consent, and the channel's consent feature (the contact
	// policy's consent.features) that rules read, as if the customer had
	// answered so everywhere.
	Consent map[string]bool
	// NoHistory decides as if the customer had no event counters: no
	// contacts under a cap, no impressions, no purchases counted.
	NoHistory bool
}

// apply returns a new record: stored (nil for a customer the store does
// not know) changed as w says. The stored record is shared and is never
// written to.
func (w *WhatIf) apply(rs *rules.Ruleset, id string, stored *features.Record) *features.Record {
	rec := &features.Record{ID: id}
	if stored != nil {
		rec.Values, rec.Counters = stored.Values, stored.Counters
		if len(stored.Consent) > 0 {
			rec.Consent = make(map[string]features.Consent, len(stored.Consent)+len(w.Consent))
			for ch, c := range stored.Consent {
				rec.Consent[ch] = c
			}
		}
	}
	if w.Features != nil {
		rec.Values = features.NewValues(w.Features)
	}
	if w.NoHistory {
		rec.Counters = nil
	}
	if len(w.Consent) > 0 && rec.Consent == nil {
		rec.Consent = make(map[string]features.Consent, len(w.Consent))
	}
	for ch, granted := range w.Consent {
		rec.Consent[ch] = features.Consent{Granted: granted}
	}
	if c := rs.Policy.Consent; c != nil && len(w.Consent) > 0 && !rec.Values.IsNil() {
		values := rec.Values.Map()
		changed := false
		for ch, granted := range w.Consent {
			if fi, ok := c.Features[ch]; ok {
				values[rs.Schema.Customer[fi].Name] = features.Bool(granted)
				changed = true
			}
		}
		if changed {
			rec.Values = features.NewValues(values)
		}
	}
	return rec
}

// PlacementRequest asks for up to Count touchpoints in one placement; Count 0
// means the placement's default count.
type PlacementRequest struct {
	ID    string
	Count int
}

// ContextField is one request context value, typed against the schema's
// context section by Decide.
type ContextField struct {
	Name  string
	Value features.Value
}

// Decision is the answer to one Request. It is reusable: Reset it (or let
// Decide do so) and its slices keep their capacity across requests.
type Decision struct {
	ID            string
	CustomerID    string
	Ruleset       string
	KnownCustomer bool
	// Degraded is set when the decision was made with less than usual;
	// DegradedReasons says what was missing.
	Degraded        bool
	DegradedReasons DegradedReason
	Placements      []PlacementResult
	// Explain is filled only when the request asked for it.
	Explain *Explanation
	// Logged lists, when the request asked for it (Request.Log), every
	// candidate each placement considered, in placement order: what a
	// decision log records. It is reused across decisions, so it allocates
	// nothing once warm, and is valid until the next Decide.
	Logged []LoggedCandidate

	scratch *scratch
	// held is set when a trigger's condition did not hold (Request.when).
	held bool
}

// LoggedCandidate is one candidate of one placement, as the decision log
// records it. Candidates that do not fit the placement or the channel are
// not listed; the others are, eligible or not.
type LoggedCandidate struct {
	Placement  int // index in Request.Placements
	Touchpoint string
	Rule       string // empty for a fallback
	// Score is what arbitration ranked it by (0 for candidates held back
	// before ranking).
	Score float64
	// Reason is chosen, fallback, lost_arbitration, or why it was held
	// back (suppressed, already_shown, capped, over_budget, quiet_hours,
	// no_consent).
	Reason string
	Chosen bool
	// Propensity is the probability that this policy chooses the
	// candidate: 1 for a chosen one and 0 for the others, as long as
	// arbitration is deterministic.
	Propensity float64
	// Model and ModelOutput are the propensity model that ranked it, if
	// any, and its output.
	Model       string
	ModelOutput float64
	// Experiment and Variant attribute a chosen candidate to an A/B test,
	// as Item does.
	Experiment, Variant string
}

// DegradedReason is a set of reasons a decision was degraded.
type DegradedReason uint8

// Reasons a decision was degraded.
const (
	// DegradedFeatureStore: the feature store failed, so the decision was
	// made on context alone and capped touchpoints were held back.
	DegradedFeatureStore DegradedReason = 1 << iota
	// DegradedRuleDeadline: the decide deadline passed while rules were
	// evaluated; the remaining rules were skipped. When a suppress rule
	// was among them, nothing at all was offered.
	DegradedRuleDeadline
)

// String is the reason's name in answers (feature_store, rule_deadline)
// for a single reason, "" for a set of several.
func (r DegradedReason) String() string {
	switch r {
	case DegradedFeatureStore:
		return "feature_store"
	case DegradedRuleDeadline:
		return "rule_deadline"
	}
	return ""
}

// Next returns the lowest reason in the set above after (pass 0 to start)
// and true, or false when there is none; it lets encoders walk a set
// without allocating: for x, ok := r.Next(0); ok; x, ok = r.Next(x) {…}.
func (r DegradedReason) Next(after DegradedReason) (DegradedReason, bool) {
	x := DegradedReason(1)
	if after != 0 {
		x = after << 1
	}
	for ; x != 0; x <<= 1 {
		if r&x != 0 {
			return x, true
		}
	}
	return 0, false
}

// degrade marks the decision degraded for reason r.
func (d *Decision) degrade(r DegradedReason) {
	d.Degraded = true
	d.DegradedReasons |= r
}

// PlacementResult holds the touchpoints chosen for one requested placement,
// in the order the request listed them.
type PlacementResult struct {
	ID    string
	Items []Item
	// Experiment and Variant name the experiment arm the placement counted
	// for: the customer entered an experiment covering it (an exposure,
	// whatever was shown). Empty otherwise.
	Experiment, Variant string
}

// Item is one chosen touchpoint.
type Item struct {
	Touchpoint string
	Kind       string
	// Rule is the rule that offered it; empty for a placement fallback.
	Rule     string
	Fallback bool
	// Score is what arbitration ranked it by: by default the rule's score
	// × propensity × the touchpoint's value × lever.
	Score float64
	// Content is the rendered content as a JSON object (never nil; "{}" when empty).
	Content []byte
	// Experiment and Variant attribute the item to an A/B test: the
	// experiment its rule reads with variant() and the customer's variant,
	// or VariantHoldout for a fallback shown to an experiment's holdout.
	Experiment, Variant string
}

// VariantHoldout is the variant of items shown to an experiment's holdout.
const VariantHoldout = "holdout"

// Explanation says, per rule and per candidate, what happened and why.
type Explanation struct {
	Rules      []RuleTrace
	Candidates []CandidateTrace
}

// Rule outcomes in a RuleTrace.
const (
	OutcomeMatched          = "matched"
	OutcomeConditionFalse   = "condition_false"
	OutcomeInactiveSchedule = "inactive_schedule"
	OutcomeExpressionError  = "expression_error"
	// OutcomeSkippedDeadline: the decide deadline passed before the rule
	// was evaluated.
	OutcomeSkippedDeadline = "skipped_deadline"
)

// RuleTrace is what one rule did for this request.
type RuleTrace struct {
	Rule    string
	Action  string // "offer" or "suppress"
	Outcome string
	Error   string  // for expression_error
	Score   float64 // the rule's score (before touchpoint value) when matched
	// Models are the models the condition and score read once per
	// request, with what they read and what moved them.
	Models []rules.ModelExplanation
	// FailedTerms, for a condition_false rule, are the operands of its
	// condition's top-level && (TermsOp "and") or || ("or") with their
	// values for this request: which part failed. For a rule evaluated
	// per candidate, the values are for TermsTouchpoint, the first it
	// could have shown.
	TermsOp         string
	FailedTerms     []TermValue
	TermsTouchpoint string
}

// TermValue is one term of a condition and its value.
type TermValue struct {
	Term  string
	Value bool
	// Error says why the term has no value (it failed, or cannot be
	// evaluated alone).
	Error string
	// Segment names the segment the term is; Terms are its own terms.
	Segment string
	Terms   []TermValue
}

// Candidate reasons in a CandidateTrace.
const (
	ReasonChosen            = "chosen"
	ReasonChannelMismatch   = "channel_mismatch"
	ReasonPlacementMismatch = "placement_mismatch"
	ReasonSuppressed        = "suppressed"
	ReasonLostArbitration   = "lost_arbitration"
	ReasonAlreadyShown      = "already_shown"
	ReasonCapped            = "capped"
	ReasonOverBudget        = "over_budget"
	ReasonQuietHours        = "quiet_hours"
	ReasonNoConsent         = "no_consent"
	// ReasonFallback marks a placement's fallback in Decision.Logged.
	ReasonFallback = "fallback"
)

// CandidateTrace is one touchpoint offered by a matched rule, considered for one placement.
type CandidateTrace struct {
	Placement  string
	Touchpoint string
	Rule       string
	Priority   int
	Score      float64
	Chosen     bool
	Reason     string
	// By names the suppressing rule (suppressed), the winning touchpoint
	// (lost_arbitration) or the placement that already shows it (already_shown).
	By string
	// What Score was made of: the rule's score, the propensity (a model's
	// output, or 1 when none is named), the touchpoint's value and the
	// levers; Score is their product unless the placement has its own
	// arbitration formula. Not set for placement or channel mismatches.
	RuleScore, Propensity, Value, Lever float64
	// Models are the models that took part, with their inputs and top
	// contributions.
	Models []rules.ModelExplanation
}

// RequestError is a client mistake found while deciding (unknown placement,
// count above its max, a context field of the wrong type). The server turns
// it into a 4xx answer.
type RequestError struct {
	Code    string // stable, e.g. "unknown_placement"
	Field   string // JSON path of the offending field, e.g. "placements[1].count"
	Message string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Message }

// Status describes the ruleset being served and the last reload attempt.
type Status struct {
	Version     string
	LoadedAt    time.Time
	Files       []string
	Rules       int
	Touchpoints int
	Placements  int
	Models      []ModelStatus
	Warnings    []string
	// LastError is the last failed reload (file:line:col: message lines);
	// empty when the newest attempt succeeded.
	LastError   string
	LastErrorAt time.Time
	Reloads     uint64
	FailedLoads uint64
	// ListsTruncated counts list values cut to their field's max_items:
	// customer and context lists, each time a decision reads them.
	ListsTruncated uint64
	// DeadlineExceeded counts decisions that reached the decide deadline
	// and skipped their remaining rules.
	DeadlineExceeded uint64
	// ExposuresFlushed counts experiment exposures written to the store;
	// FlushFailures and RefreshFailures the learning loop's failed writes
	// of exposures (kept for the next try) and failed reads of bandit
	// posteriors (the last ones stay).
	ExposuresFlushed, FlushFailures, RefreshFailures uint64
}

// ModelStatus describes a model of the ruleset being served.
type ModelStatus struct {
	ID, Type, Objective string
	File                string // relative to the rules directory; empty for inline models
	Trees               int
	Inputs              int
	PerCandidate        bool
}

// RuleErrorCount is how many times a rule's expression failed at run time
// since the process started.
type RuleErrorCount struct {
	Rule  string
	Count uint64
}
