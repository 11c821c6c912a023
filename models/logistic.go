package models

import (
	"fmt"
	"math"
	"slices"
)

// numTerm, hotTerm and bucketTerm are the compiled terms, one slice of
// each kind so that scoring runs three tight loops without dispatch.
type numTerm struct {
	input        int
	log1p, scale bool // scale: standardise, (x - mean) / std
	w, mean, std float64
}

type hotTerm struct {
	input   int
	weights []float64 // by category code
}

type bucketTerm struct {
	input           int
	bounds, weights []float64
}

type logistic struct {
	intercept float64
	nums      []numTerm
	hots      []hotTerm
	buckets   []bucketTerm
	// codes maps the strings of each string input to their codes; nil for
	// number inputs.
	codes []map[string]int
	// names lists each string input's categories by code, for inputs with
	// few of them: comparing a handful of short strings is quicker than
	// hashing one.
	names  [][]string
	inputs int
}

// scanCategories is the most categories encode finds by comparing.
const scanCategories = 8

// specError is a problem with one term (term -1: the spec as a whole) and
// the field it is in, so that a reader can point at where it is written.
type specError struct {
	term  int
	field string
	msg   string
}

func (e *specError) Error() string {
	if e.term < 0 {
		return e.msg
	}
	return fmt.Sprintf("terms[%d]: %s", e.term, e.msg)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// checkSpec checks a spec as NewLogistic documents it.
func checkSpec(spec LogisticSpec) *specError {
	fail := func(term int, field, format string, args ...any) *specError {
		return &specError{term: term, field: field, msg: fmt.Sprintf(format, args...)}
	}
	if !finite(spec.Intercept) {
		return fail(-1, "intercept", "intercept must be a finite number")
	}
	if len(spec.Terms) == 0 {
		return fail(-1, "terms", "a logistic model needs at least one term")
	}
	kinds := map[string]InputKind{}
	first := map[string]int{}
	for i, t := range spec.Terms {
		if t.Input == "" {
			return fail(i, "input", "the term has no input")
		}
		oneHot := t.Categories != nil || t.CategoryWeights != nil
		buckets := t.Bounds != nil || t.BucketWeights != nil
		numeric := t.Weight != 0 || t.Log1p || t.Mean != 0 || t.Std != 0
		kind := Number
		switch {
		case oneHot && buckets:
			return fail(i, "buckets", "a term is one-hot or buckets, not both")
		case oneHot && numeric:
			return fail(i, "weight", "a one-hot term gives a weight per category; weight, log1p, mean and std do not apply")
		case buckets && numeric:
			return fail(i, "weight", "a bucket term gives a weight per bucket; weight, log1p, mean and std do not apply")
		case oneHot:
			kind = String
			if len(t.Categories) == 0 {
				return fail(i, "one_hot", "the one-hot term has no categories")
			}
			if len(t.CategoryWeights) != len(t.Categories) {
				return fail(i, "one_hot", "the one-hot term has %d categories and %d weights", len(t.Categories), len(t.CategoryWeights))
			}
			seen := map[string]bool{}
			for k, c := range t.Categories {
				if seen[c] {
					return fail(i, "one_hot", "category %q appears twice", c)
				}
				seen[c] = true
				if !finite(t.CategoryWeights[k]) {
					return fail(i, "one_hot", "the weight of category %q must be a finite number", c)
				}
			}
		case buckets:
			if len(t.BucketWeights) != len(t.Bounds)+1 {
				return fail(i, "buckets", "buckets needs one more weight than bounds (%d bounds, %d weights): below the first bound, between bounds, above the last", len(t.Bounds), len(t.BucketWeights))
			}
			for k, b := range t.Bounds {
				if !finite(b) {
					return fail(i, "bounds", "bound %d must be a finite number", k)
				}
				if k > 0 && !(b > t.Bounds[k-1]) {
					return fail(i, "bounds", "bounds must ascend: bound %d (%v) is not above bound %d (%v)", k, b, k-1, t.Bounds[k-1])
				}
			}
			for k, w := range t.BucketWeights {
				if !finite(w) {
					return fail(i, "weights", "bucket weight %d must be a finite number", k)
				}
			}
		default:
			if !finite(t.Weight) {
				return fail(i, "weight", "weight must be a finite number")
			}
			if !finite(t.Mean) {
				return fail(i, "mean", "mean must be a finite number")
			}
			if !finite(t.Std) || t.Std < 0 {
				return fail(i, "std", "std must be a finite number above 0")
			}
			if t.Mean != 0 && t.Std == 0 {
				return fail(i, "mean", "mean is set without std; standardisation needs both")
			}
		}
		if k, ok := kinds[t.Input]; ok && k != kind {
			return fail(i, "input", "input %q is a %s here but a %s in terms[%d]; one input is a number or a string", t.Input, kind, k, first[t.Input])
		}
		if _, ok := kinds[t.Input]; !ok {
			kinds[t.Input], first[t.Input] = kind, i
		}
	}
	return nil
}

// NewLogistic checks spec and builds its model. Its inputs are the terms'
// inputs in the order they first appear; an input may feed several terms
// (a number and its buckets, say) but is either a number or a string.
// Encode gives a string input's categories codes in the order they first
// appear across its terms.
func NewLogistic(spec LogisticSpec) (*Model, error) {
	if err := checkSpec(spec); err != nil {
		return nil, &Error{Message: err.Error()}
	}
	l := &logistic{intercept: spec.Intercept}
	var inputs []Input
	index := map[string]int{}
	for _, t := range spec.Terms {
		i, ok := index[t.Input]
		if !ok {
			i = len(inputs)
			index[t.Input] = i
			kind := Number
			if t.Categories != nil {
				kind = String
			}
			inputs = append(inputs, Input{Name: t.Input, Kind: kind})
			l.codes = append(l.codes, nil)
		}
		if t.Categories != nil {
			if l.codes[i] == nil {
				l.codes[i] = map[string]int{}
			}
			for _, c := range t.Categories {
				if _, ok := l.codes[i][c]; !ok {
					l.codes[i][c] = len(l.codes[i])
				}
			}
		}
	}
	for _, t := range spec.Terms {
		in := index[t.Input]
		switch {
		case t.Categories != nil:
			w := make([]float64, len(l.codes[in]))
			for k, c := range t.Categories {
				w[l.codes[in][c]] = t.CategoryWeights[k]
			}
			l.hots = append(l.hots, hotTerm{input: in, weights: w})
		case t.Bounds != nil || t.BucketWeights != nil:
			l.buckets = append(l.buckets, bucketTerm{input: in,
				bounds: slices.Clone(t.Bounds), weights: slices.Clone(t.BucketWeights)})
		default:
			l.nums = append(l.nums, numTerm{input: in, w: t.Weight,
				log1p: t.Log1p, scale: t.Std != 0, mean: t.Mean, std: t.Std})
		}
	}
	l.inputs = len(inputs)
	l.names = make([][]string, len(inputs))
	for i, codes := range l.codes {
		if codes != nil && len(codes) <= scanCategories {
			l.names[i] = make([]string, len(codes))
			for name, c := range codes {
				l.names[i][c] = name
			}
		}
	}
	return &Model{
		Type:        Logistic,
		Objective:   "logistic",
		Probability: true,
		Inputs:      inputs,
		impl:        l,
		slope:       1,
	}, nil
}

// Each term contributes 0 when its input is missing (NaN), an unknown
// category, or a number its transform cannot take (log1p below -1 is NaN).

func (t *numTerm) value(v float64) float64 {
	if t.log1p {
		v = math.Log1p(v)
	}
	if t.scale {
		v = (v - t.mean) / t.std
	}
	if c := t.w * v; c == c {
		return c
	}
	return 0
}

func (t *hotTerm) value(v float64) float64 {
	if v >= 0 && v < float64(len(t.weights)) {
		if c := int(v); float64(c) == v {
			return t.weights[c]
		}
	}
	return 0
}

func (t *bucketTerm) value(v float64) float64 {
	if v != v {
		return 0
	}
	return t.weights[bucket(t.bounds, v)]
}

// bucket is the number of bounds <= v. Few bounds are counted without
// branches (where v falls is as good as random); many are searched.
func bucket(bounds []float64, v float64) int {
	if len(bounds) <= 16 {
		k := int32(0)
		for _, b := range bounds {
			k += bit(b <= v)
		}
		return int(k)
	}
	lo, hi := 0, len(bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// margin is the terms' values summed, written out rather than called:
// the calls would cost a third of the time.
func (l *logistic) margin(x []float64) float64 {
	x = x[:l.inputs]
	z := l.intercept
	for i := range l.nums {
		t := &l.nums[i]
		v := x[t.input]
		if t.log1p {
			v = math.Log1p(v)
		}
		if t.scale {
			v = (v - t.mean) / t.std
		}
		if c := t.w * v; c == c {
			z += c
		}
	}
	for i := range l.hots {
		t := &l.hots[i]
		z += t.value(x[t.input])
	}
	for i := range l.buckets {
		t := &l.buckets[i]
		if v := x[t.input]; v == v {
			z += t.weights[bucket(t.bounds, v)]
		}
	}
	return z
}

func (l *logistic) contributions(x, contrib []float64) float64 {
	x = x[:l.inputs]
	contrib = contrib[:l.inputs]
	clear(contrib)
	for i := range l.nums {
		t := &l.nums[i]
		contrib[t.input] += t.value(x[t.input])
	}
	for i := range l.hots {
		t := &l.hots[i]
		contrib[t.input] += t.value(x[t.input])
	}
	for i := range l.buckets {
		t := &l.buckets[i]
		contrib[t.input] += t.value(x[t.input])
	}
	return l.intercept
}

func (l *logistic) encode(i int, s string) float64 {
	if i < 0 || i >= len(l.codes) || l.codes[i] == nil {
		return math.NaN()
	}
	if names := l.names[i]; names != nil {
		for c, n := range names {
			if n == s {
				return float64(c)
			}
		}
		return math.NaN()
	}
	if c, ok := l.codes[i][s]; ok {
		return float64(c)
	}
	return math.NaN()
}
