package rules

import (
	"cmp"
	"reflect"
	"unsafe"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Most rule conditions and scores are comparisons, boolean logic and
// arithmetic over customer features and context fields. For those, the
// type-checked expression tree is also compiled into Go closures that read
// the bound Env's memory directly: no VM dispatch, no reflection, and no
// boxing of floats (which the VM allocates for every arithmetic result).
// Anything outside that subset runs on the expr VM, which remains the
// reference: tests check that both agree.

// it is the current element inside a predicate (any/all/none over a list of
// strings); outside predicates it is unused.
type (
	boolFn func(e *Env, it string) bool
	numFn  func(e *Env, it string) float64
	strFn  func(e *Env, it string) string
	listFn func(e *Env, it string) []string
)

// nativeCompiler compiles one expression tree; ok turns false at the first
// node outside the subset.
type nativeCompiler struct {
	schema        *Schema
	layout        *envLayout
	modelIDs      []string
	experimentIDs []string
}

// nativeBool compiles a boolean program, or returns nil.
func nativeBool(prog *vm.Program, schema *Schema, layout *envLayout, modelIDs ...string) func(*Env) bool {
	if prog == nil {
		return nil
	}
	c := nativeCompiler{schema: schema, layout: layout, modelIDs: modelIDs, experimentIDs: layout.experimentIDs}
	f := c.boolean(prog.Node())
	if f == nil {
		return nil
	}
	return func(e *Env) bool { return f(e, "") }
}

// nativeNumber compiles a numeric program, or returns nil.
func nativeNumber(prog *vm.Program, schema *Schema, layout *envLayout, modelIDs ...string) func(*Env) float64 {
	if prog == nil {
		return nil
	}
	c := nativeCompiler{schema: schema, layout: layout, modelIDs: modelIDs, experimentIDs: layout.experimentIDs}
	f := c.number(prog.Node())
	if f == nil {
		return nil
	}
	return func(e *Env) float64 { return f(e, "") }
}

type kind int

const (
	kindOther kind = iota
	kindBool
	kindNumber
	kindString
	kindList
)

func kindOf(n ast.Node) kind {
	t := n.Type()
	if t == nil {
		return kindOther
	}
	switch t.Kind() {
	case reflect.Bool:
		return kindBool
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32:
		return kindNumber
	case reflect.String:
		return kindString
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindList
		}
	}
	return kindOther
}

// field resolves customer.X / context.X to its slot.
func (c *nativeCompiler) field(n ast.Node) (slot, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return slot{}, false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok {
		return slot{}, false
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return slot{}, false
	}
	switch id.Value {
	case "customer":
		if i := c.schema.CustomerField(prop.Value); i >= 0 {
			return c.layout.customer[i], true
		}
	case "context":
		if i := c.schema.ContextField(prop.Value); i >= 0 {
			return c.layout.context[i], true
		}
	case variantsIdent:
		for i, x := range c.experimentIDs {
			if x == prop.Value {
				return slot{offset: c.layout.variant[i], typ: TypeString}, true
			}
		}
	case touchpointIdent:
		switch prop.Value {
		case "id":
			return c.layout.touchpoint[0], true
		case "kind":
			return c.layout.touchpoint[1], true
		}
		if i, ok := c.layout.attrIndex[prop.Value]; ok {
			return c.layout.touchpoint[i], true
		}
	}
	return slot{}, false
}

// modelRead resolves a rewritten model("id") call to the model's index.
func (c *nativeCompiler) modelRead(n *ast.MemberNode) (int, bool) {
	name, ok := namedRead(n, modelsIdent)
	if !ok {
		return 0, false
	}
	for i, m := range c.modelIDs {
		if m == name {
			return i, true
		}
	}
	return 0, false
}

func (c *nativeCompiler) boolean(n ast.Node) boolFn {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(*Env, string) bool { return v }
	case *ast.ConstantNode:
		if v, ok := n.Value.(bool); ok {
			return func(*Env, string) bool { return v }
		}
	case *ast.IdentifierNode:
		if n.Value == "known" {
			off := c.layout.known
			return func(e *Env, _ string) bool { return *(*bool)(unsafe.Add(e.base, off)) }
		}
	case *ast.MemberNode:
		if s, ok := c.field(n); ok && s.typ == TypeBool {
			off := s.offset
			return func(e *Env, _ string) bool { return *(*bool)(unsafe.Add(e.base, off)) }
		}
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			if f := c.boolean(n.Node); f != nil {
				return func(e *Env, it string) bool { return !f(e, it) }
			}
		}
	case *ast.BinaryNode:
		return c.binaryBool(n)
	case *ast.ConditionalNode:
		cond, a, b := c.boolean(n.Cond), c.boolean(n.Exp1), c.boolean(n.Exp2)
		if cond != nil && a != nil && b != nil {
			return func(e *Env, it string) bool {
				if cond(e, it) {
					return a(e, it)
				}
				return b(e, it)
			}
		}
	case *ast.BuiltinNode:
		return c.predicateBuiltin(n)
	}
	return nil
}

