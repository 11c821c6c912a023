package rules

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"unsafe"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/models"
)

// Model is a ranking model of a ruleset with its inputs bound to
// expressions over the customer, the context and the touchpoint.
type Model struct {
	ID    string
	Type  string
	Model *models.Model
	// Path is the model file as the rule file names it, relative to the
	// rules directory; empty for inline logistic models.
	Path   string
	Inputs []ModelInput // parallel to Model.Inputs
	// PerCandidate is set when an input reads touchpoint.<name>: the model
	// is evaluated once per candidate rather than once per request.
	PerCandidate bool
	Tests        []Fixture
	File         string
	Line, Col    int

	testsNode *yaml.Node
}

// ModelInput says where one model input comes from.
type ModelInput struct {
	Name string // the model's name for it
	Expr string // the expression bound to it, as written

	source inputSource
	index  int // customer, context or touchpoint slot index for direct reads
	kind   FieldType
	num    func(*Env) float64
	str    func(*Env) string
	prog   *vm.Program
}

type inputSource uint8

const (
	inputCustomer inputSource = iota
	inputContext
	inputTouchpoint
	inputExpression
)

// Model returns the index of a model, or -1.
func (rs *Ruleset) Model(id string) int {
	for i := range rs.Models {
		if rs.Models[i].ID == id {
			return i
		}
	}
	return -1
}

// Model returns the output of model i (a Ruleset.Models index) for the
// bound customer, context and touchpoint, computing it on first use. It
// allocates nothing: inputs are read from the environment's memory into a
// vector kept per model.
func (e *Env) Model(i int) float64 {
	p := (*float64)(unsafe.Add(e.base, e.layout.model[i]))
	if e.modelDone[i] {
		return *p
	}
	var v float64
	if k := e.layout.perCandidate[i]; k >= 0 && e.tp >= 0 {
		j := (e.tp%memoSlots)*e.layout.perCandidates + k
		if e.memoEpoch[j] == e.epoch && e.memoTP[j] == int32(e.tp) {
			v = e.memoOut[j]
		} else {
			v = e.evalModel(i)
			e.memoEpoch[j], e.memoTP[j], e.memoOut[j] = e.epoch, int32(e.tp), v
		}
	} else {
		v = e.evalModel(i)
	}
	*p, e.modelDone[i] = v, true
	return v
}

// evalModel reads model i's inputs and scores them.
func (e *Env) evalModel(i int) float64 {
	m := &e.layout.models[i]
	x := e.modelX[i]
	for k := range m.Inputs {
		x[k] = m.Inputs[k].read(e, m.Model, k)
	}
	return m.Model.Predict(x)
}

// ModelInputs is the input vector model i was last evaluated on (NaN for
// missing inputs, codes for strings); valid until the next evaluation.
func (e *Env) ModelInputs(i int) []float64 { return e.modelX[i] }

// PrepareModels computes the models in list, so that expressions run on
// the VM (which reads outputs from memory) see them.
func (e *Env) PrepareModels(list []int) {
	for _, i := range list {
		e.Model(i)
	}
}

func (in *ModelInput) read(e *Env, m *models.Model, k int) float64 {
	var s slot
	switch in.source {
	case inputCustomer:
		if !e.present[in.index] {
			return math.NaN()
		}
		s = e.layout.customer[in.index]
	case inputContext:
		if !e.ctxSet[in.index] {
			return math.NaN()
		}
		s = e.layout.context[in.index]
	case inputTouchpoint:
		if !e.tpPresent[in.index] {
			return math.NaN()
		}
		s = e.layout.touchpoint[in.index]
	default:
		switch {
		case in.num != nil:
			return in.num(e)
		case in.str != nil:
			return m.Encode(k, in.str(e))
		}
		out, err := e.vm.Run(in.prog, e.Value())
		if err != nil {
			return math.NaN()
		}
		switch x := out.(type) {
		case float64:
			return x
		case int:
			return float64(x)
		case bool:
			return boolNumber(x)
		case string:
			return m.Encode(k, x)
		}
		return math.NaN()
	}
	// Read the field in place: building a features.Value for it cost more
	// than the rest of a logistic model.
	p := unsafe.Add(e.base, s.offset)
	switch s.typ {
	case TypeNumber:
		return *(*float64)(p)
	case TypeBool:
		return boolNumber(*(*bool)(p))
	case TypeString:
		return m.Encode(k, *(*string)(p))
	}
	return math.NaN()
}

