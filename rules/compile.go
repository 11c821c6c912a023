package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

type exprKind int

const (
	exprBool exprKind = iota
	exprNumber
	exprAny // number, bool or string: model inputs
)

// exprScope says what an expression may read besides customer, context
// and known.
type exprScope uint8

const (
	scopeTouchpoint  exprScope = 1 << iota // touchpoint.<name>
	scopeModels                            // model("id")
	scopeArbitration                       // propensity, value, lever, score
	scopeVariants                          // variant("id")

	// scopeRule is what rule conditions, scores, segments and touchpoint
	// values read.
	scopeRule       = scopeTouchpoint | scopeModels | scopeVariants
	scopeModelInput = scopeTouchpoint
	scopePlacement  = scopeRule | scopeArbitration
)

// segmentDef is a named condition as written; it is inlined wherever a rule
// calls segment("name"), so evaluating it costs no function call.
type segmentDef struct {
	name    string
	source  string
	node    *yaml.Node
	src     *source
	valid   bool
	checked bool // valid has been decided
}

// exprCompiler compiles expressions against one schema's environment.
type exprCompiler struct {
	schema        *Schema
	layout        *envLayout
	segments      map[string]*segmentDef
	modelIDs      []string
	experimentIDs []string
	// configs holds one expr configuration per compiling goroutine: making
	// one copies expr's built-in table and describes the environment
	// struct, which was most of the cost of compiling a short expression,
	// and a configuration caches type information, so it is not shared.
	configs []*conf.Config
}

func newExprCompiler(schema *Schema, layout *envLayout) *exprCompiler {
	c := &exprCompiler{schema: schema, layout: layout, segments: map[string]*segmentDef{}}
	c.configs = make([]*conf.Config, runtime.GOMAXPROCS(0))
	for i := range c.configs {
		cfg := conf.CreateNew()
		cfg.WithEnv(layout.zero)
		cfg.MaxNodes = 2000
		c.configs[i] = cfg
	}
	return c
}

// errInspected stops compileWith when inspect refused the checked tree.
var errInspected = errors.New("refused by inspection")

// compileWith does what expr.Compile does, on a reused configuration.
// inspect, when given, sees the checked tree before it is optimised; if it
// returns false, compiling stops with errInspected.
func compileWith(cfg *conf.Config, input string, kind exprKind, visitor ast.Visitor, inspect func(ast.Node) bool) (*vm.Program, error) {
	cfg.Visitors = cfg.Visitors[:0]
	if visitor != nil {
		cfg.Visitors = append(cfg.Visitors, visitor)
	}
	cfg.Expect, cfg.ExpectAny = reflect.Invalid, false
	if kind == exprBool {
		cfg.Expect, cfg.ExpectAny = reflect.Bool, true
	}
	tree, err := checker.ParseCheck(input, cfg)
	if err != nil {
		return nil, err
	}
	if inspect != nil && !inspect(tree.Node) {
		return nil, errInspected
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fe.Bind(tree.Source)
		}
		return nil, err
	}
	return compiler.Compile(tree, cfg)
}

// compile type-checks and compiles one expression of a rule written in
// node n, reporting problems at their file position.
func (c *exprCompiler) compile(r *reader, n *yaml.Node, kind exprKind, what string, worker int) *vm.Program {
	return c.compileScoped(r, n, kind, what, worker, scopeRule)
}

// compileScoped is compile for an expression that may read what scope allows.
func (c *exprCompiler) compileScoped(r *reader, n *yaml.Node, kind exprKind, what string, worker int, scope exprScope) *vm.Program {
	if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
		r.errf(n, "%s must be an expression", what)
		return nil
	}
	inliner := &segmentInliner{c: c, source: n.Value}
	var visitor ast.Visitor
	// The inliner makes expr check the tree twice; most expressions use
	// no segment and skip it.
	if strings.Contains(n.Value, "segment") || strings.Contains(n.Value, "model") || strings.Contains(n.Value, "variant") {
		visitor = inliner
	}
	loops := loopWalker{limit: MaxLoopNesting}
	var outOfScope ast.Node
	var outOfScopeMsg string
	prog, err := compileWith(c.configs[worker], n.Value, kind, visitor, func(root ast.Node) bool {
		outOfScope, outOfScopeMsg = scopeViolation(root, scope)
		if outOfScope != nil {
			return false
		}
		loops.inlined = inliner.inlined
		loops.walk(root)
		return loops.tooDeep == nil
	})
	if outOfScope != nil {
		line, col := offsetPosition(n.Value, outOfScope.Location().From)
		line, col = scalarPosition(r.src, n, line, col)
		*r.errs = append(*r.errs, r.src.errorAt(line, col, "%s: %s", what, outOfScopeMsg))
		return nil
	}
	if inliner.usesInvalid {
		return nil // the broken segment is reported at its definition
	}
	if inliner.err != nil {
		line, col := scalarPosition(r.src, n, inliner.errLine, inliner.errCol)
		*r.errs = append(*r.errs, r.src.errorAt(line, col, "%s: %s", what, inliner.err))
		return nil
	}
	if loops.tooDeep != nil {
		line, col := offsetPosition(n.Value, loops.tooDeep.Location().From)
		line, col = scalarPosition(r.src, n, line, col)
		*r.errs = append(*r.errs, r.src.errorAt(line, col, "%s: loops over lists nest %d deep %s; at most %d levels are allowed, so that a rule costs at most max_items^%d steps",
			what, len(loops.chain), loops.describe(), MaxLoopNesting, MaxLoopNesting))
		return nil
	}
	if err != nil {
		line, col := 1, 1
		msg := err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			line, col, msg = fe.Line, fe.Column+1, c.explain(n.Value, fe)
		}
		fl, fc := scalarPosition(r.src, n, line, col)
		*r.errs = append(*r.errs, r.src.errorAt(fl, fc, "%s: %s", what, msg))
		return nil
	}
	if kind == exprNumber && prog != nil {
		switch prog.Node().Type().Kind().String() {
		case "int", "float64", "interface":
		default:
			r.errf(n, "%s must be a number expression, got %s", what, prog.Node().Type())
			return nil
		}
	}
	return prog
}

