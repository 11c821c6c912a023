package rules

import (
	"sort"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Guard is a necessary condition of a rule read off its expression at load:
// a top-level `context.X == "v"` or `context.X in ["v", …]` conjunct. When a
// request's context fails a guard the rule is false without running the VM,
// which lets a large ruleset skip most rules for a given page or channel.
type Guard struct {
	Context int // Schema.Context index of a string field
	Values  []string
}

// Pass reports whether the request context bound in env satisfies g.
func (g *Guard) Pass(env *Env) bool {
	v := env.layout.context[g.Context].load(env.base)
	for _, want := range g.Values {
		if v.Str == want {
			return true
		}
	}
	return false
}

// guardsOf collects the guards of a compiled boolean expression.
func guardsOf(prog *vm.Program, schema *Schema) []Guard {
	if prog == nil {
		return nil
	}
	var out []Guard
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "&&", "and":
			walk(b.Left)
			walk(b.Right)
		case "==":
			if g, ok := equalityGuard(b.Left, b.Right, schema); ok {
				out = append(out, g)
			} else if g, ok := equalityGuard(b.Right, b.Left, schema); ok {
				out = append(out, g)
			}
		case "in":
			field := contextStringField(b.Left, schema)
			if field < 0 {
				return
			}
			if values, ok := stringSet(b.Right); ok {
				out = append(out, Guard{Context: field, Values: values})
			}
		}
	}
	walk(prog.Node())
	return out
}

func equalityGuard(field, lit ast.Node, schema *Schema) (Guard, bool) {
	i := contextStringField(field, schema)
	s, ok := lit.(*ast.StringNode)
	if i < 0 || !ok {
		return Guard{}, false
	}
	return Guard{Context: i, Values: []string{s.Value}}, true
}

// contextStringField recognises context.<string field> and returns its index.
func contextStringField(n ast.Node, schema *Schema) int {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return -1
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "context" {
		return -1
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return -1
	}
	i := schema.ContextField(prop.Value)
	if i < 0 || schema.Context[i].Type != TypeString {
		return -1
	}
	return i
}

// stringSet reads a literal list of strings, as written or as expr's
// optimiser leaves it (a constant set).
func stringSet(n ast.Node) ([]string, bool) {
	switch v := n.(type) {
	case *ast.ArrayNode:
		var out []string
		for _, el := range v.Nodes {
			s, ok := el.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			out = append(out, s.Value)
		}
		return out, true
	case *ast.ConstantNode:
		set, ok := v.Value.(map[string]struct{})
		if !ok {
			return nil, false
		}
		out := make([]string, 0, len(set))
		for s := range set {
			out = append(out, s)
		}
		sort.Strings(out)
		return out, true
	}
	return nil, false
}
