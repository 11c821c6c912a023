package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/touchpoint-dev/touchpoint/bandits"
	"github.com/touchpoint-dev/touchpoint/experiments"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// The learning loop. A decision counts the exposures of its experiments'
// arms in memory and tags its decision id with the arm (experiment and
// variant) and bandit arm (placement and segment) of each item it shows.
// An event posted with that decision id carries the tags back: Attribute
// turns them into tallies the store adds when the event is new, on
// whichever node receives it. Learn flushes the exposures to the store
// every second and reads the bandit placements' tallies back into
// posteriors, so a decide itself makes no extra store call.

// learning is what one ruleset snapshot counts and learns from.
type learning struct {
	// exposures[x][arm] counts decisions in which a customer in arm of
	// experiment x (its variants in order, then its holdout) asked for a
	// placement x covers.
	exposures [][]atomic.Int64
	// bandits is indexed by placement; nil for placements that are not
	// bandits.
	bandits []*banditState
	// tpTag is each touchpoint's 16-bit tag; armTag[x][arm] and
	// segmentTag[placement][segment] the 32-bit tags of arms.
	tpTag      []uint16
	armTag     [][]uint32
	segmentTag [][]uint32
	// byTag resolves a decision id's tag to the tallies' scope and the
	// arm's part of their field. Tags are 32-bit hashes of names, unique
	// but for a collision among a ruleset's arms (about one in 10,000 for
	// a thousand arms), which would merge two arms' events.
	byTag map[uint32]tagTarget
}

type tagTarget struct {
	bandit    bool
	placement int // a bandit's
	scope     string
	arm       string // an experiment's arm, or a bandit's segment
}

// banditState is one Thompson placement's posteriors.
type banditState struct {
	cfg    *rules.Bandit
	scope  string
	policy bandits.Policy
	// segments are "" (no by, or a customer without the feature), then
	// the feature's values; tps the touchpoints that fit the placement,
	// and slot each ruleset touchpoint's index in tps (-1: not there).
	segments []string
	tps      []int
	slot     []int32
	post     atomic.Pointer[posteriors]
}

// posteriors are a bandit placement's arms per segment, as last read from
// the store, and the propensities estimated from them since.
type posteriors struct {
	nTP  int           // len(banditState.tps)
	arms []bandits.Arm // [segment*nTP + slot of the touchpoint]
	// impressions and rewards are the counts behind arms; readAt is when
	// they were read from the store (zero: priors only).
	impressions, rewards []int64
	readAt               time.Time

	mu    sync.Mutex // guards props and rng
	props map[propKey]*ranking
	rng   *mrand.Rand
}

// propKey names one ranking's propensities: a segment and the set of
// touchpoints in the band.
type propKey struct {
	segment int
	set     uint64
	slots   int
}

const (
	// propensityDraws simulated rankings estimate a propensity to within
	// a standard error of 0.016.
	propensityDraws = 1000
	// maxCachedRankings bounds the propensities kept per second per
	// bandit placement; past it the cache starts again.
	maxCachedRankings = 4096
	// statusDraws estimate the shares Bandits reports to within 0.005.
	statusDraws = 10000
	// maxTags bounds the items a decision id carries tags for; items past
	// it are not counted live (the decision log still has them).
	maxTags = 6
	// tagLen is one tag: '.', a kind (x: experiment arm, b: bandit arm),
	// four hex digits of the touchpoint and eight of the arm.
	tagLen = 14
	// maxDecisionIDLen is the longest decision id the engine makes.
	maxDecisionIDLen = 32 + maxTags*tagLen
)

// Tally scopes: the experiment's and the bandit placement's.
func experimentScope(id string) string    { return "exp:" + id }
func banditScope(placement string) string { return "bandit:" + placement }

// banditField is a bandit tally's field: segment, touchpoint and the
// event type, e.g. "gold|cart_coupon_10|click".
func banditField(segment, touchpoint, event string) string {
	return segment + "|" + touchpoint + "|" + event
}