var (
	noFieldRe    = regexp.MustCompile(`^type struct \{.*\} has no field (\w+)$`)
	unknownName  = regexp.MustCompile(`^unknown name (\w+)$`)
	structTypeRe = regexp.MustCompile(`struct \{[^}]*\}`)
)

// explain rewrites expr's messages into the vocabulary of rule files: the
// environment is a generated struct whose Go type means nothing to a marketer.
func (c *exprCompiler) explain(src string, fe *file.Error) string {
	msg := fe.Message
	if m := noFieldRe.FindStringSubmatch(msg); m != nil {
		name := m[1]
		before := prefixBefore(src, fe.Line, fe.Column)
		switch {
		case strings.HasSuffix(before, "customer."):
			return fmt.Sprintf("unknown feature customer.%s%s", name, suggest(name, fieldNames(c.schema.Customer)))
		case strings.HasSuffix(before, "context."):
			return fmt.Sprintf("unknown context field context.%s%s", name, suggest(name, fieldNames(c.schema.Context)))
		case strings.HasSuffix(before, touchpointIdent+"."):
			attrs := []string{"id", "kind"}
			for a := range c.layout.attrIndex {
				attrs = append(attrs, a)
			}
			sort.Strings(attrs[2:])
			return fmt.Sprintf("unknown touchpoint attribute touchpoint.%s%s (touchpoints declare: %s)", name, suggest(name, attrs), strings.Join(attrs, ", "))
		}
		return "unknown field " + name
	}
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown name %s%s (expressions read customer.<feature>, context.<field>, known and segment(\"name\"))",
			m[1], suggest(m[1], []string{"customer", "context", "known"}))
	}
	msg = structTypeRe.ReplaceAllString(msg, "record")
	return goTypeNames.Replace(msg)
}

// goTypeNames renames Go types in messages to the schema's type names.
var goTypeNames = strings.NewReplacer("[]string", "list", "float64", "number", "[]interface {}", "list", "interface {}", "any")

// prefixBefore returns the text on the given line before the 0-based column.
func prefixBefore(src string, line, col int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	r := []rune(lines[line-1])
	if col > len(r) {
		col = len(r)
	}
	return strings.TrimRight(string(r[:col]), " ")
}

// segmentInliner replaces segment("name") calls with the segment's own
// expression tree before type checking.
type segmentInliner struct {
	c      *exprCompiler
	source string
	stack  []string

	err             error
	errLine, errCol int
	usesInvalid     bool
	inlinedNodes    int // expression nodes added by inlining so far
	// inlined maps the root of each inlined segment body to its name.
	inlined map[ast.Node]string
}

// maxInlinedNodes bounds what segments may expand to. Segments that use
// other segments twice double at every level, so without a bound a few
// lines could take minutes and gigabytes to compile.
const maxInlinedNodes = 5000

type nodeCounter struct{ n int }

func (c *nodeCounter) Visit(*ast.Node) { c.n++ }