func (c *nativeCompiler) binaryBool(n *ast.BinaryNode) boolFn {
	switch n.Operator {
	case "&&", "and", "||", "or":
		l, r := c.boolean(n.Left), c.boolean(n.Right)
		if l == nil || r == nil {
			return nil
		}
		if n.Operator == "&&" || n.Operator == "and" {
			return func(e *Env, it string) bool { return l(e, it) && r(e, it) }
		}
		return func(e *Env, it string) bool { return l(e, it) || r(e, it) }
	case "in":
		return c.in(n)
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil
	}
	lk, rk := kindOf(n.Left), kindOf(n.Right)
	if lk != rk {
		return nil
	}
	var f boolFn
	switch lk {
	case kindNumber:
		l, r := c.number(n.Left), c.number(n.Right)
		if l == nil || r == nil {
			return nil
		}
		f = compare[float64](n.Operator, l, r)
	case kindString:
		l, r := c.str(n.Left), c.str(n.Right)
		if l == nil || r == nil {
			return nil
		}
		f = compare[string](n.Operator, l, r)
	case kindBool:
		l, r := c.boolean(n.Left), c.boolean(n.Right)
		if l == nil || r == nil {
			return nil
		}
		switch n.Operator {
		case "==":
			f = func(e *Env, it string) bool { return l(e, it) == r(e, it) }
		case "!=":
			f = func(e *Env, it string) bool { return l(e, it) != r(e, it) }
		}
	}
	return f
}

// compare builds a comparison of two compiled operands of one ordered type.
func compare[T cmp.Ordered](op string, l, r func(*Env, string) T) boolFn {
	switch op {
	case "==":
		return func(e *Env, it string) bool { return l(e, it) == r(e, it) }
	case "!=":
		return func(e *Env, it string) bool { return l(e, it) != r(e, it) }
	case "<":
		return func(e *Env, it string) bool { return l(e, it) < r(e, it) }
	case "<=":
		return func(e *Env, it string) bool { return l(e, it) <= r(e, it) }
	case ">":
		return func(e *Env, it string) bool { return l(e, it) > r(e, it) }
	case ">=":
		return func(e *Env, it string) bool { return l(e, it) >= r(e, it) }
	}
	return nil
}

// in handles `string in list-of-strings`, with the list a feature, a
// literal or a constant set folded by expr's optimiser.
func (c *nativeCompiler) in(n *ast.BinaryNode) boolFn {
	if kindOf(n.Left) != kindString {
		return nil
	}
	needle := c.str(n.Left)
	if needle == nil {
		return nil
	}
	if set, ok := stringSet(n.Right); ok {
		if len(set) <= 8 {
			return func(e *Env, it string) bool {
				v := needle(e, it)
				for _, s := range set {
					if s == v {
						return true
					}
				}
				return false
			}
		}
		m := make(map[string]struct{}, len(set))
		for _, s := range set {
			m[s] = struct{}{}
		}
		return func(e *Env, it string) bool { _, ok := m[needle(e, it)]; return ok }
	}
	if kindOf(n.Right) != kindList {
		return nil
	}
	list := c.list(n.Right)
	if list == nil {
		return nil
	}
	return func(e *Env, it string) bool {
		v := needle(e, it)
		for _, s := range list(e, it) {
			if s == v {
				return true
			}
		}
		return false
	}
}

// predicateBuiltin handles any/all/none over a list of strings, whose
// predicate reads the element as #.
func (c *nativeCompiler) predicateBuiltin(n *ast.BuiltinNode) boolFn {
	if n.Name != "any" && n.Name != "all" && n.Name != "none" || len(n.Arguments) != 2 || n.Map != nil {
		return nil
	}
	if kindOf(n.Arguments[0]) != kindList {
		return nil
	}
	list := c.list(n.Arguments[0])
	pred, ok := n.Arguments[1].(*ast.PredicateNode)
	if list == nil || !ok {
		return nil
	}
	body := c.boolean(pred.Node)
	if body == nil {
		return nil
	}
	switch n.Name {
	case "any":
		return func(e *Env, it string) bool {
			for _, s := range list(e, it) {
				if body(e, s) {
					return true
				}
			}
			return false
		}
	case "all":
		return func(e *Env, it string) bool {
			for _, s := range list(e, it) {
				if !body(e, s) {
					return false
				}
			}
			return true
		}
	}
	return func(e *Env, it string) bool {
		for _, s := range list(e, it) {
			if body(e, s) {
				return false
			}
		}
		return true
	}
}

