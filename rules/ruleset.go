// Package rules loads marketer-written rule files and the ranking models
// they name, type-checks their expressions and model inputs against the
// feature schema and compiles them into an immutable Ruleset. It does no
// network I/O and keeps no global state; the models package reads the
// model formats.
package rules

import (
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/touchpoint-dev/touchpoint/features"
)

// Kind is what sort of thing a touchpoint is. Kinds are numbered from 0 to
// NumKinds-1, so per-kind state fits in an array of NumKinds.
type Kind uint8

// The touchpoint kinds, in the order rule files list them.
const (
	KindOffer Kind = iota
	KindCoupon
	KindMessage
	KindContent
	NumKinds = iota // how many kinds there are
)

// Rule.SuppressKinds holds a bit per kind; this fails to compile when the
// kinds outgrow it.
const _ uint8 = 1<<NumKinds - 1

// String is the kind's name as rule files write it.
func (k Kind) String() string {
	switch k {
	case KindOffer:
		return "offer"
	case KindCoupon:
		return "coupon"
	case KindMessage:
		return "message"
	case KindContent:
		return "content"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the kind a rule file names, and false for a name that
// is not a kind.
func ParseKind(name string) (Kind, bool) {
	for k := range Kind(NumKinds) {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

// KindNames returns the names of all kinds in order, in a new slice.
func KindNames() []string {
	names := make([]string, NumKinds)
	for k := range Kind(NumKinds) {
		names[k] = k.String()
	}
	return names
}

// Ruleset is one compiled, immutable version of a rules directory.
type Ruleset struct {
	// Version identifies the exact files (and schema) it was built from.
	Version  string
	LoadedAt time.Time
	Dir      string
	Files    []string
	Schema   *Schema

	Placements  []Placement
	Touchpoints []Touchpoint
	Rules       []Rule
	Models      []Model
	Experiments []Experiment
	Policy      Policy
	// Triggers send a placement's decision when a behavioural event
	// happens; Deliveries are where they send it.
	Triggers   []Trigger
	Deliveries []Delivery
	// CountsDecisions is set when some cap counts decisions, so serving a
	// decision must record it.
	CountsDecisions bool
	// Warnings are lint findings that do not stop the ruleset from serving.
	Warnings ErrorList

	placementRules []ruleIndex // per placement: offer rules that can fill it
	suppressRules  ruleIndex

	channelIndex    map[string]int // channel name → bit, for the first 63 channels
	placementIndex  map[string]int
	touchpointIndex map[string]int
	layout          *envLayout
	// modelFiles are the model files read, by path relative to the rules
	// directory, so that the version covers them.
	modelFiles map[string][]byte
	// sources are the rule files as read, by path, for Diff.
	sources map[string][]byte
	// termCompiler compiles conditions' terms for explain (WhenTerms).
	termCompiler *termCompiler
}

// Source is the rule file at path (as listed in Files) as it was read for
// this ruleset, which may differ from the file on disk since.
func (rs *Ruleset) Source(path string) ([]byte, bool) {
	b, ok := rs.sources[path]
	return b, ok
}

// Placement is a slot on a page or screen that a decide call asks to fill.
type Placement struct {
	ID          string
	Description string
	Count       int // default number of touchpoints
	MaxCount    int
	Fallback    int // touchpoint index shown when nothing is eligible; -1 = none
	// Arbitration, when set, scores each candidate (after priority) with
	// a formula over propensity, value, lever and score instead of the
	// rule's score × the touchpoint's value.
	Arbitration       *vm.Program
	ArbitrationNative func(*Env) float64
	ArbitrationSource string
	// ArbitrationModels are the models the formula reads through model().
	ArbitrationModels []int
	// Bandit, when set, orders the candidates of the top priority band by
	// Thompson sampling instead of by score.
	Bandit *Bandit
}

// Bandit is a placement's Thompson sampling: Beta(prior + rewards,
// prior + impressions without reward) per touchpoint, optionally per
// segment of customers.
type Bandit struct {
	// Reward is the event type that counts as a success: click or
	// conversion.
	Reward                string
	PriorAlpha, PriorBeta float64
	// MinShare is the least share of the band's traffic every candidate
	// gets (see bandits.Policy).
	MinShare float64
	// By, when at least 0, is the customer feature whose value splits the
	// posteriors (a string with declared values, or a bool): segments
	// with other tastes learn apart. Segments lists its values; a customer
	// without the feature is in its default's segment, or in "" when it
	// has none.
	By       int
	ByName   string
	Segments []string
}

// Segment is the bandit segment of the customer in env: the feature's
// value as rules read it, its default included.
func (b *Bandit) Segment(env *Env) string {
	if b.By < 0 {
		return ""
	}
	v, _ := env.Customer(b.By)
	switch v.Kind {
	case features.KindBool:
		if v.Bool {
			return "true"
		}
		return "false"
	case features.KindString:
		return v.Str
	}
	return ""
}

// Touchpoint is something that can be shown: an offer, a coupon, a message or content.
type Touchpoint struct {
	ID          string
	Kind        string
	KindIndex   int // its Kind as an int, or -1 when Kind names none
	Description string
	Channels    []string // empty = every channel
	Placements  []string // empty = every placement
	Value       float64
	// ValueExpr, when set, computes the value per request instead
	// (ValueNative without the VM when it can); ValueModels are the
	// models it reads.
	ValueExpr   *vm.Program
	ValueNative func(*Env) float64
	ValueModels []int
	// Attributes are what models and expressions read as touchpoint.<name>.
	Attributes []NamedValue
	// Propensity is the model whose output is this touchpoint's
	// propensity in arbitration formulas (-1 = the rule's).
	Propensity int
	// Lever is the marketer's weight in arbitration formulas (default 1).
	Lever     float64
	Content   *Content
	Cap       *Cap    // nil = no cap of its own
	Budget    *Budget // nil = unlimited
	File      string
	Line, Col int

	placementMask uint64 // bit per placement index it may fill
	channelMask   uint64 // bit per channel (Ruleset.ChannelBit) it may appear on
	attrs         []attrValue
}

// FitsChannelBit reports whether the touchpoint may be shown on the channel
// whose Ruleset.ChannelBit is bit.
func (t *Touchpoint) FitsChannelBit(bit uint64) bool { return t.channelMask&bit != 0 }

// FitsChannel reports whether the touchpoint may be shown on channel.
func (t *Touchpoint) FitsChannel(channel string) bool {
	return len(t.Channels) == 0 || contains(t.Channels, channel)
}

// Fits reports whether the touchpoint may fill placement id, whose index
// (Ruleset.Placement) is i; the index makes the usual case a bit test.
func (t *Touchpoint) Fits(i int, id string) bool {
	if i >= 64 {
		return t.FitsPlacement(id)
	}
	return t.placementMask&(1<<uint(i)) != 0
}

// FitsAnyPlacement reports whether the touchpoint may fill one of the
// placements whose PlacementBit are set in mask.
func (t *Touchpoint) FitsAnyPlacement(mask uint64) bool { return t.placementMask&mask != 0 }

// FitsPlacement reports whether the touchpoint may fill placement.
func (t *Touchpoint) FitsPlacement(placement string) bool {
	return len(t.Placements) == 0 || contains(t.Placements, placement)
}

// Rule is one compiled rule. A rule either offers touchpoints or suppresses them.
type Rule struct {
	ID          string
	Description string
	When        *vm.Program
	WhenSource  string      // as written; WhenTerms splits it
	Score       *vm.Program // nil = 1
	Priority    int
	Offer       []int // touchpoint indexes
	// A suppress rule makes ineligible every touchpoint (SuppressAll), those
	// of the kinds in SuppressKinds (bit k for Kind k) and those in
	// SuppressIDs; this stays small however many touchpoints there are.
	SuppressAll   bool
	SuppressKinds uint8
	SuppressIDs   []int
	Active        *Schedule
	Cap           *Cap // caps what this rule offers, together
	// Propensity is the model whose output is the propensity of what
	// this rule offers in arbitration formulas (-1 = none: the score).
	Propensity int
	// Lever is the marketer's weight in arbitration formulas (default 1).
	Lever float64
	// Models are the models When and Score read through model().
	Models []int
	// Experiments are the experiments When and Score read through
	// variant() (lint checks that the rule offers something they count).
	Experiments []int
	// PerCandidate is set when When or Score reads touchpoint.<name>,
	// directly or through a model: the rule is evaluated once per
	// touchpoint it offers rather than once per request.
	PerCandidate bool
	Tests        []Fixture
	File         string
	Line, Col    int

	// WhenNative and ScoreNative, when set, compute When and Score without
	// the VM (see native.go); they always agree with the programs.
	WhenNative  func(*Env) bool
	ScoreNative func(*Env) float64

	// Guards are necessary conditions on the request context, checked
	// before running When.
	Guards []Guard
	// Loops is how deeply loops over lists nest in When and Score (at most
	// MaxLoopNesting); 0 when neither walks a list. Such rules may cost up
	// to max_items^Loops steps, so the engine checks its deadline after them.
	Loops int
	// PlacementMask has a bit per placement index that some offered
	// touchpoint may fill; all ones when placements number over 64.
	PlacementMask uint64
	// Channels is every channel an offered touchpoint may appear on; nil
	// means any channel.
	Channels    []string
	channelMask uint64
}

// MayOffer reports whether the rule could put anything into a request for
// these placements on this channel; if not, evaluating it cannot change the
// decision. Suppress rules always may.
func (r *Rule) MayOffer(placements, channelBit uint64) bool {
	return r.IsSuppress() || r.PlacementMask&placements != 0 && r.channelMask&channelBit != 0
}

// ChannelBit is the bit of a request channel in touchpoint and rule channel
// masks; channels no touchpoint names share the last bit, which only
// unrestricted touchpoints have.
func (rs *Ruleset) ChannelBit(channel string) uint64 {
	if i, ok := rs.channelIndex[channel]; ok {
		return 1 << uint(i)
	}
	return 1 << 63
}

// PlacementBit is the mask bit MayOffer expects for placement index i.
func PlacementBit(i int) uint64 {
	if i >= 64 {
		return ^uint64(0)
	}
	return 1 << uint(i)
}

// Suppresses reports whether the rule, when matched, makes touchpoint t
// (index i) ineligible.
func (r *Rule) Suppresses(t *Touchpoint, i int) bool {
	return r.SuppressAll || t.KindIndex >= 0 && r.SuppressKinds&(1<<uint(t.KindIndex)) != 0 || containsInt(r.SuppressIDs, i)
}

// IsSuppress reports whether the rule suppresses rather than offers.
func (r *Rule) IsSuppress() bool { return r.Offer == nil }

// Fixture is one test case written under a rule or a model.
type Fixture struct {
	Rule string // the rule it is written under; empty under a model
	// Model, when set, makes the fixture check that model's output for
	// the customer, context and Touchpoint: ExpectScore within Tolerance.
	Model       string
	Touchpoint  string
	ExpectScore float64
	Tolerance   float64
	Name        string
	File        string
	Line        int
	Col         int
	// Customer is nil for a fixture about an unknown customer.
	Customer   *features.Record
	Context    []NamedValue
	Now        time.Time // zero = the time the fixture runs
	Placements []PlacementCount
	Expect     map[string][]string
	// History and Consent give the customer's feedback state, for rules
	// and policy that depend on it.
	History []HistoryEntry
	Consent map[string]bool
	// Trigger, when set, makes this a test of that trigger: Events happen
	// on a simulated clock from Now, and ExpectSent is what the trigger
	// sends (nothing when empty), ExpectAt (when not negative) how long
	// after Now.
	Trigger    string
	Events     []FixtureEvent
	ExpectSent []string
	ExpectAt   time.Duration
	// Variants puts the fixture's customer in a variant of an experiment
	// (by experiment id: a variant name, "holdout", or "none" for outside
	// it) instead of where the hash of its id falls; experiments it does
	// not name see it as outside.
	Variants map[string]string
}

// HistoryEntry is past feedback in a fixture: Count events of type Event
// about Touchpoint, DaysAgo days before the fixture's time.
type HistoryEntry struct {
	Touchpoint string
	Event      string
	Count      int64
	DaysAgo    int
	Channel    string
	Rule       string
}

// NamedValue is a context field given in a fixture.
type NamedValue struct {
	Name  string
	Value features.Value
}

// PlacementCount is a placement a fixture asks for.
type PlacementCount struct {
	ID    string
	Count int
}

// Placement returns the index of a placement, or -1.
func (rs *Ruleset) Placement(id string) int { return lookupIndex(rs.placementIndex, id) }

// Touchpoint returns the index of a touchpoint, or -1.
func (rs *Ruleset) Touchpoint(id string) int { return lookupIndex(rs.touchpointIndex, id) }

// NewEnv returns an environment for this ruleset's schema, with every
// field at its default. Callers keep it for as long as they decide with
// this ruleset (the engine keeps one per pooled decision).
func (rs *Ruleset) NewEnv() *Env {
	e := newEnv(rs.layout, len(rs.Schema.Customer), len(rs.Schema.Context))
	e.Reset()
	return e
}

// Fixtures lists every fixture: the models' in model order, then the
// rules' in rule order.
func (rs *Ruleset) Fixtures() []Fixture {
	var out []Fixture
	for _, m := range rs.Models {
		out = append(out, m.Tests...)
	}
	for _, r := range rs.Rules {
		out = append(out, r.Tests...)
	}
	for _, t := range rs.Triggers {
		out = append(out, t.Tests...)
	}
	return out
}

// FixtureEvent is a behavioural event in a trigger's test, At after the
// test's start.
type FixtureEvent struct {
	Name       string
	Properties map[string]features.Value
	At         time.Duration
}