// hash32 is FNV-1a (32 bits) over the parts, each followed by a NUL byte.
func hash32(parts ...string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h = (h ^ uint32(p[i])) * prime
		}
		h *= prime // the NUL byte: h ^ 0 == h
	}
	return h
}

func tpHash(id string) uint16 {
	h := hash32("tp", id)
	return uint16(h ^ h>>16)
}

func newLearning(rs *rules.Ruleset, rng func() *mrand.Rand) *learning {
	l := &learning{
		exposures:  make([][]atomic.Int64, len(rs.Experiments)),
		bandits:    make([]*banditState, len(rs.Placements)),
		tpTag:      make([]uint16, len(rs.Touchpoints)),
		armTag:     make([][]uint32, len(rs.Experiments)),
		segmentTag: make([][]uint32, len(rs.Placements)),
		byTag:      map[uint32]tagTarget{},
	}
	for i := range rs.Touchpoints {
		l.tpTag[i] = tpHash(rs.Touchpoints[i].ID)
	}
	for xi := range rs.Experiments {
		x := &rs.Experiments[xi]
		arms := armNames(x.Experiment)
		l.exposures[xi] = make([]atomic.Int64, len(arms))
		l.armTag[xi] = make([]uint32, len(arms))
		for a, name := range arms {
			h := hash32("x", x.ID, name)
			l.armTag[xi][a] = h
			l.byTag[h] = tagTarget{scope: experimentScope(x.ID), arm: name}
		}
	}
	for pi := range rs.Placements {
		pl := &rs.Placements[pi]
		if pl.Bandit == nil {
			continue
		}
		b := &banditState{cfg: pl.Bandit, scope: banditScope(pl.ID), policy: bandits.Policy{MinShare: pl.Bandit.MinShare},
			segments: append([]string{""}, pl.Bandit.Segments...), slot: make([]int32, len(rs.Touchpoints))}
		for ti := range rs.Touchpoints {
			b.slot[ti] = -1
			if rs.Touchpoints[ti].Fits(pi, pl.ID) {
				b.slot[ti] = int32(len(b.tps))
				b.tps = append(b.tps, ti)
			}
		}
		l.segmentTag[pi] = make([]uint32, len(b.segments))
		for si, seg := range b.segments {
			h := hash32("b", pl.ID, seg)
			l.segmentTag[pi][si] = h
			l.byTag[h] = tagTarget{bandit: true, placement: pi, scope: b.scope, arm: seg}
		}
		b.post.Store(b.posteriors(rs, nil, rng()))
		l.bandits[pi] = b
	}
	return l
}

// armNames are an experiment's arms: its variants, then the holdout.
func armNames(x *experiments.Experiment) []string {
	out := make([]string, 0, len(x.Variants)+1)
	for _, v := range x.Variants {
		out = append(out, v.Name)
	}
	return append(out, VariantHoldout)
}

// segment is the index of the customer's segment in segments.
func (b *banditState) segment(env *rules.Env) int {
	seg := b.cfg.Segment(env)
	if seg == "" {
		return 0
	}
	for i, s := range b.cfg.Segments {
		if s == seg {
			return i + 1
		}
	}
	return 0
}

// posteriors builds the arms from the placement's tallies (nil: priors
// only).
func (b *banditState) posteriors(rs *rules.Ruleset, tallies map[string]float64, rng *mrand.Rand) *posteriors {
	n := len(b.segments) * len(b.tps)
	p := &posteriors{nTP: len(b.tps), arms: make([]bandits.Arm, n), impressions: make([]int64, n), rewards: make([]int64, n),
		props: map[propKey]*ranking{}, rng: rng}
	if tallies != nil {
		p.readAt = time.Now()
	}
	for si, seg := range b.segments {
		for i, ti := range b.tps {
			var rewards, trials int64
			if tallies != nil {
				tp := rs.Touchpoints[ti].ID
				trials = int64(tallies[banditField(seg, tp, features.EventImpression)])
				rewards = int64(tallies[banditField(seg, tp, b.cfg.Reward)])
			}
			k := si*p.nTP + i
			p.arms[k] = bandits.Posterior(b.cfg.PriorAlpha, b.cfg.PriorBeta, rewards, trials)
			p.impressions[k], p.rewards[k] = trials, rewards
		}
	}
	return p
}