func (c *nativeCompiler) number(n ast.Node) numFn {
	switch n := n.(type) {
	case *ast.IntegerNode:
		v := float64(n.Value)
		return func(*Env, string) float64 { return v }
	case *ast.FloatNode:
		v := n.Value
		return func(*Env, string) float64 { return v }
	case *ast.ConstantNode:
		var v float64
		switch x := n.Value.(type) {
		case int:
			v = float64(x)
		case float64:
			v = x
		default:
			return nil
		}
		return func(*Env, string) float64 { return v }
	case *ast.MemberNode:
		if i, ok := c.modelRead(n); ok {
			return func(e *Env, _ string) float64 { return e.Model(i) }
		}
		if s, ok := c.field(n); ok && s.typ == TypeNumber {
			off := s.offset
			return func(e *Env, _ string) float64 { return *(*float64)(unsafe.Add(e.base, off)) }
		}
	case *ast.IdentifierNode:
		var off uintptr
		switch n.Value {
		case "propensity":
			off = c.layout.propensity
		case "value":
			off = c.layout.value
		case "lever":
			off = c.layout.lever
		case "score":
			off = c.layout.score
		default:
			return nil
		}
		return func(e *Env, _ string) float64 { return *(*float64)(unsafe.Add(e.base, off)) }
	case *ast.UnaryNode:
		f := c.number(n.Node)
		if f == nil {
			return nil
		}
		switch n.Operator {
		case "-":
			return func(e *Env, it string) float64 { return -f(e, it) }
		case "+":
			return f
		}
	case *ast.BinaryNode:
		if kindOf(n.Left) != kindNumber || kindOf(n.Right) != kindNumber || hasIntOverflowRisk(n) {
			return nil
		}
		l, r := c.number(n.Left), c.number(n.Right)
		if l == nil || r == nil {
			return nil
		}
		switch n.Operator {
		case "+":
			return func(e *Env, it string) float64 { return l(e, it) + r(e, it) }
		case "-":
			return func(e *Env, it string) float64 { return l(e, it) - r(e, it) }
		case "*":
			return func(e *Env, it string) float64 { return l(e, it) * r(e, it) }
		case "/":
			return func(e *Env, it string) float64 { return l(e, it) / r(e, it) }
		}
	case *ast.ConditionalNode:
		cond, a, b := c.boolean(n.Cond), c.number(n.Exp1), c.number(n.Exp2)
		if cond != nil && a != nil && b != nil {
			return func(e *Env, it string) float64 {
				if cond(e, it) {
					return a(e, it)
				}
				return b(e, it)
			}
		}
	case *ast.BuiltinNode:
		if n.Name == "len" && len(n.Arguments) == 1 && kindOf(n.Arguments[0]) == kindList {
			if list := c.list(n.Arguments[0]); list != nil {
				return func(e *Env, it string) float64 { return float64(len(list(e, it))) }
			}
		}
	}
	return nil
}

// hasIntOverflowRisk keeps integer-only arithmetic on the VM: expr computes
// int op int in int, which can differ from float64 for huge literals.
// Schema numbers are float64, so any expression touching a feature is
// exact here; literal-only integer arithmetic is left to the VM.
func hasIntOverflowRisk(n *ast.BinaryNode) bool {
	isInt := func(x ast.Node) bool {
		t := x.Type()
		return t != nil && t.Kind() == reflect.Int
	}
	return isInt(n.Left) && isInt(n.Right)
}

func (c *nativeCompiler) str(n ast.Node) strFn {
	switch n := n.(type) {
	case *ast.StringNode:
		v := n.Value
		return func(*Env, string) string { return v }
	case *ast.ConstantNode:
		if v, ok := n.Value.(string); ok {
			return func(*Env, string) string { return v }
		}
	case *ast.MemberNode:
		if s, ok := c.field(n); ok && s.typ == TypeString {
			off := s.offset
			return func(e *Env, _ string) string { return *(*string)(unsafe.Add(e.base, off)) }
		}
	case *ast.PointerNode:
		if n.Name == "" {
			return func(_ *Env, it string) string { return it }
		}
	}
	return nil
}

func (c *nativeCompiler) list(n ast.Node) listFn {
	if m, ok := n.(*ast.MemberNode); ok {
		if s, ok := c.field(m); ok && s.typ == TypeList {
			off := s.offset
			return func(e *Env, _ string) []string { return *(*[]string)(unsafe.Add(e.base, off)) }
		}
	}
	return nil
}
