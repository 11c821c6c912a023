package rules

import (
	"reflect"
	"unsafe"

	"github.com/expr-lang/expr/vm"

	"github.com/touchpoint-dev/touchpoint/features"
)

// envLayout is the Go struct that expressions see as their environment,
// built from the schema at load time. A typed struct passed by value lets the
// expr VM read fields without boxing or map lookups, which keeps rule
// evaluation allocation-free.
type envLayout struct {
	typ      reflect.Type
	typeWord unsafe.Pointer // the interface type word for typ
	zero     any            // a zero value of typ, for expr.Env
	defaults reflect.Value  // *typ holding every field's default

	customer []slot
	context  []slot
	known    uintptr

	// touchpoint holds the slots of touchpoint.<name>: id and kind, then
	// the attributes touchpoints declare (attrNames, in that order).
	touchpoint []slot
	attrIndex  map[string]int
	// model holds the slot of each model's output, in Ruleset.Models order.
	model []uintptr
	// The arbitration variables, read by placements' arbitration formulas.
	propensity, value, lever, score uintptr
	// variant holds the slot of each experiment's variant name, in
	// Ruleset.Experiments order.
	variant       []uintptr
	experimentIDs []string
	// models is filled in once the models are compiled; Env.Model reads it.
	models []Model
	// perCandidate numbers the models that read touchpoint attributes
	// (-1 for the others), and perCandidates counts them.
	perCandidate       []int
	perCandidates      int
	perCandidateModels []int // the indexes of those models
}

// memoSlots is how many candidates' model outputs an Env remembers per
// request: a condition and the ranking read the same candidate's outputs,
// and a direct-mapped table keeps that to one evaluation without growing
// with the number of touchpoints.
const memoSlots = 64

// Names the expressions of a ruleset see besides customer, context and known.
const (
	touchpointIdent = "touchpoint"
	// modelsIdent is where model("id") calls point after rewriting; the
	// name cannot be written in an expression, so only model() reaches it.
	modelsIdent = "model()"
	// variantsIdent is where variant("id") calls point after rewriting.
	variantsIdent = "variant()"
)

// arbitrationVars are the names only placements' arbitration formulas read.
var arbitrationVars = []string{"propensity", "value", "lever", "score"}

type slot struct {
	offset uintptr
	typ    FieldType
}

var goTypes = map[FieldType]reflect.Type{
	TypeNumber: reflect.TypeOf(float64(0)),
	TypeString: reflect.TypeOf(""),
	TypeBool:   reflect.TypeOf(false),
	TypeList:   reflect.TypeOf([]string(nil)),
}

func structOf(fields []Field) reflect.Type {
	sf := make([]reflect.StructField, len(fields))
	for i, f := range fields {
		sf[i] = reflect.StructField{
			Name: "F" + itoa(i),
			Type: goTypes[f.Type],
			Tag:  reflect.StructTag(`expr:"` + f.Name + `"`),
		}
	}
	return reflect.StructOf(sf)
}

func newEnvLayout(s *Schema) *envLayout { return newRulesetLayout(s, nil, nil, nil) }