// arm is touchpoint tp's posterior in segment; tp fits the placement.
func (p *posteriors) arm(b *banditState, segment, tp int) bandits.Arm {
	return p.arms[segment*p.nTP+int(b.slot[tp])]
}

// rand makes a random generator for one owner (a bandit's posteriors,
// a status report); see seedRand.
func (e *Engine) rand() *mrand.Rand {
	src := new(mrand.PCG)
	e.seedRand(src, 0)
	return mrand.New(src)
}

// seedRand seeds src at random, or, with a seed, from it and key, or (key
// 0) the next number of a sequence.
func (e *Engine) seedRand(src *mrand.PCG, key uint64) {
	if e.seed != 0 {
		if key == 0 {
			key = e.seeds.Add(1)
		}
		src.Seed(e.seed, key)
		return
	}
	var seed [16]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
	src.Seed(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))
}

// propensity returns the probability that the policy ranks touchpoint
// tps[at] at position pos, among the band tps (in any order) with arms
// their arms, counting the first slots positions. Estimates are cached
// until the posteriors are next read.
func (p *posteriors) propensity(policy bandits.Policy, segment int, tps []int, arms []bandits.Arm, slots, at, pos int) float64 {
	slots = min(slots, len(tps))
	if pos >= slots {
		return 0
	}
	var set uint64
	for _, tp := range tps {
		set += splitmix(uint64(tp) + 1) // order-independent
	}
	key := propKey{segment: segment, set: set, slots: slots}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.props[key]
	if !ok {
		// Simulate in a canonical order (by touchpoint index), so the
		// estimate serves the band in any order.
		order := make([]int, len(tps))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return tps[a] - tps[b] })
		r = &ranking{tps: make([]int, len(tps)), slots: slots}
		sorted := make([]bandits.Arm, len(tps))
		for i, j := range order {
			r.tps[i], sorted[i] = tps[j], arms[j]
		}
		r.props = policy.RankPropensities(sorted, slots, propensityDraws, p.rng)
		if len(p.props) >= maxCachedRankings {
			clear(p.props)
		}
		p.props[key] = r
	}
	i, found := slices.BinarySearch(r.tps, tps[at])
	if !found {
		return 0
	}
	return r.props[i*r.slots+pos]
}

// ranking is a cached estimate: the band's touchpoints in increasing
// order and the probability of each at each position.
type ranking struct {
	tps   []int
	slots int
	props []float64
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Learn flushes the exposures counted by this node to the store's tallies
// (WithTallies) and reads the
// bandit placements' posteriors from them, every second until ctx is done;
// it flushes once more on the way out. Failures keep what was there: the
// exposures are counted again at the next flush, the posteriors stay as
// they were.
func (e *Engine) Learn(ctx context.Context) error {
	store := e.tallies
	if store == nil {
		return nil
	}
	every := e.cfg.LearnEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		e.learnOnce(ctx, store)
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			e.flushExposures(fctx, store)
			cancel()
			return nil
		case <-t.C:
		case <-e.learnNow:
		}
	}
}

func (e *Engine) learnOnce(ctx context.Context, store features.Tallies) {
	e.flushExposures(ctx, store)
	snap := e.current.Load()
	for pi, b := range snap.learn.bandits {
		if b == nil {
			continue
		}
		tallies, err := store.ReadTallies(ctx, b.scope)
		if err != nil {
			e.learnStats.refreshFailures.Add(1)
			e.log.Debug().Err(err).Str("placement", snap.rs.Placements[pi].ID).Msg("cannot refresh bandit posteriors; keeping the last")
			continue
		}
		next := b.posteriors(snap.rs, tallies, nil)
		// Seeded, the estimates follow from the counts, not from how
		// often they were read.
		src := new(mrand.PCG)
		e.seedRand(src, countsKey(next))
		next.rng = mrand.New(src)
		if cur := b.post.Load(); !cur.readAt.IsZero() && slices.Equal(cur.impressions, next.impressions) && slices.Equal(cur.rewards, next.rewards) {
			continue // unchanged: keep the propensities estimated from them
		}
		b.post.Store(next)
	}
}