func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SetTouchpoint makes touchpoint.<name> read touchpoint tp (index i) and
// forgets the outputs of models that read it. Setting the touchpoint that
// is already set costs nothing.
func (e *Env) SetTouchpoint(i int, tp *Touchpoint) {
	if e.tp == i {
		return
	}
	l := e.layout
	// Only the attributes the last touchpoint set need clearing: Reset
	// leaves every slot at its zero value.
	if e.tpLast != nil {
		for _, a := range e.tpLast.attrs {
			l.touchpoint[a.slot].store(e.base, zeroValue(l.touchpoint[a.slot].typ))
			e.tpPresent[a.slot] = false
		}
	}
	e.tp, e.tpLast = i, tp
	l.touchpoint[0].store(e.base, features.String(tp.ID))
	l.touchpoint[1].store(e.base, features.String(tp.Kind))
	e.tpPresent[0], e.tpPresent[1] = true, true
	for _, a := range tp.attrs {
		l.touchpoint[a.slot].store(e.base, a.value)
		e.tpPresent[a.slot] = true
	}
	for _, m := range l.perCandidateModels {
		e.modelDone[m] = false
	}
}

// SetArbitration sets the variables a placement's arbitration formula reads.
func (e *Env) SetArbitration(propensity, value, lever, score float64) {
	l := e.layout
	*(*float64)(unsafe.Add(e.base, l.propensity)) = propensity
	*(*float64)(unsafe.Add(e.base, l.value)) = value
	*(*float64)(unsafe.Add(e.base, l.lever)) = lever
	*(*float64)(unsafe.Add(e.base, l.score)) = score
}

// attrValue is one attribute a touchpoint declares, at its slot in the
// environment's touchpoint struct.
type attrValue struct {
	slot  int
	value features.Value
}

// modelFile reads a model file named relative to the rules directory.
type modelFile func(rel string) ([]byte, error)

// modelKeys are the keys of a models entry.
var modelKeys = []string{"id", "type", "description", "file", "inputs", "intercept", "terms", "tests"}

// attributeRegistry collects the attributes touchpoints declare, typed by
// their first declaration, before any expression is compiled: the
// expression environment has a field per attribute name.
func attributeRegistry(items []item, errs *ErrorList) []Field {
	var attrs []Field
	first := map[string]*yaml.Node{}
	for _, it := range items {
		r := &reader{src: it.r.src, errs: errs}
		for i := 0; i+1 < len(it.node.Content); i += 2 {
			if it.node.Content[i].Value != "attributes" {
				continue
			}
			r.mapping(it.node.Content[i+1], "touchpoint "+it.id+".attributes", nil, func(name string, k, v *yaml.Node) {
				typ, ok := attributeType(v)
				switch {
				case !isIdentifier(name):
					r.errf(k, "touchpoint %s: attribute name %q must start with a letter and use only letters, digits and _", it.id, name)
				case name == "id" || name == "kind":
					r.errf(k, "touchpoint %s: attribute %q is taken (touchpoint.%s is the touchpoint's own %s)", it.id, name, name, name)
				case !ok:
					r.errf(v, "touchpoint %s.attributes.%s must be a number or a string", it.id, name)
				case first[name] == nil:
					first[name] = v
					attrs = append(attrs, Field{Name: name, Type: typ})
				default:
					for _, f := range attrs {
						if f.Name == name && f.Type != typ {
							r.errf(v, "touchpoint %s.attributes.%s is a %s, but it is a %s where first declared (line %d); one attribute has one type", it.id, name, typ, f.Type, first[name].Line)
						}
					}
				}
			})
		}
	}
	return attrs
}

func attributeType(v *yaml.Node) (FieldType, bool) {
	if v.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch v.Tag {
	case "!!int", "!!float":
		return TypeNumber, true
	case "!!str":
		return TypeString, true
	}
	return 0, false
}

