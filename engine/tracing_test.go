package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/touchpoint-dev/touchpoint/features"
)

type stageKey struct{}

// recordingTracer notes every Start and End, and marks the context it
// returns with the stage, so a test can see which span a call ran under.
type recordingTracer struct {
	mu     sync.Mutex
	events []string
}

func (r *recordingTracer) Start(ctx context.Context, stage string) context.Context {
	r.note("start " + stage)
	return context.WithValue(ctx, stageKey{}, stage)
}

func (r *recordingTracer) End(ctx context.Context, failed bool) {
	stage, _ := ctx.Value(stageKey{}).(string)
	if failed {
		stage += " (failed)"
	}
	r.note("end " + stage)
}

func (r *recordingTracer) note(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// stageSource answers as src does, or fails with err, and notes the stage
// in the context of each lookup.
type stageSource struct {
	mapSource
	err    error
	stages *[]string
}

func (s stageSource) Lookup(ctx context.Context, id string) (*features.Record, error) {
	stage, _ := ctx.Value(stageKey{}).(string)
	*s.stages = append(*s.stages, stage)
	if s.err != nil {
		return nil, s.err
	}
	return s.mapSource.Lookup(ctx, id)
}

func TestDecideTracesItsStages(t *testing.T) {
	cases := []struct {
		name       string
		customer   string
		lookupErr  error
		wantEvents []string
		wantKnown  bool
		degraded   bool
	}{
		{name: "known customer", customer: "c-1", wantKnown: true, wantEvents: []string{
			"start features.lookup", "end features.lookup", "start rules.evaluate", "end rules.evaluate"}},
		{name: "store failing", customer: "c-1", lookupErr: errors.New("store down"), degraded: true, wantEvents: []string{
			"start features.lookup", "end features.lookup (failed)", "start rules.evaluate", "end rules.evaluate"}},
		{name: "anonymous visitor, not looked up", customer: "visitor-9", wantEvents: []string{
			"start rules.evaluate", "end rules.evaluate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stages []string
			tr := &recordingTracer{}
			src := stageSource{mapSource: testSource(), err: tc.lookupErr, stages: &stages}
			e, err := New(Config{RulesDir: "testdata/rules", SchemaPath: "testdata/features.yaml"}, src, zerolog.Nop(),
				WithAnonymousPrefixes("visitor-"), WithTracer(tr))
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			req := Request{CustomerID: tc.customer, Placements: []PlacementRequest{{ID: "cart_banner"}}, Context: web("/cart")}
			if err := e.Decide(context.Background(), &req, &d); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tr.events, tc.wantEvents) {
				t.Errorf("spans %q, want %q", tr.events, tc.wantEvents)
			}
			if d.KnownCustomer != tc.wantKnown || d.Degraded != tc.degraded {
				t.Errorf("known %v degraded %v, want %v %v", d.KnownCustomer, d.Degraded, tc.wantKnown, tc.degraded)
			}
			for _, s := range stages {
				if s != StageFeatureLookup {
					t.Errorf("a lookup ran under span %q, want %q", s, StageFeatureLookup)
				}
			}
		})
	}
}

// panickingWriter panics where a decision reserves its capped decisions,
// in the middle of the rules.
type panickingWriter struct{ features.Writer }

func (panickingWriter) ReserveDecisions(context.Context, string, int32, []features.DecisionLimit) (bool, error) {
	panic("store client bug")
}

// A panic in the rules, which the server recovers, still ends their span,
// marked failed, so no span is left open.
func TestPanicInRulesEndsTheirSpan(t *testing.T) {
	tr := &recordingTracer{}
	overlay := features.NewOverlay(testSource(), nil)
	e := newPolicyEngine(t, WithWriter(panickingWriter{overlay}), WithBudgets(overlay), WithTracer(tr))
	req := banner("web", "/deals")
	var d Decision
	func() {
		defer func() {
			if v := recover(); v != "store client bug" {
				t.Errorf("recovered %v, want the writer's panic", v)
			}
		}()
		_ = e.Decide(context.Background(), &req, &d)
	}()
	want := []string{"start features.lookup", "end features.lookup", "start rules.evaluate", "end rules.evaluate (failed)"}
	if !slices.Equal(tr.events, want) {
		t.Errorf("spans %q, want %q", tr.events, want)
	}
}
