package models

import (
	"fmt"
	"math"
	"slices"
)

// Term kinds, as compiled.
const (
	termNumber uint8 = iota
	termOneHot
	termBuckets
)

// lterm is a Term compiled for scoring.
type lterm struct {
	kind  uint8
	log1p bool
	scale bool // standardise: (x - mean) / std
	input int
	w     float64
	mean  float64
	std   float64
	// bounds are a bucket term's bounds. weights are its bucket weights, or
	// a one-hot term's weights by category code.
	bounds  []float64
	weights []float64
}

type logistic struct {
	intercept float64
	terms     []lterm
	// codes maps the strings of each string input to their codes; nil for
	// number inputs.
	codes  []map[string]int
	inputs int
}

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
			l.terms = append(l.terms, lterm{kind: termOneHot, input: in, weights: w})
		case t.Bounds != nil || t.BucketWeights != nil:
			l.terms = append(l.terms, lterm{kind: termBuckets, input: in,
				bounds: slices.Clone(t.Bounds), weights: slices.Clone(t.BucketWeights)})
		default:
			l.terms = append(l.terms, lterm{kind: termNumber, input: in, w: t.Weight,
				log1p: t.Log1p, scale: t.Std != 0, mean: t.Mean, std: t.Std})
		}
	}
	l.inputs = len(inputs)
	return &Model{
		Type:        Logistic,
		Objective:   "logistic",
		Probability: true,
		Inputs:      inputs,
		impl:        l,
		slope:       1,
	}, nil
}

// value is term t's contribution for input value v; 0 when v is missing,
// an unknown category, or a number the term's transform cannot take
// (log1p of a value below -1).
func (t *lterm) value(v float64) float64 {
	if v != v {
		return 0
	}
	switch t.kind {
	case termNumber:
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
	case termOneHot:
		if c := int(v); v >= 0 && c < len(t.weights) && float64(c) == v {
			return t.weights[c]
		}
		return 0
	}
	// The number of bounds <= v, by binary search.
	lo, hi := 0, len(t.bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.bounds[mid] <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return t.weights[lo]
}

func (l *logistic) margin(x []float64) float64 {
	x = x[:l.inputs]
	z := l.intercept
	for i := range l.terms {
		t := &l.terms[i]
		z += t.value(x[t.input])
	}
	return z
}

func (l *logistic) contributions(x, contrib []float64) float64 {
	x = x[:l.inputs]
	contrib = contrib[:l.inputs]
	clear(contrib)
	for i := range l.terms {
		t := &l.terms[i]
		contrib[t.input] += t.value(x[t.input])
	}
	return l.intercept
}

func (l *logistic) encode(i int, s string) float64 {
	if i < 0 || i >= len(l.codes) || l.codes[i] == nil {
		return math.NaN()
	}
	if c, ok := l.codes[i][s]; ok {
		return float64(c)
	}
	return math.NaN()
}
