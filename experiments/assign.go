// Package experiments assigns customers to the variants of A/B tests:
// deterministically, so that every node, every restart and any client that
// knows an experiment's salt puts a customer in the same variant, and
// without overlap between the experiments of one layer. It knows nothing
// of rules or requests; the rules package declares experiments and the
// engine asks here who is in which.
package experiments

import (
	"errors"
	"fmt"
	"math"
)

// Buckets is how finely traffic is split: a share is a whole number of
// buckets out of 10,000, so weights and holdouts have two decimals of a
// percent.
const Buckets = 10000

// Experiment is one test, ready to assign.
type Experiment struct {
	ID string
	// Salt changes every assignment when the experiment is restarted
	// from scratch; the same salt keeps them.
	Salt string
	// Layer groups experiments that must never share a customer; empty
	// puts the experiment in a layer of its own.
	Layer    string
	Variants []Variant
	// Holdout is the share of the experiment's customers (0–100 percent)
	// who get no variant and only fallbacks.
	Holdout float64

	// layerFrom and layerTo are the experiment's buckets of its layer,
	// hashed under layerHashKey.
	layerFrom, layerTo uint32
	layerHashKey       string
	// cut[i] is the first bucket after variant i within the experiment;
	// buckets below holdoutTo are the holdout.
	holdoutTo uint32
	cut       []uint32
}

// Variant is one arm of an experiment with its weight (any positive
// numbers; they are shares of what the holdout leaves).
type Variant struct {
	Name   string
	Weight float64
}

// Assignment is where a customer falls in an experiment.
type Assignment struct {
	// In is false when the customer is outside the experiment's share of
	// its layer (another experiment of the layer has them).
	In bool
	// Holdout is set for customers held out: no variant, fallbacks only.
	Holdout bool
	// Variant is the index in Experiment.Variants (-1 when not In or held out).
	Variant int
}

// Hash is the assignment hash: FNV-1a (64 bits) of salt, a NUL byte, key,
// a NUL byte and the customer id, mixed by SplitMix64's finaliser. It is a
// few lines in any language, so clients can compute assignments too:
// bucket = Hash(...) % Buckets.
func Hash(salt, key, customerID string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime
	}
	h *= prime // the NUL byte: h ^ 0 is h
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h *= prime
	for i := 0; i < len(customerID); i++ {
		h = (h ^ uint64(customerID[i])) * prime
	}
	// SplitMix64's finaliser spreads FNV's weak low bits, which the
	// modulo reads, across the whole word.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Assign places a customer. It allocates nothing.
//
// Two hashes decide: the layer's (key "layer:" + layer) picks a bucket of
// the layer, which says which experiment of the layer, if any, has the
// customer; the experiment's own (key: its id) picks a bucket within the
// experiment: the holdout first, then the variants in order by weight. The
// two are independent, so an experiment's split does not depend on its
// neighbours in the layer.
func (e *Experiment) Assign(customerID string) Assignment {
	lb := uint32(Hash(e.Salt, e.layerHashKey, customerID) % Buckets)
	if lb < e.layerFrom || lb >= e.layerTo {
		return Assignment{Variant: -1}
	}
	b := uint32(Hash(e.Salt, e.ID, customerID) % Buckets)
	if b < e.holdoutTo {
		return Assignment{In: true, Holdout: true, Variant: -1}
	}
	for i, c := range e.cut {
		if b < c {
			return Assignment{In: true, Variant: i}
		}
	}
	return Assignment{In: true, Variant: len(e.cut) - 1}
}

func (e *Experiment) layerKey() string {
	if e.Layer == "" {
		return "experiment:" + e.ID
	}
	return "layer:" + e.Layer
}

// Layered is an experiment with its share of its layer (0–100 percent; 0
// means an equal part of what the layer's other experiments leave).
type Layered struct {
	*Experiment
	Traffic float64
}

// Prepare checks experiments and splits each layer between its
// experiments, in the order given: they take consecutive ranges of the
// layer's buckets, so adding an experiment at the end of a layer moves no
// customer of the others. Experiments must share the salt within a layer.
func Prepare(list []Layered) error {
	byLayer := map[string][]Layered{}
	var order []string
	for _, l := range list {
		e := l.Experiment
		if err := e.check(); err != nil {
			return fmt.Errorf("experiment %s: %w", e.ID, err)
		}
		if l.Traffic < 0 || l.Traffic > 100 || math.IsNaN(l.Traffic) {
			return fmt.Errorf("experiment %s: traffic must be between 0 and 100 percent", e.ID)
		}
		key := e.layerKey()
		e.layerHashKey = key
		if _, ok := byLayer[key]; !ok {
			order = append(order, key)
		}
		byLayer[key] = append(byLayer[key], l)
	}
	for _, key := range order {
		members := byLayer[key]
		fixed, open := 0.0, 0
		for _, m := range members {
			if m.Salt != members[0].Salt {
				return fmt.Errorf("experiment %s: experiments of layer %s must share a salt, or the layer's split differs between them", m.ID, m.Layer)
			}
			if m.Traffic == 0 {
				open++
			}
			fixed += m.Traffic
		}
		if fixed > 100+1e-9 {
			return fmt.Errorf("layer %s: its experiments take %.4g%% of its traffic, more than 100%%", members[0].Layer, fixed)
		}
		rest := (100 - fixed) / math.Max(float64(open), 1)
		from := uint32(0)
		for _, m := range members {
			share := m.Traffic
			if share == 0 {
				share = rest
			}
			to := from + uint32(math.Round(share*Buckets/100))
			if to > Buckets {
				to = Buckets
			}
			m.layerFrom, m.layerTo = from, to
			from = to
		}
	}
	return nil
}

func (e *Experiment) check() error {
	if len(e.Variants) == 0 {
		return errors.New("needs at least one variant")
	}
	if e.Holdout < 0 || e.Holdout >= 100 || math.IsNaN(e.Holdout) {
		return errors.New("holdout must be at least 0 and below 100 percent")
	}
	total := 0.0
	for _, v := range e.Variants {
		if !(v.Weight > 0) || math.IsInf(v.Weight, 0) {
			return fmt.Errorf("variant %s: weight must be above 0", v.Name)
		}
		total += v.Weight
	}
	e.holdoutTo = uint32(math.Round(e.Holdout * Buckets / 100))
	e.cut = e.cut[:0]
	left := float64(Buckets - e.holdoutTo)
	acc := 0.0
	for _, v := range e.Variants {
		acc += v.Weight
		e.cut = append(e.cut, e.holdoutTo+uint32(math.Round(left*acc/total)))
	}
	e.cut[len(e.cut)-1] = Buckets
	return nil
}

// Share is the probability that a customer who enters the experiment gets
// variant v (an index in Variants), or the holdout for v < 0: the
// propensity a decision log records for an item the assignment chose.
func (e *Experiment) Share(v int) float64 {
	if v < 0 {
		return e.Holdout / 100
	}
	total := 0.0
	for _, x := range e.Variants {
		total += x.Weight
	}
	if v >= len(e.Variants) || total <= 0 {
		return 0
	}
	return (100 - e.Holdout) / 100 * e.Variants[v].Weight / total
}