// attributes reads a touchpoint's attributes into their slots.
func (r *reader) attributes(n *yaml.Node, tp *Touchpoint, layout *envLayout) {
	r.mapping(n, "touchpoint "+tp.ID+".attributes", nil, func(name string, _, v *yaml.Node) {
		slot, ok := layout.attrIndex[name]
		if !ok {
			return // reported by attributeRegistry
		}
		if typ, ok := attributeType(v); !ok || typ != layout.touchpoint[slot].typ {
			return // reported by attributeRegistry
		}
		var val features.Value
		switch layout.touchpoint[slot].typ {
		case TypeNumber:
			f, ok := r.number(v, "touchpoint "+tp.ID+".attributes."+name)
			if !ok {
				return
			}
			val = features.Number(f)
		default:
			val = features.String(v.Value)
		}
		tp.attrs = append(tp.attrs, attrValue{slot: slot, value: val})
		tp.Attributes = append(tp.Attributes, NamedValue{Name: name, Value: val})
	})
}

// modelIDs lists the ids of the models items, checking their form.
func modelIDs(items []item, errs *ErrorList) []string {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if !isIdentifier(it.id) {
			(&reader{src: it.r.src, errs: errs}).errf(it.idAt, "model id %q must start with a letter and use only letters, digits and _", it.id)
		}
		ids = append(ids, it.id)
	}
	return ids
}

// model reads one models entry: its file (or inline definition) and the
// expressions bound to its inputs.
func (r *reader) model(it item, rs *Ruleset, comp *exprCompiler, read modelFile) Model {
	m := Model{ID: it.id, File: r.src.path, Line: it.node.Line, Col: it.node.Column}
	what := "model " + it.id
	var typeNode, fileNode, inputsNode, termsNode, interceptNode, testsNode *yaml.Node
	r.mapping(it.node, what, modelKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "type":
			typeNode = v
			m.Type, _ = r.nonEmptyStr(v, what+".type")
		case "file":
			fileNode = v
			m.Path, _ = r.nonEmptyStr(v, what+".file")
		case "inputs":
			inputsNode = v
		case "terms":
			termsNode = v
		case "intercept":
			interceptNode = v
		case "tests":
			testsNode = v
		}
	})
	if typeNode == nil {
		r.errf(it.idAt, "%s needs a type (%s)", what, strings.Join(models.Types, ", "))
		return m
	}
	switch m.Type {
	case models.XGBoost, models.LightGBM:
		if fileNode == nil {
			r.errf(typeNode, "%s: a %s model needs file: the model file, relative to the rules directory", what, m.Type)
			return m
		}
		for _, n := range []*yaml.Node{termsNode, interceptNode} {
			if n != nil {
				r.errf(n, "%s: intercept and terms belong to logistic models; a %s model is read from its file", what, m.Type)
			}
		}
		m.Model = r.modelFromFile(fileNode, m.Type, m.Path, what, read)
	case models.Logistic:
		if fileNode != nil {
			r.errf(fileNode, "%s: a logistic model is written inline with intercept and terms, not read from a file", what)
		}
		m.Model = r.logistic(it.node, interceptNode, termsNode, what)
	case "":
		return m
	default:
		r.errf(typeNode, "%s: unknown model type %q%s (use %s)", what, m.Type, suggest(m.Type, models.Types), strings.Join(models.Types, ", "))
		return m
	}
	if m.Model == nil {
		return m
	}
	m.Inputs = r.bindInputs(&m, inputsNode, fileNode, rs, comp, what)
	m.testsNode = testsNode // read once touchpoints are known
	return m
}

func (r *reader) modelFromFile(fileNode *yaml.Node, typ, rel, what string, read modelFile) *models.Model {
	clean := path.Clean(strings.ReplaceAll(rel, "\\", "/"))
	if rel == "" {
		return nil
	}
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		r.errf(fileNode, "%s.file %q must be inside the rules directory (a path relative to it)", what, rel)
		return nil
	}
	data, err := read(clean)
	if err != nil {
		r.errf(fileNode, "%s: cannot read model file %q: %v", what, rel, err)
		return nil
	}
	var mod *models.Model
	if typ == models.XGBoost {
		mod, err = models.ReadXGBoost(data)
	} else {
		mod, err = models.ReadLightGBM(data)
	}
	if err != nil {
		where := fmt.Sprintf("%s model file %q", typ, rel)
		if me, ok := err.(*models.Error); ok && me.Line > 0 {
			where = fmt.Sprintf("%s model file %s:%d:%d", typ, rel, me.Line, me.Col)
		}
		r.errf(fileNode, "%s: %s: %v", what, where, err)
		return nil
	}
	return mod
}

