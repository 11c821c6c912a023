// Package workbench answers the playground's questions about rules: the
// schema and placements its forms are built from, which fixtures cover
// each rule, the text of the live rule files, and drafts: rule files
// compiled and tested next to the live ruleset, and replayed against
// recently logged traffic, without touching what is served. Publishing a
// draft stays a change to the files, where reviews happen.
package workbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/replay"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// Limits on what a draft may hold and replay. Drafts come from people
// with the admin key, but a mistake must still cost bounded time and
// memory.
const (
	// MaxDraftFiles is how many rule files one draft may change.
	MaxDraftFiles = 16
	// MaxReplay is the most logged decisions one replay re-decides.
	MaxReplay = 20000
	// DefaultReplay is how many a replay re-decides when not told.
	DefaultReplay = 2000
	// maxTailBytes is how much of the end of the decision log a replay
	// reads, enough for MaxReplay lines of a few hundred bytes.
	maxTailBytes = 32 << 20
	// replayExamples is how many changed decisions a replay keeps per
	// placement and kind of change.
	replayExamples = 5
)

// Live is the ruleset being served; *engine.Engine satisfies it.
type Live interface {
	Ruleset() *rules.Ruleset
}

// Config says where the live rules and the logged traffic are.
type Config struct {
	// RulesDir and SchemaPath are the live ruleset's files.
	RulesDir, SchemaPath string
	// DecisionLog is the decision log file replays read recent traffic
	// from; empty means there is none to replay.
	DecisionLog string
}

// Workbench serves the playground. It is safe for concurrent use; drafts
// are compiled one at a time, so concurrent checks cost one compilation's
// memory, not many.
type Workbench struct {
	cfg  Config
	live Live
	src  engine.FeatureSource
	log  zerolog.Logger

	// draftMu lets one draft compile or replay at a time.
	draftMu sync.Mutex

	// coverage is the last ruleset's fixture results, computed once per
	// version: running every fixture takes milliseconds, which a page
	// that asks on every load should not pay each time.
	coverageMu sync.Mutex
	coverage   *coverage
}

type coverage struct {
	version string
	results []engine.FixtureResult
}

// New returns a workbench over the live ruleset; src is the feature store
// that replays look customers up in.
func New(cfg Config, live Live, src engine.FeatureSource, log zerolog.Logger) *Workbench {
	return &Workbench{cfg: cfg, live: live, src: src, log: log.With().Str("component", "workbench").Logger()}
}

