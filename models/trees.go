package models

import (
	"fmt"
	"math"
)

// node is one node of a tree ensemble. Every tree of an ensemble lives in
// one slice, each in preorder, so that a split's left child is the node
// right after it and only the right child needs an index. 16 bytes: four
// nodes to a cache line.
type node struct {
	// value is a split's threshold: x <= value goes left. A LightGBM
	// categorical split keeps its category set's index here instead. A
	// leaf's is NaN, which no input passes.
	value float64
	// right is a split's right child, and a leaf itself: a step from a
	// leaf stays on it, so a traversal can take as many steps as the tree
	// is deep without testing for leaves, and several trees can be walked
	// in step.
	right int32
	// info is the input index in its low bits and the flags above them
	// (0 for a leaf).
	info uint32
}

const (
	inputBits = 24
	inputMask = 1<<inputBits - 1
	// maxInputs bounds the inputs of a tree model, which keeps the inputs
	// list of a small but hostile file (num_feature: a billion) in check.
	maxInputs = 1 << 20

	// flagMissingLeft sends a missing value (NaN) left. For a LightGBM
	// zero-as-missing split it sends zero and NaN left.
	missingLeftBit         = 24
	flagMissingLeft uint32 = 1 << missingLeftBit
	// The flags below take a split off the fast path; only LightGBM sets
	// them.
	flagCategorical uint32 = 1 << 25 // LightGBM's CategoricalDecision
	flagZeroMissing uint32 = 1 << 26 // missing type Zero: NaN and ±1e-35 are missing
	flagTinyZero    uint32 = 1 << 27 // threshold within ±1e-35: such inputs count as 0
	slowFlags              = flagCategorical | flagZeroMissing | flagTinyZero
)

// lgbZero is LightGBM's kZeroThreshold, a float literal widened to double:
// LightGBM treats an input within ±lgbZero as zero.
var lgbZero = float64(float32(1e-35))

// catSet is one categorical split's category bitset: bits[start:end].
type catSet struct{ start, end int32 }

// ensemble is a sum of trees in the flat layout; it scores both XGBoost and
// LightGBM models, which differ only in how they sum and where they start.
type ensemble struct {
	nodes []node
	// out is, per node, a leaf's output (0 for splits).
	out []float64
	// mean is, per node, the cover-weighted mean output of the leaves under
	// it (a leaf's own output for a leaf): the expected value at the node,
	// from which Saabas-style contributions are taken.
	mean  []float64
	roots []int32
	// depth is each tree's depth. margin takes trees four at a time:
	// block k takes steps[k] steps in lockstep, or, when walk[k], walks
	// each tree to its leaf.
	depth []int32
	steps []int32
	walk  []bool
	bits  []uint32
	sets  []catSet
	// special is set when some split needs slow (LightGBM's categorical,
	// zero-as-missing and tiny-threshold splits).
	special bool

	// base is the margin before any tree (XGBoost's base score as a
	// margin; 0 for LightGBM, which folds it into the first tree).
	base float64
	// sum32 sums in float32 as XGBoost does; LightGBM sums in float64.
	sum32 bool
	// average divides the sum by the number of trees (LightGBM's random
	// forest mode, average_output).
	average bool
	inputs  int
}

func (e *ensemble) isLeaf(i int32) bool { return e.nodes[i].right == i }

// lockstepDepth is the deepest block of trees walked in lockstep.
const lockstepDepth = 8

// done computes what scoring needs once every tree is in. Four trees up to
// lockstepDepth deep (XGBoost's depth-wise trees) are walked in lockstep
// as deep as the deepest of them goes: extra steps on a leaf cost less
// than testing for leaves, and far less than the mispredicted branches of
// a walk that tests. Deeper trees (LightGBM's, grown leaf by leaf, are
// often a dozen levels deep where most paths are short) are walked one by
// one to their leaves.
func (e *ensemble) done() {
	e.steps, e.walk = e.steps[:0], e.walk[:0]
	for k := 0; k+4 <= len(e.depth); k += 4 {
		hi := max(e.depth[k], e.depth[k+1], e.depth[k+2], e.depth[k+3])
		e.steps, e.walk = append(e.steps, hi), append(e.walk, hi > lockstepDepth)
	}
	for _, n := range e.nodes {
		if n.info&slowFlags != 0 {
			e.special = true
		}
	}
}

// next is one step from node i: to the child x goes to, or, from a leaf,
// to itself. It has no branch but the bounds checks: which way a value
// goes is as good as random, and a mispredicted branch per level would
// cost more than the rest of the step. NaN fails the threshold test and
// goes left only where the missing-left flag says so.
func next(nodes []node, x []float64, i int32) int32 {
	n := &nodes[i]
	v := x[n.info&inputMask]
	left := bit(v <= n.value) | bit(v != v)&int32(n.info>>missingLeftBit&1)
	return n.right ^ (n.right^(i+1))&-left
}

// bit is 1 for true; the compiler makes it a SETcc, not a branch.
func bit(b bool) int32 {
	var r int32
	if b {
		r = 1
	}
	return r
}