// logistic reads an inline logistic regression.
func (r *reader) logistic(node, interceptNode, termsNode *yaml.Node, what string) *models.Model {
	var spec models.LogisticSpec
	if interceptNode != nil {
		spec.Intercept, _ = r.number(interceptNode, what+".intercept")
	}
	if termsNode == nil {
		r.errf(node, "%s: a logistic model needs terms: a list of {input, weight, …}", what)
		return nil
	}
	errsBefore := len(*r.errs)
	for i, el := range r.sequence(termsNode, what+".terms") {
		w := fmt.Sprintf("%s.terms[%d]", what, i)
		var t models.Term
		var weightNode, oneHotNode, bucketsNode *yaml.Node
		r.mapping(el, w, modelTermKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "input":
				t.Input, _ = r.nonEmptyStr(v, w+".input")
			case "weight":
				weightNode = v
				t.Weight, _ = r.number(v, w+".weight")
			case "log1p":
				t.Log1p, _ = r.boolean(v, w+".log1p")
			case "mean":
				t.Mean, _ = r.number(v, w+".mean")
			case "std":
				t.Std, _ = r.number(v, w+".std")
				if t.Std <= 0 {
					r.errf(v, "%s.std must be above 0", w)
				}
			case "one_hot":
				oneHotNode = v
				r.mapping(v, w+".one_hot", nil, func(value string, _, wv *yaml.Node) {
					weight, _ := r.number(wv, w+".one_hot."+value)
					t.Categories = append(t.Categories, value)
					t.CategoryWeights = append(t.CategoryWeights, weight)
				})
			case "buckets":
				bucketsNode = v
				r.mapping(v, w+".buckets", bucketKeys, func(key string, _, bv *yaml.Node) {
					for _, n := range r.sequence(bv, w+".buckets."+key) {
						f, _ := r.number(n, w+".buckets."+key+" entries")
						if key == "bounds" {
							t.Bounds = append(t.Bounds, f)
						} else {
							t.BucketWeights = append(t.BucketWeights, f)
						}
					}
				})
			}
		})
		switch {
		case t.Input == "":
			r.errf(el, "%s needs input: the input the term reads", w)
		case oneHotNode != nil && bucketsNode != nil:
			r.errf(bucketsNode, "%s has both one_hot and buckets; a term is one or the other", w)
		case (oneHotNode != nil || bucketsNode != nil) && weightNode != nil:
			r.errf(weightNode, "%s: one_hot and buckets give a weight per value; drop weight", w)
		case oneHotNode == nil && bucketsNode == nil && weightNode == nil:
			r.errf(el, "%s needs weight (or one_hot or buckets)", w)
		case bucketsNode != nil && len(t.BucketWeights) != len(t.Bounds)+1:
			r.errf(bucketsNode, "%s.buckets needs one more weight than bounds (%d bounds, %d weights): below the first bound, between bounds, above the last", w, len(t.Bounds), len(t.BucketWeights))
		}
		spec.Terms = append(spec.Terms, t)
	}
	if len(*r.errs) > errsBefore {
		return nil
	}
	mod, err := models.NewLogistic(spec)
	if err != nil {
		r.errf(termsNode, "%s: %v", what, err)
		return nil
	}
	return mod
}

