package decisionlog

import (
	"time"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
)

// span locates a string copied into an entry's arena.
type span struct{ off, n uint32 }

// entry is one queued decision: everything the line needs, taken out of
// the request and the decision, whose memory is reused as soon as the
// decide returns. Strings the request or the decision's buffers own (the
// decision id, customer id, context, placement ids) are copied into one
// arena; strings of the compiled ruleset (its version, rule, touchpoint
// and model ids, and the reason constants) are immutable, so they are kept
// by reference, which halves the copying. All buffers keep their capacity
// from one use to the next, so a warm entry is filled without allocating.
type entry struct {
	when         time.Time
	id, customer span
	ruleset      string
	known        bool
	degraded     engine.DegradedReason
	isDegraded   bool
	context      []contextField
	listItems    []span
	placements   []placementRec
	candidates   []candidateRec
	arena        []byte
}

type contextField struct {
	name span
	kind features.Kind
	num  float64
	b    bool
	str  span
	// list is [first, end) in listItems.
	listFirst, listEnd uint32
}

type placementRec struct {
	id    span
	count int32
	// experiment and variant: the arm the placement counted for.
	experiment, variant string
}

type candidateRec struct {
	placement                       int32
	chosen                          bool
	touchpoint, rule, reason, model string
	score, propensity, modelOutput  float64
	// experiment and variant name the A/B test a chosen item came from.
	experiment, variant string
}

// maxEntryBytes keeps an entry that once held a huge request from pinning
// its buffers for the life of the process: past it the entry is replaced.
const maxEntryBytes = 256 << 10

func (e *entry) str(s string) span {
	off := len(e.arena)
	e.arena = append(e.arena, s...)
	return span{uint32(off), uint32(len(s))}
}

// text returns the arena bytes of sp; they are valid until the entry is
// filled again.
func (e *entry) text(sp span) []byte { return e.arena[sp.off : sp.off+sp.n] }

// fill copies what the line records of req and d. It runs on the request
// path: appends into reused buffers only.
func (e *entry) fill(req *engine.Request, d *engine.Decision, now time.Time) {
	e.arena = e.arena[:0]
	e.context = e.context[:0]
	e.listItems = e.listItems[:0]
	e.placements = e.placements[:0]
	e.candidates = e.candidates[:0]

	e.when = now
	e.id = e.str(d.ID)
	e.customer = e.str(d.CustomerID)
	e.ruleset = d.Ruleset
	e.known = d.KnownCustomer
	e.isDegraded, e.degraded = d.Degraded, d.DegradedReasons
	for i := range req.Context {
		c := &req.Context[i]
		f := contextField{name: e.str(c.Name), kind: c.Value.Kind}
		switch c.Value.Kind {
		case features.KindNumber:
			f.num = c.Value.Num
		case features.KindBool:
			f.b = c.Value.Bool
		case features.KindString:
			f.str = e.str(c.Value.Str)
		case features.KindList:
			f.listFirst = uint32(len(e.listItems))
			for _, s := range c.Value.List {
				e.listItems = append(e.listItems, e.str(s))
			}
			f.listEnd = uint32(len(e.listItems))
		}
		e.context = append(e.context, f)
	}
	for i := range req.Placements {
		p := &req.Placements[i]
		rec := placementRec{id: e.str(p.ID), count: int32(p.Count)}
		if i < len(d.Placements) {
			rec.experiment, rec.variant = d.Placements[i].Experiment, d.Placements[i].Variant
		}
		e.placements = append(e.placements, rec)
	}
	for i := range d.Logged {
		c := &d.Logged[i]
		e.candidates = append(e.candidates, candidateRec{
			placement:   int32(c.Placement),
			touchpoint:  c.Touchpoint,
			rule:        c.Rule,
			reason:      c.Reason,
			model:       c.Model,
			score:       c.Score,
			propensity:  c.Propensity,
			modelOutput: c.ModelOutput,
			chosen:      c.Chosen,
			experiment:  c.Experiment,
			variant:     c.Variant,
		})
	}
}

// forget drops the references to ruleset strings, so an entry left unused
// after a burst does not keep a replaced ruleset's strings alive. The
// writer calls it, off the request path.
func (e *entry) forget() {
	clear(e.candidates)
	e.candidates = e.candidates[:0]
	clear(e.placements)
	e.placements = e.placements[:0]
	e.ruleset = ""
}

// oversized reports whether the entry's buffers grew past maxEntryBytes.
func (e *entry) oversized() bool {
	const (
		fieldSize     = 48
		candidateSize = 136
	)
	return cap(e.arena)+cap(e.context)*fieldSize+cap(e.candidates)*candidateSize+cap(e.listItems)*8 > maxEntryBytes
}