// flushExposures adds the exposures counted since the last flush to the
// store, for the snapshot being served and those replaced recently
// (decisions that started before a swap still count on the old one).
func (e *Engine) flushExposures(ctx context.Context, store features.Tallies) {
	e.learnMu.Lock()
	defer e.learnMu.Unlock()
	snaps := make([]*snapshot, 0, len(e.retired)+1)
	for _, r := range e.retired {
		snaps = append(snaps, r.snap)
	}
	snaps = append(snaps, e.current.Load())
	var tallies []features.Tally
	var taken []*atomic.Int64 // the counter each tally was taken from
	for _, snap := range snaps {
		for xi := range snap.learn.exposures {
			x := &snap.rs.Experiments[xi]
			arms := armNames(x.Experiment)
			for a := range snap.learn.exposures[xi] {
				c := &snap.learn.exposures[xi][a]
				if n := c.Swap(0); n > 0 {
					tallies = append(tallies, features.Tally{Scope: experimentScope(x.ID),
						Field: experiments.CounterField(arms[a], experiments.CounterExposures), Delta: float64(n)})
					taken = append(taken, c)
				}
			}
		}
	}
	if err := store.AddTallies(ctx, tallies); err != nil {
		e.learnStats.flushFailures.Add(1)
		e.log.Debug().Err(err).Msg("cannot flush experiment exposures; counting them again at the next flush")
		// Back where they came from; replaced snapshots are kept until
		// their exposures are written.
		for i, t := range tallies {
			taken[i].Add(int64(t.Delta))
		}
		return
	}
	for _, t := range tallies {
		e.learnStats.flushed.Add(uint64(t.Delta))
	}
	// A replaced snapshot is flushed twice: decisions in flight at the
	// swap have finished by the second.
	kept := e.retired[:0]
	for _, r := range e.retired {
		if r.flushes++; r.flushes < 2 {
			kept = append(kept, r)
		}
	}
	e.retired = kept
}

// retiredSnapshot is a replaced snapshot whose exposures are still to be
// flushed.
type retiredSnapshot struct {
	snap    *snapshot
	flushes int
}

// retire keeps a replaced snapshot for flushExposures.
func (e *Engine) retire(snap *snapshot) {
	e.learnMu.Lock()
	e.retired = append(e.retired, retiredSnapshot{snap: snap})
	e.learnMu.Unlock()
	select {
	case e.learnNow <- struct{}{}: // read the new placements' posteriors now
	default:
	}
}

// rankBands orders, by Thompson sampling over the customer's segment's
// posteriors, the candidates of each priority band of a bandit placement
// that starts before its count: bands still come first, and candidates
// further down keep their order (they show only when earlier ones are
// capped or over budget).
func (s *scratch) rankBands(b *banditState, count int) {
	if b == nil || len(s.cands) == 0 {
		return
	}
	bb := &s.band
	bb.state, bb.post, bb.segment, bb.slots = b, b.post.Load(), b.segment(s.env), count
	bb.bands, bb.tps, bb.arms = bb.bands[:0], bb.tps[:0], bb.arms[:0]
	for start := 0; start < len(s.cands) && start < count; {
		end := start + 1
		for end < len(s.cands) && s.cands[end].priority == s.cands[start].priority {
			end++
		}
		bb.bands = append(bb.bands, [2]int{start, end})
		band := s.cands[start:end]
		first := len(bb.arms)
		for _, c := range band {
			bb.arms = append(bb.arms, bb.post.arm(b, bb.segment, c.tp))
		}
		if n := len(band); n >= 2 {
			bb.order, bb.draws = slices.Grow(bb.order[:0], n)[:n], slices.Grow(bb.draws[:0], n)[:n]
			b.policy.Rank(bb.arms[first:], s.rng, bb.order, bb.draws)
			bb.ranked = append(bb.ranked[:0], band...)
			for i, j := range bb.order {
				band[i] = bb.ranked[j]
			}
		}
		// tps and arms in the band's new order, for propensityAt.
		for _, c := range band {
			bb.tps = append(bb.tps, c.tp)
		}
		for i, c := range band {
			bb.arms[first+i] = bb.post.arm(b, bb.segment, c.tp)
		}
		start = end
	}
}