// bindInputs binds each model input to the expression inputs names for
// it, or to the customer feature of the same name, and type-checks it.
func (r *reader) bindInputs(m *Model, inputsNode, fileNode *yaml.Node, rs *Ruleset, comp *exprCompiler, what string) []ModelInput {
	want := m.Model.Inputs
	names := make([]string, len(want))
	for i, in := range want {
		names[i] = in.Name
	}
	exprs := map[string]*yaml.Node{}
	if inputsNode != nil {
		r.mapping(inputsNode, what+".inputs", nil, func(name string, k, v *yaml.Node) {
			if !contains(names, name) {
				r.errf(k, "%s.inputs: the model has no input %q%s (its inputs: %s)", what, name, suggest(name, names), strings.Join(names, ", "))
				return
			}
			exprs[name] = v
		})
	}
	at := fileNode
	if at == nil {
		at = inputsNode
	}
	if at == nil {
		at = &yaml.Node{Line: m.Line, Column: m.Col}
	}
	out := make([]ModelInput, len(want))
	var unbound []string
	defer func() {
		switch len(unbound) {
		case 0:
		case 1:
			r.errf(at, "%s reads input %q, which is not a customer feature; declare it in the feature schema or bind it under inputs:%s",
				what, unbound[0], suggest(unbound[0], fieldNames(rs.Schema.Customer)))
		default:
			r.errf(at, "%s reads inputs that are not customer features: %s; declare them in the feature schema or bind them under inputs:",
				what, strings.Join(unbound, ", "))
		}
	}()
	for k, in := range want {
		mi := ModelInput{Name: in.Name, source: inputExpression}
		n, bound := exprs[in.Name]
		if !bound {
			fi := rs.Schema.CustomerField(in.Name)
			if fi < 0 {
				unbound = append(unbound, in.Name)
				continue
			}
			mi.Expr = "customer." + in.Name
			mi.source, mi.index, mi.kind = inputCustomer, fi, rs.Schema.Customer[fi].Type
		} else {
			mi.Expr = n.Value
			r.bindInputExpr(&mi, n, rs, comp, what+".inputs."+in.Name)
			if mi.kind == 0 && mi.prog == nil && mi.source == inputExpression {
				continue // reported
			}
		}
		if mi.source == inputTouchpoint {
			m.PerCandidate = true
		}
		if mi.prog != nil && readsName(mi.prog.Node(), touchpointIdent) {
			m.PerCandidate = true
		}
		pos := n
		if pos == nil {
			pos = at
		}
		switch {
		case mi.kind == TypeList:
			r.errf(pos, "%s: input %q is bound to a list; a model reads numbers and strings (use len() for a count)", what, in.Name)
		case in.Kind == models.Number && mi.kind == TypeString:
			r.errf(pos, "%s: input %q is a number in the model, but %s is a string", what, in.Name, mi.Expr)
		case in.Kind == models.String && mi.kind != TypeString:
			r.errf(pos, "%s: input %q is a string (one-hot) in the model, but %s is a %s", what, in.Name, mi.Expr, mi.kind)
		}
		out[k] = mi
	}
	return out
}

// bindInputExpr compiles the expression bound to a model input; a plain
// reference to a field reads it directly, so that a value the customer
// does not have reaches the model as missing rather than as its default.
func (r *reader) bindInputExpr(mi *ModelInput, n *yaml.Node, rs *Ruleset, comp *exprCompiler, what string) {
	src := strings.TrimSpace(n.Value)
	if a, b, ok := strings.Cut(src, "."); ok && isIdentifier(b) {
		switch a {
		case "customer":
			if fi := rs.Schema.CustomerField(b); fi >= 0 {
				mi.source, mi.index, mi.kind = inputCustomer, fi, rs.Schema.Customer[fi].Type
				return
			}
		case "context":
			if fi := rs.Schema.ContextField(b); fi >= 0 {
				mi.source, mi.index, mi.kind = inputContext, fi, rs.Schema.Context[fi].Type
				return
			}
		case touchpointIdent:
			if slot, ok := comp.layout.attrIndex[b]; ok {
				mi.source, mi.index, mi.kind = inputTouchpoint, slot, comp.layout.touchpoint[slot].typ
				return
			}
			if b == "id" || b == "kind" {
				mi.source, mi.index, mi.kind = inputTouchpoint, map[string]int{"id": 0, "kind": 1}[b], TypeString
				return
			}
		}
	}
	prog := comp.compileScoped(r, n, exprAny, what, 0, scopeModelInput)
	if prog == nil {
		return
	}
	mi.prog = prog
	c := nativeCompiler{schema: rs.Schema, layout: comp.layout}
	switch kindOf(prog.Node()) {
	case kindNumber:
		mi.kind = TypeNumber
		if f := c.number(prog.Node()); f != nil {
			mi.num = func(e *Env) float64 { return f(e, "") }
		}
	case kindBool:
		mi.kind = TypeBool
		if f := c.boolean(prog.Node()); f != nil {
			mi.num = func(e *Env) float64 { return boolNumber(f(e, "")) }
		}
	case kindString:
		mi.kind = TypeString
		if f := c.str(prog.Node()); f != nil {
			mi.str = func(e *Env) string { return f(e, "") }
		}
	case kindList:
		mi.kind = TypeList
	default:
		r.errf(n, "%s must be a number, bool or string expression, got %s", what, prog.Node().Type())
		mi.prog = nil
	}
}

// modelsRead lists the models an expression reads through model("id"),
// by index.
func modelsRead(node ast.Node, ids []string) []int {
	out := namedReads(node, modelsIdent, ids)
	sort.Ints(out)
	return out
}

