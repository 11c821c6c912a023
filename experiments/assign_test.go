package experiments

import (
	"fmt"
	"math"
	"testing"
)

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c-%06d", i)
	}
	return out
}

// Over 100,000 ids each variant and the holdout get their share within
// one percentage point.
func TestSharesFollowWeights(t *testing.T) {
	e := &Experiment{ID: "cart_coupon_test", Salt: "s1", Variants: []Variant{{"control", 45}, {"ten_percent", 45}}, Holdout: 10}
	if err := Prepare([]Layered{{Experiment: e}}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	all := ids(100000)
	for _, id := range all {
		a := e.Assign(id)
		switch {
		case !a.In:
			t.Fatalf("%s is outside an experiment that has its whole layer", id)
		case a.Holdout:
			counts["holdout"]++
		default:
			counts[e.Variants[a.Variant].Name]++
		}
	}
	for name, want := range map[string]float64{"control": 45, "ten_percent": 45, "holdout": 10} {
		got := 100 * float64(counts[name]) / float64(len(all))
		if math.Abs(got-want) > 1 {
			t.Errorf("%s: %.2f%% of ids, want %v%% ± 1", name, got, want)
		}
	}
}

// The assignment depends only on salt, id and customer: a copy built
// elsewhere (another node, after a restart) agrees on every id; another
// salt reshuffles.
func TestAssignmentIsSticky(t *testing.T) {
	build := func(salt string) *Experiment {
		e := &Experiment{ID: "x", Salt: salt, Variants: []Variant{{"a", 1}, {"b", 1}, {"c", 2}}, Holdout: 5}
		if err := Prepare([]Layered{{Experiment: e}}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b, other := build("salt"), build("salt"), build("pepper")
	moved := 0
	for _, id := range ids(20000) {
		if a.Assign(id) != b.Assign(id) {
			t.Fatalf("%s: %+v on one node, %+v on another", id, a.Assign(id), b.Assign(id))
		}
		if a.Assign(id) != other.Assign(id) {
			moved++
		}
	}
	if moved < 20000/3 {
		t.Errorf("a new salt moved only %d of 20000 ids", moved)
	}
}

// Experiments of one layer never share a customer, and split the layer
// as asked; an experiment in another layer is independent of them.
func TestLayersDoNotOverlap(t *testing.T) {
	a := &Experiment{ID: "a", Salt: "s", Layer: "cart", Variants: []Variant{{"on", 1}}}
	b := &Experiment{ID: "b", Salt: "s", Layer: "cart", Variants: []Variant{{"on", 1}, {"off", 1}}}
	c := &Experiment{ID: "c", Salt: "s", Layer: "cart", Variants: []Variant{{"on", 1}}}
	other := &Experiment{ID: "d", Salt: "s", Layer: "home", Variants: []Variant{{"on", 1}}}
	if err := Prepare([]Layered{{Experiment: a, Traffic: 50}, {Experiment: b}, {Experiment: c}, {Experiment: other}}); err != nil {
		t.Fatal(err)
	}
	in := map[string]int{}
	both := 0
	for _, id := range ids(100000) {
		n := 0
		for _, e := range []*Experiment{a, b, c} {
			if e.Assign(id).In {
				in[e.ID]++
				n++
			}
		}
		if n > 1 {
			t.Fatalf("%s is in %d experiments of layer cart", id, n)
		}
		if n == 1 && other.Assign(id).In {
			both++
		}
	}
	for id, want := range map[string]float64{"a": 50, "b": 25, "c": 25} {
		if got := float64(in[id]) / 1000; math.Abs(got-want) > 1 {
			t.Errorf("experiment %s has %.2f%% of the layer, want %v%%", id, got, want)
		}
	}
	if both != in["a"]+in["b"]+in["c"] {
		t.Errorf("the home layer's only experiment should hold everyone: %d of %d", both, in["a"]+in["b"]+in["c"])
	}
}

func TestPrepareRefuses(t *testing.T) {
	for name, list := range map[string][]Layered{
		"no variants":   {{Experiment: &Experiment{ID: "x"}}},
		"zero weight":   {{Experiment: &Experiment{ID: "x", Variants: []Variant{{"a", 0}}}}},
		"holdout 100":   {{Experiment: &Experiment{ID: "x", Variants: []Variant{{"a", 1}}, Holdout: 100}}},
		"layer over":    {{Experiment: &Experiment{ID: "x", Layer: "l", Variants: []Variant{{"a", 1}}}, Traffic: 60}, {Experiment: &Experiment{ID: "y", Layer: "l", Variants: []Variant{{"a", 1}}}, Traffic: 50}},
		"salts differ":  {{Experiment: &Experiment{ID: "x", Layer: "l", Salt: "1", Variants: []Variant{{"a", 1}}}}, {Experiment: &Experiment{ID: "y", Layer: "l", Salt: "2", Variants: []Variant{{"a", 1}}}}},
		"traffic above": {{Experiment: &Experiment{ID: "x", Variants: []Variant{{"a", 1}}}, Traffic: 101}},
	} {
		if err := Prepare(list); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The hash is documented so that clients can compute it. These values
// come from a separate implementation of the documented steps (FNV-1a 64
// over salt NUL key NUL id, then SplitMix64's finaliser), written in
// Python from the doc comment.
func TestHashMatchesItsDescription(t *testing.T) {
	for _, c := range []struct {
		salt, key, id string
		want          uint64
	}{
		{"", "", "", 8917707823322109644},
		{"salt", "cart_coupon_test", "c-000042", 9223273834600817385},
		{"s1", "layer:cart", "c-000042", 3299480297678994071},
	} {
		if got := Hash(c.salt, c.key, c.id); got != c.want {
			t.Errorf("Hash(%q, %q, %q) = %d, want %d", c.salt, c.key, c.id, got, c.want)
		}
	}
}

func BenchmarkAssign(b *testing.B) {
	e := &Experiment{ID: "cart_coupon_test", Salt: "s1", Layer: "cart", Variants: []Variant{{"control", 45}, {"ten_percent", 45}}, Holdout: 10}
	if err := Prepare([]Layered{{Experiment: e}}); err != nil {
		b.Fatal(err)
	}
	all := ids(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = e.Assign(all[i&1023])
		i++
	}
}