// propensityAt is the probability that this policy put candidate i of the
// placement being arbitrated where it is: the probability of its place
// in its band's sampled ranking, 1 where nothing was sampled.
func (s *scratch) propensityAt(i int) float64 {
	bb := &s.band
	if bb.state == nil {
		return 1
	}
	for _, band := range bb.bands {
		start, end := band[0], band[1]
		if i < start || i >= end {
			continue
		}
		if end-start < 2 {
			return 1
		}
		return bb.post.propensity(bb.state.policy, bb.segment, bb.tps[start:end], bb.arms[start:end], bb.slots-start, i-start, i-start)
	}
	return 1
}

// tagItem records the arms an item shown in placement pl (-1 for a
// fallback) counts for: the placement's experiment arm and, when pl is a
// bandit placement, its bandit arm.
func (s *scratch) tagItem(tp, pl int) {
	if s.learn == nil {
		return
	}
	if a := s.arm; a.x >= 0 {
		s.addTag('x', tp, s.learn.armTag[a.x][a.arm])
	}
	if pl >= 0 && s.band.state != nil {
		s.addTag('b', tp, s.learn.segmentTag[pl][s.band.segment])
	}
}

func (s *scratch) addTag(kind byte, tp int, arm uint32) {
	if len(s.tags) < maxTags {
		s.tags = append(s.tags, idTag{kind: kind, tp: s.learn.tpTag[tp], arm: arm})
	}
}

// finishLearning counts the decision's exposures and appends its tags to
// its id.
func (s *scratch) finishLearning(d *Decision) {
	if s.learn == nil {
		return
	}
	for x, arm := range s.exposed {
		if arm >= 0 {
			s.learn.exposures[x][arm].Add(1)
		}
	}
	if len(s.tags) == 0 {
		return
	}
	n := 32
	for _, t := range s.tags {
		b := s.idBuf[n : n+tagLen]
		b[0], b[1] = '.', t.kind
		putHex(b[2:6], uint64(t.tp))
		putHex(b[6:14], uint64(t.arm))
		n += tagLen
	}
	d.ID = unsafe.String(&s.idBuf[0], n)
}

// Attribute fills ev.Tallies from the tags of its decision id: the
// experiment arm and bandit arm that showed ev.Touchpoint. Tags the
// ruleset no longer knows (an experiment since removed) are ignored, as
// are malformed ones: decision ids come from clients.
func (e *Engine) Attribute(ev *features.Event) {
	if len(ev.DecisionID) <= 32 || ev.Touchpoint == "" {
		return
	}
	snap := e.current.Load()
	l := snap.learn
	want := tpHash(ev.Touchpoint)
	tags := ev.DecisionID[32:]
	for n := 0; n < maxTags && len(tags) >= tagLen; n++ {
		t := tags[:tagLen]
		tags = tags[tagLen:]
		tp, ok1 := parseHex(t[2:6])
		arm, ok2 := parseHex(t[6:14])
		if t[0] != '.' || !ok1 || !ok2 || uint16(tp) != want {
			continue
		}
		target, ok := l.byTag[uint32(arm)]
		if !ok || target.bandit != (t[1] == 'b') {
			continue
		}
		if target.bandit {
			// The touchpoint names a counter: only one the placement can
			// show may, or forged names would grow the placement's hash.
			ti := snap.rs.Touchpoint(ev.Touchpoint)
			pl := &snap.rs.Placements[target.placement]
			if ti < 0 || !snap.rs.Touchpoints[ti].Fits(target.placement, pl.ID) {
				continue
			}
			ev.Tallies = append(ev.Tallies, features.Tally{Scope: target.scope, Field: banditField(target.arm, ev.Touchpoint, ev.Type), Delta: 1})
			continue
		}
		ev.Tallies = append(ev.Tallies, features.Tally{Scope: target.scope, Field: experiments.CounterField(target.arm, ev.Type), Delta: 1})
		if ev.Type == features.EventConversion && ev.Value != 0 {
			ev.Tallies = append(ev.Tallies, features.Tally{Scope: target.scope, Field: experiments.CounterField(target.arm, experiments.CounterRevenue), Delta: ev.Value})
		}
	}
}