// newRulesetLayout lays out the environment of a ruleset whose touchpoints
// declare attrs and whose models are named modelIDs.
func newRulesetLayout(s *Schema, attrs []Field, modelIDs, experimentIDs []string) *envLayout {
	custT, ctxT := structOf(s.Customer), structOf(s.Context)
	tpFields := append([]Field{{Name: "id", Type: TypeString}, {Name: "kind", Type: TypeString}}, attrs...)
	tpT := structOf(tpFields)
	modelFields := make([]Field, len(modelIDs))
	for i, id := range modelIDs {
		modelFields[i] = Field{Name: id, Type: TypeNumber}
	}
	modelT := structOf(modelFields)
	variantFields := make([]Field, len(experimentIDs))
	for i, id := range experimentIDs {
		variantFields[i] = Field{Name: id, Type: TypeString}
	}
	variantT := structOf(variantFields)
	num := reflect.TypeOf(float64(0))
	typ := reflect.StructOf([]reflect.StructField{
		{Name: "Customer", Type: custT, Tag: `expr:"customer"`},
		{Name: "Context", Type: ctxT, Tag: `expr:"context"`},
		{Name: "Known", Type: reflect.TypeOf(false), Tag: `expr:"known"`},
		{Name: "Touchpoint", Type: tpT, Tag: reflect.StructTag(`expr:"` + touchpointIdent + `"`)},
		{Name: "Models", Type: modelT, Tag: reflect.StructTag(`expr:"` + modelsIdent + `"`)},
		{Name: "Propensity", Type: num, Tag: `expr:"propensity"`},
		{Name: "Value", Type: num, Tag: `expr:"value"`},
		{Name: "Lever", Type: num, Tag: `expr:"lever"`},
		{Name: "Score", Type: num, Tag: `expr:"score"`},
		{Name: "Variants", Type: variantT, Tag: reflect.StructTag(`expr:"` + variantsIdent + `"`)},
	})
	l := &envLayout{typ: typ, attrIndex: map[string]int{}}
	l.zero = reflect.New(typ).Elem().Interface()
	l.typeWord = (*eface)(unsafe.Pointer(&l.zero)).typ
	custOff, ctxOff := typ.Field(0).Offset, typ.Field(1).Offset
	l.known = typ.Field(2).Offset
	tpOff, modelOff := typ.Field(3).Offset, typ.Field(4).Offset
	for i, f := range tpFields {
		l.touchpoint = append(l.touchpoint, slot{offset: tpOff + tpT.Field(i).Offset, typ: f.Type})
		if i >= 2 {
			l.attrIndex[f.Name] = i
		}
	}
	for i := range modelIDs {
		l.model = append(l.model, modelOff+modelT.Field(i).Offset)
	}
	l.propensity, l.value, l.lever, l.score = typ.Field(5).Offset, typ.Field(6).Offset, typ.Field(7).Offset, typ.Field(8).Offset
	l.experimentIDs = experimentIDs
	variantOff := typ.Field(9).Offset
	for i := range experimentIDs {
		l.variant = append(l.variant, variantOff+variantT.Field(i).Offset)
	}
	for i, f := range s.Customer {
		l.customer = append(l.customer, slot{offset: custOff + custT.Field(i).Offset, typ: f.Type})
	}
	for i, f := range s.Context {
		l.context = append(l.context, slot{offset: ctxOff + ctxT.Field(i).Offset, typ: f.Type})
	}
	l.defaults = reflect.New(typ)
	base := l.defaults.UnsafePointer()
	for i, f := range s.Customer {
		l.customer[i].store(base, f.Default)
	}
	for i, f := range s.Context {
		l.context[i].store(base, f.Default)
	}
	return l
}

type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func (s slot) store(base unsafe.Pointer, v features.Value) {
	p := unsafe.Add(base, s.offset)
	switch s.typ {
	case TypeNumber:
		*(*float64)(p) = v.Num
	case TypeString:
		*(*string)(p) = v.Str
	case TypeBool:
		*(*bool)(p) = v.Bool
	case TypeList:
		*(*[]string)(p) = v.List
	}
}

func (s slot) load(base unsafe.Pointer) features.Value {
	p := unsafe.Add(base, s.offset)
	switch s.typ {
	case TypeNumber:
		return features.Value{Kind: features.KindNumber, Num: *(*float64)(p)}
	case TypeString:
		return features.Value{Kind: features.KindString, Str: *(*string)(p)}
	case TypeBool:
		return features.Value{Kind: features.KindBool, Bool: *(*bool)(p)}
	case TypeList:
		return features.Value{Kind: features.KindList, List: *(*[]string)(p)}
	}
	return features.Value{}
}