func (p *segmentInliner) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || p.err != nil {
		return
	}
	ident, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || ident.Value != "segment" && ident.Value != "model" && ident.Value != "variant" {
		return
	}
	switch ident.Value {
	case "model":
		p.rewriteNamed(node, call, named{fn: "model", ident: modelsIdent, noun: "model", section: "models", example: "coupon_response", ids: p.c.modelIDs})
		return
	case "variant":
		p.rewriteNamed(node, call, named{fn: "variant", ident: variantsIdent, noun: "experiment", section: "experiments", example: "cart_coupon_test", ids: p.c.experimentIDs})
		return
	}
	fail := func(format string, args ...any) {
		if len(p.stack) > 0 {
			// An error inside an inlined segment was already reported at the
			// segment itself; point at the outer call.
			return
		}
		p.err = fmt.Errorf(format, args...)
		p.errLine, p.errCol = offsetPosition(p.source, call.Location().From)
	}
	if len(call.Arguments) != 1 {
		fail(`segment() takes one segment name, as in segment("high_value")`)
		return
	}
	name, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		fail(`segment() needs a quoted segment name, as in segment("high_value")`)
		return
	}
	def, found := p.c.segments[name.Value]
	if !found {
		fail("unknown segment %q%s", name.Value, suggest(name.Value, p.c.segmentNames()))
		return
	}
	if contains(p.stack, def.name) {
		p.err = fmt.Errorf("segment %q refers to itself through %s", def.name, strings.Join(append(p.stack, def.name), " -> "))
		p.errLine, p.errCol = offsetPosition(p.source, call.Location().From)
		return
	}
	tree, err := parser.Parse(def.source)
	if err != nil {
		fail("segment %q does not parse", def.name)
		return
	}
	var count nodeCounter
	ast.Walk(&tree.Node, &count)
	p.inlinedNodes += count.n
	if p.inlinedNodes > maxInlinedNodes {
		p.err = fmt.Errorf("segment %q expands to more than %d expression nodes through the segments it uses; simplify them", def.name, maxInlinedNodes)
		p.errLine, p.errCol = offsetPosition(p.source, call.Location().From)
		return
	}
	if !def.valid && def.checked {
		p.usesInvalid = true
	}
	p.stack = append(p.stack, def.name)
	ast.Walk(&tree.Node, p)
	p.stack = p.stack[:len(p.stack)-1]
	ast.Patch(node, tree.Node)
	if p.inlined == nil {
		p.inlined = map[ast.Node]string{}
	}
	p.inlined[*node] = def.name
}

// named describes a function that names a model or an experiment, as in
// model("coupon_response"), rewritten into a read of ident.<id>: the
// model's output, which the engine computes on first use, or the
// customer's variant, which it sets per request.
type named struct {
	fn, ident, noun, section, example string
	ids                               []string
}

// rewriteNamed checks a call of n.fn and rewrites it into a read of
// n.ident.<id>.
func (p *segmentInliner) rewriteNamed(node *ast.Node, call *ast.CallNode, n named) {
	fail := func(format string, args ...any) {
		p.err = fmt.Errorf(format, args...)
		p.errLine, p.errCol = offsetPosition(p.source, call.Location().From)
	}
	if len(call.Arguments) != 1 {
		fail(`%s() takes one %s id, as in %s("%s")`, n.fn, n.noun, n.fn, n.example)
		return
	}
	name, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		fail(`%s() needs a quoted %s id, as in %s("%s")`, n.fn, n.noun, n.fn, n.example)
		return
	}
	if !contains(n.ids, name.Value) {
		if len(n.ids) == 0 {
			fail("unknown %s %q (no %s: section declares any)", n.noun, name.Value, n.section)
		} else {
			fail("unknown %s %q%s (%s: %s)", n.noun, name.Value, suggest(name.Value, n.ids), n.section, strings.Join(n.ids, ", "))
		}
		return
	}
	member := &ast.MemberNode{Node: &ast.IdentifierNode{Value: n.ident}, Property: &ast.StringNode{Value: name.Value}}
	member.SetLocation(call.Location())
	ast.Patch(node, member)
}

// scopeViolation finds the first node reading what scope does not allow.
func scopeViolation(root ast.Node, scope exprScope) (ast.Node, string) {
	var at ast.Node
	var msg string
	walk(root, func(n ast.Node) {
		if at != nil {
			return
		}
		switch n := n.(type) {
		case *ast.IdentifierNode:
			switch {
			case n.Value == touchpointIdent && scope&scopeTouchpoint == 0:
				at, msg = n, "touchpoint.<attribute> is only known while ranking a touchpoint: in rules, touchpoint values, model inputs and arbitration formulas"
			case n.Value == modelsIdent && scope&scopeModels == 0:
				at, msg = n, "a model input cannot call model(); bind it to a feature or an expression over features"
			case n.Value == variantsIdent && scope&scopeVariants == 0:
				at, msg = n, "variant() is read by rules; who enters an experiment cannot depend on a variant"
			case contains(arbitrationVars, n.Value) && scope&scopeArbitration == 0:
				at, msg = n, n.Value+" is read only by a placement's arbitration formula (arbitration: {score: propensity * value * lever})"
			}
		}
	})
	return at, msg
}

func (c *exprCompiler) segmentNames() []string {
	names := make([]string, 0, len(c.segments))
	for n := range c.segments {
		names = append(names, n)
	}
	return names
}

// offsetPosition turns a rune offset into a 1-based line and column.
func offsetPosition(src string, offset int) (int, int) {
	line, col := 1, 1
	for i, r := range []rune(src) {
		if i == offset {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