// namedReads lists, in the order they first appear, the indexes in ids of
// the names an expression reads as ident.<name>: what model("id") and
// variant("id") become once rewritten.
func namedReads(node ast.Node, ident string, ids []string) []int {
	var out []int
	walk(node, func(n ast.Node) {
		name, ok := namedRead(n, ident)
		if !ok {
			return
		}
		for i, x := range ids {
			if x == name && !containsInt(out, i) {
				out = append(out, i)
			}
		}
	})
	return out
}

// namedRead returns name when n reads ident.<name> (ident["name"]).
func namedRead(n ast.Node, ident string) (string, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return "", false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	if !ok || !ok2 || id.Value != ident {
		return "", false
	}
	return prop.Value, true
}

// readsName reports whether an expression reads the top-level name.
func readsName(node ast.Node, name string) bool {
	found := false
	walk(node, func(n ast.Node) {
		if id, ok := n.(*ast.IdentifierNode); ok && id.Value == name {
			found = true
		}
	})
	return found
}

type funcVisitor func(ast.Node)

func (f funcVisitor) Visit(n *ast.Node) { f(*n) }

func walk(node ast.Node, fn func(ast.Node)) {
	ast.Walk(&node, funcVisitor(fn))
}

// recordingReader keeps what it reads, so the ruleset's version covers
// its model files.
type recordingReader struct {
	read  modelFile
	files map[string][]byte
}

func (r *recordingReader) Read(rel string) ([]byte, error) {
	data, err := r.read(rel)
	if err == nil {
		r.files[rel] = data
	}
	return data, err
}

func (rs *Ruleset) modelIDs() []string {
	ids := make([]string, len(rs.Models))
	for i := range rs.Models {
		ids[i] = rs.Models[i].ID
	}
	return ids
}

// ModelExplanation is a model's output for one customer (and touchpoint)
// with what it read and what moved it, for explanations.
type ModelExplanation struct {
	Model  string
	Output float64
	Inputs []ModelInputValue
	// Bias is the margin before any input's contribution.
	Bias float64
	// Top are the inputs that moved the margin most, largest first (at
	// most five): weight × value for logistic models, the change in
	// expected value at each split along the path for trees.
	Top []Contribution
}

// ModelInputValue is one input as the model read it.
type ModelInputValue struct {
	Name    string
	Value   features.Value // zero Kind when missing
	Missing bool
}

// Contribution is one input's share of a model's margin.
type Contribution struct {
	Input string
	Value float64
}

// ExplainModel evaluates model i on the bound environment and says why it
// gave what it gave. It allocates; explanations only.
func (e *Env) ExplainModel(i int) ModelExplanation {
	m := &e.layout.models[i]
	// Evaluated afresh: a remembered output leaves no input vector.
	out := ModelExplanation{Model: m.ID, Output: e.evalModel(i)}
	x := e.modelX[i]
	for k := range m.Inputs {
		in := ModelInputValue{Name: m.Inputs[k].Name, Missing: math.IsNaN(x[k])}
		if !in.Missing {
			if m.Model.Inputs[k].Kind == models.String {
				in.Value = features.String(m.Inputs[k].stringValue(e))
			} else {
				in.Value = features.Number(x[k])
			}
		}
		out.Inputs = append(out.Inputs, in)
	}
	contrib := make([]float64, len(x))
	out.Bias = m.Model.Contributions(x, contrib)
	for k, c := range contrib {
		if c != 0 {
			out.Top = append(out.Top, Contribution{Input: m.Inputs[k].Name, Value: c})
		}
	}
	sort.SliceStable(out.Top, func(a, b int) bool { return math.Abs(out.Top[a].Value) > math.Abs(out.Top[b].Value) })
	if len(out.Top) > 5 {
		out.Top = out.Top[:5]
	}
	return out
}

// stringValue reads a string input as text, for explanations.
func (in *ModelInput) stringValue(e *Env) string {
	switch in.source {
	case inputCustomer:
		return e.layout.customer[in.index].load(e.base).Str
	case inputContext:
		return e.layout.context[in.index].load(e.base).Str
	case inputTouchpoint:
		return e.layout.touchpoint[in.index].load(e.base).Str
	}
	if in.str != nil {
		return in.str(e)
	}
	if out, err := e.vm.Run(in.prog, e.Value()); err == nil {
		s, _ := out.(string)
		return s
	}
	return ""
}
