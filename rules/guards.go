package rules

import (
	"sort"
	"unsafe"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Guard is a necessary condition of a rule read off its expression at load:
// a top-level `context.X == "v"`, `customer.X == "v"` or `… in ["v", …]`
// conjunct on a string field. When the bound values fail a guard the rule is
// false without evaluating it, which lets a large ruleset skip most rules
// for a given page, channel or audience.
type Guard struct {
	Customer bool // else a context field
	Field    int  // Schema.Customer or Schema.Context index of a string field
	Values   []string
}

func (g *Guard) slot(env *Env) slot {
	if g.Customer {
		return env.layout.customer[g.Field]
	}
	return env.layout.context[g.Field]
}

// value is the bound string the guard tests.
func (g *Guard) value(env *Env) string {
	return *(*string)(unsafe.Add(env.base, g.slot(env).offset))
}

// Pass reports whether the values bound in env satisfy g.
func (g *Guard) Pass(env *Env) bool {
	v := g.value(env)
	for _, want := range g.Values {
		if v == want {
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
			customer, field := stringField(b.Left, schema)
			if field < 0 {
				return
			}
			if values, ok := stringSet(b.Right); ok {
				out = append(out, Guard{Customer: customer, Field: field, Values: values})
			}
		}
	}
	walk(prog.Node())
	return out
}

func equalityGuard(field, lit ast.Node, schema *Schema) (Guard, bool) {
	customer, i := stringField(field, schema)
	s, ok := lit.(*ast.StringNode)
	if i < 0 || !ok {
		return Guard{}, false
	}
	return Guard{Customer: customer, Field: i, Values: []string{s.Value}}, true
}

// stringField recognises context.<string field> or customer.<string
// feature> and returns which and its index, or -1.
func stringField(n ast.Node, schema *Schema) (customer bool, index int) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return false, -1
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok {
		return false, -1
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return false, -1
	}
	fields, i := schema.Context, schema.ContextField(prop.Value)
	switch id.Value {
	case "customer":
		fields, i = schema.Customer, schema.CustomerField(prop.Value)
		customer = true
	case "context":
	default:
		return false, -1
	}
	if i < 0 || fields[i].Type != TypeString {
		return false, -1
	}
	return customer, i
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