// Env is one request's expression environment: the customer's features and
// the request context bound into the ruleset's struct layout. An Env belongs
// to one goroutine at a time; get one from Ruleset.NewEnv.
type Env struct {
	layout  *envLayout
	ptr     reflect.Value // *layout.typ
	base    unsafe.Pointer
	present []bool // customer features the record carried
	ctxSet  []bool // context fields the request carried

	// The touchpoint being ranked (-1 when none) and the attributes it
	// declares, indexed like layout.touchpoint.
	tp        int
	tpLast    *Touchpoint
	tpPresent []bool
	// Model outputs are computed on first use and kept until the customer
	// or, for models reading touchpoint attributes, the touchpoint changes.
	modelDone []bool
	modelX    [][]float64 // per model: its input vector
	vm        vm.VM       // for model inputs the native compiler does not cover
	// Outputs of per-candidate models, by candidate slot (touchpoint
	// index mod memoSlots) and model: valid where memoEpoch is epoch and
	// memoTP the touchpoint.
	epoch     uint32
	memoEpoch []uint32
	memoTP    []int32
	memoOut   []float64
}

func newEnv(l *envLayout, customers, contexts int) *Env {
	ptr := reflect.New(l.typ)
	e := &Env{layout: l, ptr: ptr, base: ptr.UnsafePointer(), present: make([]bool, customers), ctxSet: make([]bool, contexts),
		tp: -1, tpPresent: make([]bool, len(l.touchpoint)), modelDone: make([]bool, len(l.model)), modelX: make([][]float64, len(l.model))}
	for i := range l.models {
		e.modelX[i] = make([]float64, len(l.models[i].Inputs))
	}
	if n := l.perCandidates * memoSlots; n > 0 {
		e.memoEpoch, e.memoTP, e.memoOut = make([]uint32, n), make([]int32, n), make([]float64, n)
	}
	e.vm.MemoryBudget = vmMemoryBudget
	return e
}

// vmMemoryBudget bounds what one evaluation on the expr VM may build:
// items of ranges (1..n), literal lists and maps.
const vmMemoryBudget = 1000

// Reset restores every field to its schema default and forgets the
// customer, the touchpoint and the model outputs.
func (e *Env) Reset() {
	e.ptr.Elem().Set(e.layout.defaults.Elem())
	clear(e.present)
	clear(e.ctxSet)
	clear(e.tpPresent)
	clear(e.modelDone)
	e.tp, e.tpLast = -1, nil
	if e.epoch++; e.epoch == 0 {
		clear(e.memoEpoch)
		e.epoch = 1
	}
}

// SetKnown records whether the customer was found in the store.
func (e *Env) SetKnown(known bool) { *(*bool)(unsafe.Add(e.base, e.layout.known)) = known }

// SetCustomer sets customer feature i (a Schema.Customer index); the value
// must be of the field's kind.
func (e *Env) SetCustomer(i int, v features.Value) {
	e.layout.customer[i].store(e.base, v)
	e.present[i] = true
}

// SetContext sets context field i (a Schema.Context index).
func (e *Env) SetContext(i int, v features.Value) {
	e.layout.context[i].store(e.base, v)
	e.ctxSet[i] = true
}

// Customer reads customer feature i and whether the record carried it.
func (e *Env) Customer(i int) (features.Value, bool) {
	return e.layout.customer[i].load(e.base), e.present[i]
}

// Context reads context field i and whether the request carried it.
func (e *Env) Context(i int) (features.Value, bool) {
	return e.layout.context[i].load(e.base), e.ctxSet[i]
}

// HasContext reports whether the request carried context field i.
func (e *Env) HasContext(i int) bool { return e.ctxSet[i] }

// Value is the environment to pass to vm.Run. It refers to the Env's memory
// rather than copying it (a copy would allocate on every request), so it is
// only valid until the Env is next modified; the VM only reads it.
func (e *Env) Value() any {
	var v any
	ef := (*eface)(unsafe.Pointer(&v))
	ef.typ = e.layout.typeWord
	ef.data = e.base
	return v
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