// nextAny is next for ensembles with LightGBM's special splits.
func (e *ensemble) nextAny(x []float64, i int32) int32 {
	n := &e.nodes[i]
	if n.info&slowFlags != 0 {
		return e.slow(n, i, x[n.info&inputMask])
	}
	return next(e.nodes, x, i)
}

// leaf returns the leaf x reaches from root i.
func (e *ensemble) leaf(i int32, x []float64) int32 {
	nodes := e.nodes
	for {
		n := &nodes[i]
		if n.right == i {
			return i
		}
		v := x[n.info&inputMask]
		switch {
		case n.info&slowFlags != 0:
			i = e.slow(n, i, v)
		case v <= n.value:
			i++
		case v > n.value:
			i = n.right
		case n.info&flagMissingLeft != 0: // NaN
			i++
		default:
			i = n.right
		}
	}
}

// sum adds the leaves x reaches to s, tree by tree in order (the order
// matters to float32 sums).
func sum[F float32 | float64](e *ensemble, x []float64, s F) F {
	nodes, out, roots := e.nodes, e.out, e.roots
	k := 0
	for blk, steps := range e.steps {
		r := roots[k : k+4 : k+4]
		a, b, c, d := r[0], r[1], r[2], r[3]
		if e.walk[blk] {
			a, b, c, d = e.leaf(a, x), e.leaf(b, x), e.leaf(c, x), e.leaf(d, x)
		} else {
			for range steps {
				a = next(nodes, x, a)
				b = next(nodes, x, b)
				c = next(nodes, x, c)
				d = next(nodes, x, d)
			}
		}
		s += F(out[a])
		s += F(out[b])
		s += F(out[c])
		s += F(out[d])
		k += 4
	}
	for ; k < len(roots); k++ {
		s += F(out[e.leaf(roots[k], x)])
	}
	return s
}

// sumAny is sum for ensembles with LightGBM's special splits, where a
// plain walk, tree by tree, measures faster than the lockstep one.
func sumAny[F float32 | float64](e *ensemble, x []float64, s F) F {
	for _, r := range e.roots {
		s += F(e.out[e.leaf(r, x)])
	}
	return s
}

// slow decides LightGBM's splits that a threshold alone does not:
// categorical splits, zero-as-missing splits, and thresholds within ±1e-35,
// where LightGBM's prediction API has already turned such inputs into 0.
func (e *ensemble) slow(n *node, i int32, v float64) int32 {
	left := i + 1
	switch {
	case n.info&flagCategorical != 0:
		if e.inSet(int(n.value), v) {
			return left
		}
		return n.right
	case n.info&flagZeroMissing != 0:
		if v != v || (v >= -lgbZero && v <= lgbZero) {
			if n.info&flagMissingLeft != 0 {
				return left
			}
			return n.right
		}
	default: // flagTinyZero
		if v != v {
			if n.info&flagMissingLeft != 0 {
				return left
			}
			return n.right
		}
		if v >= -lgbZero && v <= lgbZero {
			v = 0
		}
	}
	if v <= n.value {
		return left
	}
	return n.right
}

// inSet is LightGBM's CategoricalDecision: the input, truncated to an int,
// is in the split's set. NaN, negative categories and values past int32
// (which LightGBM's cast turns negative) are in no set.
func (e *ensemble) inSet(set int, v float64) bool {
	if !(v > -1 && v < 1<<31) {
		return false
	}
	c := int(v) // truncates toward zero, as C's cast does: -0.5 is category 0
	s := e.sets[set]
	w := int32(c >> 5)
	if w >= s.end-s.start {
		return false
	}
	return e.bits[s.start+w]>>(c&31)&1 != 0
}

func (e *ensemble) margin(x []float64) float64 {
	x = x[:e.inputs]
	if e.sum32 {
		if e.special {
			return float64(sumAny(e, x, float32(e.base)))
		}
		return float64(sum(e, x, float32(e.base)))
	}
	var s float64
	if e.special {
		s = sumAny(e, x, e.base)
	} else {
		s = sum(e, x, e.base)
	}
	if e.average {
		s /= float64(len(e.roots))
	}
	return s
}

// contributions follows each tree's path and credits each split's input
// with the change in expected value the split makes (Saabas). The bias is
// the base plus each tree's expected value at its root, so bias plus the
// contributions is the sum of the leaves reached.
func (e *ensemble) contributions(x, contrib []float64) float64 {
	x = x[:e.inputs]
	contrib = contrib[:e.inputs]
	clear(contrib)
	bias := e.base
	for _, r := range e.roots {
		i := r
		bias += e.mean[i]
		for !e.isLeaf(i) {
			j := e.nextAny(x, i)
			contrib[e.nodes[i].info&inputMask] += e.mean[j] - e.mean[i]
			i = j
		}
	}
	if e.average {
		n := float64(len(e.roots))
		for k := range contrib {
			contrib[k] /= n
		}
		bias /= n
	}
	return bias
}

// encode: tree models read numbers only.
func (e *ensemble) encode(int, string) float64 { return math.NaN() }

