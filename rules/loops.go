package rules

import (
	"reflect"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// MaxLoopNesting is how deeply loops over lists may nest in one expression.
// A loop is a quantifier or other builtin that walks a list (any, all,
// none, one, filter, map, count, sum, find…, groupBy, sortBy, reduce), `x
// in list` over a list that is not written out, and the list functions
// (join, sort, uniq, …). Each level runs at most max_items times (100 by
// default) for a list feature, so two levels bound a rule to 10,000 steps
// of its innermost body (well under a millisecond); three levels would
// allow 1,000,000, tens of milliseconds for one rule, which the per-decide
// deadline could not interrupt.
const MaxLoopNesting = 2

// listFunctions are expr's built-in functions (called, not predicates)
// that walk a list argument.
var listFunctions = map[string]bool{
	"join": true, "sort": true, "uniq": true, "reverse": true, "flatten": true, "concat": true,
	"min": true, "max": true, "mean": true, "median": true, "toPairs": true, "fromPairs": true,
	"keys": true, "values": true,
}

// loopWalker measures how deeply loops nest in a checked expression tree.
type loopWalker struct {
	limit int // report the first loop deeper than this; 0 = only measure
	// inlined maps the roots of segment bodies inlined into the tree to
	// the segment's name; their nodes carry positions in the segment's
	// own text, so a problem inside one is reported at the call.
	inlined map[ast.Node]string

	stack   []string // the enclosing loops, outermost first
	max     int
	segment string   // the outermost inlined segment being walked, or ""
	segAt   ast.Node // its root, positioned at the call

	// The first loop past the limit: where to report it and the chain of
	// loops that contains it.
	tooDeep ast.Node
	chain   []string
	via     string // the segment it is in, or ""
}

func (w *loopWalker) walk(n ast.Node) {
	if n == nil || w.tooDeep != nil {
		return
	}
	if name, ok := w.inlined[n]; ok && w.segAt == nil {
		w.segment, w.segAt = name, n
		defer func() { w.segment, w.segAt = "", nil }()
	}
	switch n := n.(type) {
	case *ast.BuiltinNode:
		// The list is evaluated once, outside the loop; the predicate runs
		// once per item.
		for i, arg := range n.Arguments {
			if i > 0 {
				if _, isPred := arg.(*ast.PredicateNode); isPred {
					continue
				}
			}
			w.walk(arg)
		}
		w.loop(n, n.Name, func() {
			for _, arg := range n.Arguments {
				if p, ok := arg.(*ast.PredicateNode); ok {
					w.walk(p.Node)
				}
			}
		})
		return
	case *ast.BinaryNode:
		w.walk(n.Left)
		w.walk(n.Right)
		if n.Operator == "in" && walksList(n.Right) {
			w.loop(n, "in", nil)
		}
		return
	case *ast.CallNode:
		for _, arg := range n.Arguments {
			w.walk(arg)
		}
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && listFunctions[id.Value] {
			for _, arg := range n.Arguments {
				if walksList(arg) {
					w.loop(n, id.Value, nil)
					break
				}
			}
		}
		return
	}
	for _, c := range children(n) {
		w.walk(c)
	}
}

// loop records a loop at n and walks its body one level deeper.
func (w *loopWalker) loop(n ast.Node, name string, body func()) {
	w.stack = append(w.stack, name)
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	w.max = max(w.max, len(w.stack))
	if w.limit > 0 && len(w.stack) > w.limit {
		w.tooDeep, w.via = n, w.segment
		if w.segAt != nil {
			w.tooDeep = w.segAt
		}
		w.chain = append([]string(nil), w.stack...)
		return
	}
	if body != nil {
		body()
	}
}

// describe says where and which loops nest: `here (any inside all inside
// any)` or `through segment "s" (…)`.
func (w *loopWalker) describe() string {
	parts := make([]string, len(w.chain))
	for i, name := range w.chain {
		parts[len(parts)-1-i] = name
	}
	s := "here"
	if w.via != "" {
		s = "through segment \"" + w.via + "\""
	}
	return s + " (" + strings.Join(parts, " inside ") + ")"
}

// walksList reports whether evaluating n gives a list that a loop would
// walk item by item: a list-typed value that is not written out in the
// expression (a literal list costs what its text costs).
func walksList(n ast.Node) bool {
	switch n.(type) {
	case *ast.ArrayNode, *ast.ConstantNode:
		return false
	}
	t := n.Type()
	return t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array)
}

// loopDepth is how deeply loops nest in a compiled expression.
func loopDepth(n ast.Node) int {
	w := loopWalker{}
	w.walk(n)
	return w.max
}

// children lists the operands of n, as ast.Walk visits them.
func children(n ast.Node) []ast.Node {
	switch n := n.(type) {
	case *ast.UnaryNode:
		return []ast.Node{n.Node}
	case *ast.BinaryNode:
		return []ast.Node{n.Left, n.Right}
	case *ast.ChainNode:
		return []ast.Node{n.Node}
	case *ast.MemberNode:
		return []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		return []ast.Node{n.Node, n.From, n.To}
	case *ast.CallNode:
		return append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.BuiltinNode:
		return n.Arguments
	case *ast.PredicateNode:
		return []ast.Node{n.Node}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{n.Value, n.Expr}
	case *ast.SequenceNode:
		return n.Nodes
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.ArrayNode:
		return n.Nodes
	case *ast.MapNode:
		return n.Pairs
	case *ast.PairNode:
		return []ast.Node{n.Key, n.Value}
	}
	return nil
}