// Field is one feature or context field of the schema.
type Field struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Values      []string `json:"values,omitempty"`
	Default     any      `json:"default,omitempty"`
	Description string   `json:"description,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Protected   bool     `json:"protected,omitempty"`
	// Counter marks a number computed from the customer's events at
	// decision time; it cannot be set as a feature.
	Counter bool `json:"counter,omitempty"`
}

// Placement is one placement a decide call may ask for.
type Placement struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Count       int    `json:"count"`
	MaxCount    int    `json:"max_count"`
	Fallback    string `json:"fallback,omitempty"`
}

// Schema is what the playground's forms are built from.
type Schema struct {
	Ruleset    string      `json:"ruleset"`
	Features   []Field     `json:"features"`
	Context    []Field     `json:"context"`
	Placements []Placement `json:"placements"`
	// ConsentChannels are the channels the contact policy asks consent for.
	ConsentChannels []string `json:"consent_channels"`
}

// Schema describes the live ruleset's schema and placements.
func (w *Workbench) Schema() Schema {
	rs := w.live.Ruleset()
	out := Schema{Ruleset: rs.Version, Features: fields(rs.Schema.Customer), Context: fields(rs.Schema.Context),
		Placements: []Placement{}, ConsentChannels: []string{}}
	for _, p := range rs.Placements {
		pl := Placement{ID: p.ID, Description: p.Description, Count: p.Count, MaxCount: p.MaxCount}
		if p.Fallback >= 0 {
			pl.Fallback = rs.Touchpoints[p.Fallback].ID
		}
		out.Placements = append(out.Placements, pl)
	}
	if c := rs.Policy.Consent; c != nil {
		out.ConsentChannels = append(out.ConsentChannels, c.Channels...)
	}
	return out
}

func fields(list []rules.Field) []Field {
	out := make([]Field, 0, len(list))
	for _, f := range list {
		fd := Field{Name: f.Name, Type: f.Type.String(), Values: f.Values, Description: f.Description,
			Required: f.Required, Protected: f.Protected, Counter: f.Counter != nil}
		if f.Default.Kind != features.KindMissing {
			fd.Default = f.Default.Interface()
		}
		out = append(out, fd)
	}
	return out
}

// File is one live rule file.
type File struct {
	Path  string `json:"path"` // relative to the rules directory, '/'-separated
	Bytes int    `json:"bytes"`
}

// Fixture is a fixture as it covers a rule.
type Fixture struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Owner is the rule the fixture is written under.
	Owner string `json:"owner"`
	// Outcome is the covered rule's outcome in the fixture's decision.
	Outcome string `json:"outcome"`
	Passed  bool   `json:"passed"`
}

// Rule is one live rule with the fixtures that cover it.
type Rule struct {
	ID          string    `json:"id"`
	File        string    `json:"file"`
	Line        int       `json:"line"`
	Description string    `json:"description,omitempty"`
	Action      string    `json:"action"`
	Placements  []string  `json:"placements"`
	Touchpoints []string  `json:"touchpoints"`
	Fixtures    []Fixture `json:"fixtures"`
}

// TestCounts sums a ruleset's fixture results.
type TestCounts struct {
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

func (c *TestCounts) add(passed bool) {
	c.Total++
	if passed {
		c.Passed++
	} else {
		c.Failed++
	}
}

// Catalog is the live ruleset's files and rules.
type Catalog struct {
	Ruleset string     `json:"ruleset"`
	Dir     string     `json:"dir"`
	Files   []File     `json:"files"`
	Rules   []Rule     `json:"rules"`
	Tests   TestCounts `json:"tests"`
}

// Rules lists the live ruleset's files and rules, each rule with the
// fixtures that cover it: those written under it, and every other one
// whose decision found its condition true.
func (w *Workbench) Rules() Catalog {
	rs := w.live.Ruleset()
	results := w.fixtureResults(rs)
	out := Catalog{Ruleset: rs.Version, Dir: filepath.ToSlash(rs.Dir), Files: []File{}, Rules: []Rule{}}
	for _, p := range rs.Files {
		src, _ := rs.Source(p)
		out.Files = append(out.Files, File{Path: rel(rs.Dir, p), Bytes: len(src)})
	}
	for _, r := range results {
		out.Tests.add(r.Passed)
	}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		rule := Rule{ID: r.ID, File: rel(rs.Dir, r.File), Line: r.Line, Description: r.Description, Action: "offer",
			Placements: []string{}, Touchpoints: []string{}, Fixtures: []Fixture{}}
		if len(r.Offer) == 0 {
			rule.Action = "suppress"
		}
		for _, ti := range r.Offer {
			t := &rs.Touchpoints[ti]
			rule.Touchpoints = append(rule.Touchpoints, t.ID)
			for _, p := range rs.Placements {
				if t.FitsPlacement(p.ID) && !slices.Contains(rule.Placements, p.ID) {
					rule.Placements = append(rule.Placements, p.ID)
				}
			}
		}
		for _, res := range results {
			f := res.Fixture
			outcome := ""
			switch {
			case f.Rule == r.ID:
				outcome = res.Outcome
			case slices.Contains(res.Matched, r.ID):
				outcome = engine.OutcomeMatched
			default:
				continue
			}
			rule.Fixtures = append(rule.Fixtures, Fixture{Name: f.Name, File: rel(rs.Dir, f.File), Line: f.Line,
				Owner: f.Rule, Outcome: outcome, Passed: res.Passed})
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

// fixtureResults runs rs's fixtures, or returns the results of the last
// run when rs is the ruleset they were run for.
func (w *Workbench) fixtureResults(rs *rules.Ruleset) []engine.FixtureResult {
	w.coverageMu.Lock()
	defer w.coverageMu.Unlock()
	if c := w.coverage; c != nil && c.version == rs.Version {
		return c.results
	}
	results := engine.RunFixtures(rs)
	w.coverage = &coverage{version: rs.Version, results: results}
	return results
}

// ErrNoSuchFile is File's answer for a path that is not a live rule file.
var ErrNoSuchFile = errors.New("no such rule file")

// File returns a live rule file's text as the served ruleset read it;
// path is relative to the rules directory. Only the ruleset's own files
// are answered, so no path reaches anything else on disk.
func (w *Workbench) File(path string) ([]byte, error) {
	rs := w.live.Ruleset()
	for _, p := range rs.Files {
		if rel(rs.Dir, p) == path {
			src, _ := rs.Source(p)
			return src, nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not among the %d files of ruleset %s", ErrNoSuchFile, path, len(rs.Files), rs.Version)
}

// rel names p relative to dir with '/' separators, as the playground and
// drafts name files.
func rel(dir, p string) string {
	r, err := filepath.Rel(dir, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

// Draft is rule files changed or added, by path relative to the rules
// directory.
type Draft map[string][]byte

// Validate checks a draft's shape: how many files, their paths.
func (d Draft) Validate() error {
	if len(d) == 0 {
		return errors.New("a draft must change at least one rule file")
	}
	if len(d) > MaxDraftFiles {
		return fmt.Errorf("a draft may change at most %d rule files, this one changes %d", MaxDraftFiles, len(d))
	}
	for p := range d {
		if err := rules.DraftPath(p); err != nil {
			return err
		}
	}
	return nil
}

// Problem is one error or warning of a draft, at its place.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
	Source  string `json:"source,omitempty"`
}

// TestResult is one fixture's result in a check.
type TestResult struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Rule    string `json:"rule,omitempty"`
	Model   string `json:"model,omitempty"`
	Trigger string `json:"trigger,omitempty"`
	Passed  bool   `json:"passed"`
	Problem string `json:"problem,omitempty"`
}

// Tests is a check's fixture results.
type Tests struct {
	TestCounts
	Results []TestResult `json:"results"`
}

// Check is what `rules check` says about a draft.
type Check struct {
	// OK is set when the draft compiles and every fixture passes.
	OK bool `json:"ok"`
	// Version is the draft ruleset's version; nil when it does not compile.
	Version     *string   `json:"version"`
	Rules       int       `json:"rules"`
	Touchpoints int       `json:"touchpoints"`
	Errors      []Problem `json:"errors"`
	Warnings    []Problem `json:"warnings"`
	// Tests are run only when the draft compiles.
	Tests *Tests `json:"tests,omitempty"`
}

// Check compiles the live rule files with the draft's in their place,
// lints them and runs every fixture, as `touchpoint rules check` does.
func (w *Workbench) Check(d Draft) (*Check, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	w.draftMu.Lock()
	defer w.draftMu.Unlock()
	rs, err := w.load(d)
	out := &Check{Errors: []Problem{}, Warnings: []Problem{}}
	if err != nil {
		var list rules.ErrorList
		if !errors.As(err, &list) {
			return nil, err
		}
		out.Errors = w.problems(list)
		return out, nil
	}
	out.Version = &rs.Version
	out.Rules, out.Touchpoints = len(rs.Rules), len(rs.Touchpoints)
	out.Warnings = w.problems(rs.Warnings)
	tests := &Tests{Results: []TestResult{}}
	for _, r := range engine.RunFixtures(rs) {
		f := r.Fixture
		tests.add(r.Passed)
		tests.Results = append(tests.Results, TestResult{Name: f.Name, File: rel(w.cfg.RulesDir, f.File), Line: f.Line, Col: f.Col,
			Rule: f.Rule, Model: f.Model, Trigger: f.Trigger, Passed: r.Passed, Problem: r.Problem})
	}
	out.Tests = tests
	out.OK = tests.Failed == 0
	return out, nil
}

// load compiles the draft. A panic while compiling is a bug in touchpoint
// that some rule file reached; it becomes an error so that a draft cannot
// take the server down.
func (w *Workbench) load(d Draft) (rs *rules.Ruleset, err error) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error().Interface("panic", v).Msg("compiling a draft panicked")
			rs, err = nil, fmt.Errorf("compiling the draft panicked: %v (a bug in touchpoint)", v)
		}
	}()
	return rules.LoadDraft(w.cfg.RulesDir, w.cfg.SchemaPath, d)
}

func (w *Workbench) problems(list rules.ErrorList) []Problem {
	out := make([]Problem, 0, len(list))
	for _, e := range list {
		out = append(out, Problem{File: rel(w.cfg.RulesDir, e.File), Line: e.Line, Col: e.Col, Message: e.Message, Source: e.Source})
	}
	return out
}

// ErrNoTraffic is Replay's answer when no decision log is configured.
var ErrNoTraffic = errors.New("no decision log is configured to replay: enable decision_log.file in the configuration")

// DraftError is a draft that does not compile, so it cannot be replayed.
type DraftError struct{ Problems []Problem }

func (e *DraftError) Error() string {
	var b bytes.Buffer
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
	}
	return b.String()
}

// Replay re-decides the last limit logged decisions with the live ruleset
// and with the draft, on the same features, and reports what would change.
func (w *Workbench) Replay(ctx context.Context, d Draft, limit int) (*ReplayReport, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxReplay {
		return nil, fmt.Errorf("limit must be between 1 and %d, got %d", MaxReplay, limit)
	}
	if w.cfg.DecisionLog == "" {
		return nil, ErrNoTraffic
	}
	w.draftMu.Lock()
	defer w.draftMu.Unlock()
	draftRS, err := w.load(d)
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			return nil, &DraftError{Problems: w.problems(list)}
		}
		return nil, err
	}
	traffic, err := tail(w.cfg.DecisionLog, limit)
	if err != nil {
		return nil, err
	}
	base := engine.NewPreview(w.live.Ruleset(), w.src)
	draft := engine.NewPreview(draftRS, w.src)
	rep, err := replay.Run(ctx, base, draft, bytes.NewReader(traffic), replay.Options{Examples: replayExamples})
	if err != nil {
		return nil, fmt.Errorf("cannot replay the decision log %q: %w", w.cfg.DecisionLog, err)
	}
	out := reportJSON(rep)
	if rep.Requests == 0 {
		out.Note = "no decisions have been logged yet: the log fills as sites call /v1/decide (previews are not logged); run `touchpoint loadtest` against this server to make some traffic"
	}
	return out, nil
}

// tail returns the last limit whole lines of the file at path, reading
// at most maxTailBytes of it. A missing file is no traffic yet.
func tail(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the decision log: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the decision log: %w", err)
	}
	start := max(info.Size()-maxTailBytes, 0)
	buf := make([]byte, info.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read the decision log: %w", err)
	}
	if start > 0 {
		// The read began inside a line.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	// A line being written has no newline yet.
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else {
		buf = nil
	}
	// Keep the last limit lines.
	n := 0
	for i := len(buf) - 2; i >= 0; i-- {
		if buf[i] == '\n' {
			n++
			if n == limit {
				return buf[i+1:], nil
			}
		}
	}
	return buf, nil
}

// ReplayReport is replay.Report on the wire.
type ReplayReport struct {
	Base          string             `json:"base"`
	Draft         string             `json:"draft"`
	Requests      int                `json:"requests"`
	Replayed      int                `json:"replayed"`
	NoCustomerID  int                `json:"no_customer_id"`
	Failed        int                `json:"failed"`
	FailedExample string             `json:"failed_example,omitempty"`
	Changed       float64            `json:"changed"`
	Placements    []PlacementChanges `json:"placements"`
	Rules         []RuleChanges      `json:"rules"`
	Note          string             `json:"note,omitempty"`
	Dropped       int                `json:"dropped_context,omitempty"`
}

// PlacementChanges is replay.PlacementChanges on the wire.
type PlacementChanges struct {
	ID        string    `json:"id"`
	Decisions int       `json:"decisions"`
	Unchanged int       `json:"unchanged"`
	Gained    int       `json:"gained"`
	Lost      int       `json:"lost"`
	Swapped   int       `json:"swapped"`
	Examples  []Example `json:"examples"`
}

// Example is one changed decision.
type Example struct {
	CustomerID string  `json:"customer_id"`
	DecisionID string  `json:"decision_id,omitempty"`
	Kind       string  `json:"kind"`
	Base       []Shown `json:"base"`
	Draft      []Shown `json:"draft"`
}

// Shown is one item a ruleset showed.
type Shown struct {
	Touchpoint string `json:"touchpoint"`
	Rule       string `json:"rule,omitempty"`
	Fallback   bool   `json:"fallback,omitempty"`
}

// RuleChanges is one rule's share of the changes: decisions where the
// draft shows a touchpoint it offers that the base did not (gains), and
// where it no longer shows one the base did (losses). Rule is "" for
// fallbacks.
type RuleChanges struct {
	Rule   string `json:"rule"`
	Gains  int    `json:"gains"`
	Losses int    `json:"losses"`
}

func reportJSON(rep *replay.Report) *ReplayReport {
	out := &ReplayReport{Base: rep.BaseVersion, Draft: rep.DraftVersion, Requests: rep.Requests, Replayed: rep.Replayed,
		NoCustomerID: rep.NoCustomerID, Failed: rep.Failed, FailedExample: rep.FailedExample, Changed: rep.Changed(),
		Dropped: rep.DroppedContext, Placements: []PlacementChanges{}, Rules: []RuleChanges{}}
	for _, p := range rep.Placements {
		pc := PlacementChanges{ID: p.ID, Decisions: p.Decisions, Unchanged: p.Unchanged, Gained: p.Gained, Lost: p.Lost,
			Swapped: p.Swapped, Examples: []Example{}}
		for _, ex := range p.Examples {
			pc.Examples = append(pc.Examples, Example{CustomerID: ex.CustomerID, DecisionID: ex.DecisionID, Kind: ex.Kind,
				Base: shownJSON(ex.Base), Draft: shownJSON(ex.Draft)})
		}
		out.Placements = append(out.Placements, pc)
	}
	sort.Slice(out.Placements, func(i, j int) bool { return out.Placements[i].ID < out.Placements[j].ID })
	for _, r := range rep.Rules {
		out.Rules = append(out.Rules, RuleChanges{Rule: r.Rule, Gains: r.Gains, Losses: r.Losses})
	}
	return out
}

func shownJSON(list []replay.Shown) []Shown {
	out := make([]Shown, 0, len(list))
	for _, s := range list {
		out = append(out, Shown{Touchpoint: s.Touchpoint, Rule: s.Rule, Fallback: s.Fallback})
	}
	return out
}

// Customer is a customer's stored record as decisions see it.
type Customer struct {
	CustomerID string `json:"customer_id"`
	// Known is false for an id the store has no features for.
	Known    bool                     `json:"known"`
	Features map[string]any           `json:"features"`
	Consent  map[string]ConsentAnswer `json:"consent"`
	Counters []Counter                `json:"counters"`
}

// ConsentAnswer is a customer's recorded answer for one channel.
type ConsentAnswer struct {
	Granted bool    `json:"granted"`
	At      *string `json:"at"`
}

// Counter is one day's count of one event about one subject.
type Counter struct {
	Event   string `json:"event"`
	Subject string `json:"subject"`
	Day     string `json:"day"` // YYYY-MM-DD, UTC
	Count   int64  `json:"count"`
}

// Customer looks a customer up as a decision would, through the cache.
func (w *Workbench) Customer(ctx context.Context, id string) (*Customer, error) {
	rec, err := w.src.Lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("cannot look customer %q up: %w", id, err)
	}
	out := &Customer{CustomerID: id, Known: rec.Known(), Features: map[string]any{},
		Consent: map[string]ConsentAnswer{}, Counters: []Counter{}}
	if rec == nil {
		return out, nil
	}
	for name, v := range rec.Values.All() {
		out.Features[name] = v.Interface()
	}
	for ch, c := range rec.Consent {
		a := ConsentAnswer{Granted: c.Granted}
		if !c.At.IsZero() {
			at := c.At.UTC().Format(time.RFC3339)
			a.At = &at
		}
		out.Consent[ch] = a
	}
	for _, c := range rec.Counters {
		out.Counters = append(out.Counters, Counter{Event: c.Event, Subject: c.Subject,
			Day: time.Unix(int64(c.Day)*86400, 0).UTC().Format(time.DateOnly), Count: c.Count})
	}
	sort.Slice(out.Counters, func(i, j int) bool {
		a, b := out.Counters[i], out.Counters[j]
		if a.Day != b.Day {
			return a.Day > b.Day
		}
		if a.Event != b.Event {
			return a.Event < b.Event
		}
		return a.Subject < b.Subject
	})
	return out, nil
}