func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// ErrNoExperiment is the error of ExperimentReport for an id the ruleset
// does not declare.
var ErrNoExperiment = errors.New("no such experiment")

// ExperimentReport reports experiment id from the live counters in the
// store's tallies.
func (e *Engine) ExperimentReport(ctx context.Context, id string) (*experiments.Report, error) {
	store := e.tallies
	if store == nil {
		return nil, errors.New("no store keeps experiment counters")
	}
	rs := e.current.Load().rs
	xi := rs.Experiment(id)
	if xi < 0 {
		return nil, ErrNoExperiment
	}
	counters, err := store.ReadTallies(ctx, experimentScope(id))
	if err != nil {
		return nil, fmt.Errorf("cannot read the counters of experiment %q: %w", id, err)
	}
	return experiments.ReportFromCounters(rs.Experiments[xi].Experiment, counters), nil
}

// ExperimentIDs lists the ruleset's experiments.
func (e *Engine) ExperimentIDs() []string { return e.current.Load().rs.ExperimentIDs() }

// BanditStatus is a Thompson placement's state, for operators: per
// segment, each touchpoint's counts, posterior mean and the share of the
// placement's traffic it gets when every touchpoint is eligible.
type BanditStatus struct {
	Placement string          `json:"placement"`
	Reward    string          `json:"reward"`
	MinShare  float64         `json:"min_share"`
	By        string          `json:"by,omitempty"`
	ReadAt    time.Time       `json:"read_at"`
	Segments  []BanditSegment `json:"segments"`
}

// BanditSegment is one segment of a BanditStatus ("" for customers
// without the segment's feature, or for a placement without by).
type BanditSegment struct {
	Segment string      `json:"segment"`
	Arms    []BanditArm `json:"arms"`
}

// BanditArm is one touchpoint's posterior in one segment.
type BanditArm struct {
	Touchpoint  string  `json:"touchpoint"`
	Impressions int64   `json:"impressions"`
	Rewards     int64   `json:"rewards"`
	Mean        float64 `json:"mean"`
	Share       float64 `json:"share"`
}

// Bandits describes every Thompson placement of the ruleset being served.
func (e *Engine) Bandits() []BanditStatus {
	snap := e.current.Load()
	rs := snap.rs
	var out []BanditStatus
	for pi, b := range snap.learn.bandits {
		if b == nil {
			continue
		}
		pl := &rs.Placements[pi]
		post := b.post.Load()
		st := BanditStatus{Placement: pl.ID, Reward: b.cfg.Reward, MinShare: b.cfg.MinShare, ReadAt: post.readAt}
		if b.cfg.By >= 0 {
			st.By = "customer." + b.cfg.ByName
		}
		rng := e.rand()
		for si, seg := range b.segments {
			bs := BanditSegment{Segment: seg}
			row := si * post.nTP
			arms := post.arms[row : row+post.nTP]
			// More draws than a decision's estimate: this is read by people.
			shares := b.policy.RankPropensities(arms, 1, statusDraws, rng)
			for i, ti := range b.tps {
				a := arms[i]
				bs.Arms = append(bs.Arms, BanditArm{Touchpoint: rs.Touchpoints[ti].ID, Impressions: post.impressions[row+i],
					Rewards: post.rewards[row+i], Mean: a.Alpha / (a.Alpha + a.Beta), Share: shares[i]})
			}
			st.Segments = append(st.Segments, bs)
		}
		out = append(out, st)
	}
	return out
}

// countsKey is a hash of the posteriors' counts (never 0).
func countsKey(p *posteriors) uint64 {
	h := uint64(1)
	for i := range p.impressions {
		h = splitmix(h ^ uint64(p.impressions[i]))
		h = splitmix(h ^ uint64(p.rewards[i]))
	}
	return h | 1
}