// rawNode is one node as a reader found it, in the file's own numbering.
type rawNode struct {
	left, right int32 // children; both -1 for a leaf
	info        uint32
	value       float64
	cover       float64 // XGBoost's sum_hessian, LightGBM's data count
}

// addTree appends a tree, given in the file's numbering with its root at 0,
// in preorder. Every node must be reached from the root exactly once; up
// to unreached nodes may be left out (XGBoost's deleted nodes). check
// vets each reached node before it is used. It returns the tree's depth.
func (e *ensemble) addTree(raw []rawNode, unreached int, check func(i int32) error) (depth int, err error) {
	n := len(raw)
	if n == 0 {
		return 0, fmt.Errorf("the tree has no nodes")
	}
	if len(e.nodes)+n >= math.MaxInt32 {
		return 0, fmt.Errorf("the model has more than %d nodes", math.MaxInt32)
	}
	start := int32(len(e.nodes))
	placed := make([]int32, n) // new index + 1; 0 while not reached
	type item struct{ at, depth int32 }
	stack := []item{{0, 0}}
	covers := make([]float64, 0, n)
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		o := it.at
		if placed[o] != 0 {
			return 0, fmt.Errorf("node %d is reached twice from the root (the tree has a cycle or a shared node)", o)
		}
		if err := check(o); err != nil {
			return 0, err
		}
		r := &raw[o]
		at := int32(len(e.nodes))
		placed[o] = at + 1
		covers = append(covers, r.cover)
		if r.left < 0 && r.right < 0 {
			e.nodes = append(e.nodes, node{value: math.NaN(), right: at})
			e.out = append(e.out, r.value)
			depth = max(depth, int(it.depth))
			continue
		}
		e.nodes = append(e.nodes, node{value: r.value, info: r.info})
		e.out = append(e.out, 0)
		if r.left < 0 || r.right < 0 {
			return 0, fmt.Errorf("node %d has one child (left %d, right %d); a split has two, a leaf none", o, r.left, r.right)
		}
		for _, c := range []int32{r.left, r.right} {
			if int(c) >= n {
				return 0, fmt.Errorf("node %d has child %d, outside the tree's %d nodes", o, c, n)
			}
		}
		if r.left == r.right {
			return 0, fmt.Errorf("node %d has node %d as both children", o, r.left)
		}
		// The left child is popped first, so it lands right after its parent.
		stack = append(stack, item{r.right, it.depth + 1}, item{r.left, it.depth + 1})
	}
	reached := len(e.nodes) - int(start)
	if n-reached > unreached {
		return 0, fmt.Errorf("%d of the tree's %d nodes are not reached from the root", n-reached, n)
	}
	for o := range raw {
		if p := placed[o]; p != 0 && raw[o].left >= 0 {
			e.nodes[p-1].right = placed[raw[o].right] - 1
		}
	}
	e.roots = append(e.roots, start)
	e.depth = append(e.depth, int32(depth))
	e.fillMeans(start, covers)
	return depth, nil
}

// fillMeans computes the expected value at each node of the tree that
// starts at start, children before parents (reverse preorder). A parent's
// value is its children's weighted by cover, divided by its own cover as
// XGBoost does; by the children's total when it has none, and a plain
// average when no cover is known.
func (e *ensemble) fillMeans(start int32, covers []float64) {
	nodes := e.nodes[start:]
	mean := make([]float64, len(nodes))
	for k := len(nodes) - 1; k >= 0; k-- {
		nd := &nodes[k]
		if int(nd.right-start) == k {
			mean[k] = e.out[int(start)+k]
			continue
		}
		l, r := k+1, int(nd.right-start)
		cl, cr := covers[l], covers[r]
		switch {
		case covers[k] > 0:
			mean[k] = (mean[l]*cl + mean[r]*cr) / covers[k]
		case cl+cr > 0:
			mean[k] = (mean[l]*cl + mean[r]*cr) / (cl + cr)
		default:
			mean[k] = (mean[l] + mean[r]) / 2
		}
	}
	e.mean = append(e.mean, mean...)
}

// below32 returns the largest float64 x with float32(x) < t, so that
// XGBoost's split test, float32(x) < t, is x <= below32(t) for every x but
// NaN; ok is false for t = -Inf or NaN, which no x passes. Between the
// float32 below t and t, the float64 midpoint rounds to whichever of the
// two has an even mantissa: when that is t, the midpoint itself is not
// below t and the answer is the float64 just under it.
func below32(t float32) (float64, bool) {
	if t != t || math.IsInf(float64(t), -1) {
		return 0, false
	}
	hi := float64(t)
	if math.IsInf(hi, 1) {
		hi = 0x1p128 // the float32 after MaxFloat32, were there one
	}
	var lo float64
	if t == -math.MaxFloat32 {
		lo = -0x1p128
	} else {
		lo = float64(math.Nextafter32(t, float32(math.Inf(-1))))
	}
	mid := lo/2 + hi/2 // exact: both are float32 values, far from float64's limits
	if float32(mid) < t {
		return mid, true
	}
	return math.Nextafter(mid, math.Inf(-1)), true
}
