package rules

import (
	"strings"
	"unsafe"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/experiments"
)

// Experiment is an A/B test of a ruleset: who enters (When, Active), how
// they are split (Assign), and which placements its holdout covers.
type Experiment struct {
	*experiments.Experiment
	Description string
	When        *vm.Program // nil: everyone the schedule allows
	WhenNative  func(*Env) bool
	Active      *Schedule
	// Placements are the placement indexes where the holdout gets only
	// fallbacks; nil means every placement.
	Placements []int
	File       string
	Line, Col  int
}

// HoldsOut reports whether the experiment's holdout covers placement pi.
func (x *Experiment) HoldsOut(pi int) bool {
	return x.Placements == nil || containsInt(x.Placements, pi)
}

// ExperimentIDs lists the ruleset's experiments in file order.
func (rs *Ruleset) ExperimentIDs() []string {
	out := make([]string, len(rs.Experiments))
	for i := range rs.Experiments {
		out[i] = rs.Experiments[i].ID
	}
	return out
}

// Experiment returns the index of an experiment, or -1.
func (rs *Ruleset) Experiment(id string) int {
	for i := range rs.Experiments {
		if rs.Experiments[i].ID == id {
			return i
		}
	}
	return -1
}

// SetVariant makes variant("id") of experiment i read name ("" for none).
func (e *Env) SetVariant(i int, name string) {
	*(*string)(unsafe.Add(e.base, e.layout.variant[i])) = name
}

var experimentKeys = []string{"id", "description", "unit", "layer", "salt", "traffic", "variants", "holdout", "when", "active", "placements"}

// experiment reads one experiments entry.
func (r *reader) experiment(it item, rs *Ruleset, comp *exprCompiler) (Experiment, float64) {
	x := Experiment{Experiment: &experiments.Experiment{ID: it.id}, File: r.src.path, Line: it.node.Line, Col: it.node.Column}
	what := "experiment " + it.id
	traffic := 0.0
	var variantsNode *yaml.Node
	r.mapping(it.node, what, experimentKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "description":
			x.Description, _ = r.str(v, what+".description")
		case "unit":
			if u, _ := r.str(v, what+".unit"); u != "customer_id" {
				r.errf(v, "%s.unit must be customer_id, the one unit Touchpoint assigns by", what)
			}
		case "layer":
			x.Layer, _ = r.nonEmptyStr(v, what+".layer")
		case "salt":
			x.Salt, _ = r.str(v, what+".salt")
		case "traffic":
			traffic, _ = r.number(v, what+".traffic")
			if traffic <= 0 || traffic > 100 {
				r.errf(v, "%s.traffic must be above 0 and at most 100 (percent of its layer)", what)
			}
		case "variants":
			variantsNode = v
			r.mapping(v, what+".variants", nil, func(name string, k, wv *yaml.Node) {
				if !isIdentifier(name) {
					r.errf(k, "%s: variant name %q must start with a letter and use only letters, digits and _", what, name)
				}
				if name == "holdout" {
					r.errf(k, "%s: holdout is not a variant name; set holdout: <percent>", what)
				}
				w, ok := r.number(wv, what+".variants."+name)
				if ok && w <= 0 {
					r.errf(wv, "%s.variants.%s must be above 0", what, name)
				}
				x.Variants = append(x.Variants, experiments.Variant{Name: name, Weight: w})
			})
		case "holdout":
			x.Holdout, _ = r.number(v, what+".holdout")
			if x.Holdout < 0 || x.Holdout >= 100 {
				r.errf(v, "%s.holdout must be at least 0 and below 100 (percent)", what)
			}
		case "when":
			x.When = comp.compileScoped(r, v, exprBool, what+".when", 0, 0)
			x.WhenNative = nativeBool(x.When, rs.Schema, comp.layout)
		case "active":
			x.Active = r.schedule(v, what+".active")
		case "placements":
			ids, _ := r.strList(v, what+".placements")
			x.Placements = []int{}
			for j, id := range ids {
				pi := rs.Placement(id)
				if pi < 0 {
					r.errf(v.Content[j], "%s: unknown placement %q%s", what, id, suggest(id, placementIDs(rs)))
					continue
				}
				x.Placements = append(x.Placements, pi)
			}
		}
	})
	if variantsNode == nil || len(x.Variants) == 0 {
		r.errf(it.idAt, "%s needs variants: {name: weight, …}", what)
	}
	return x, traffic
}

// prepareExperiments splits layers between their experiments once all are
// read.
func prepareExperiments(rs *Ruleset, traffic []float64, items []item, errs *ErrorList) {
	list := make([]experiments.Layered, len(rs.Experiments))
	for i := range rs.Experiments {
		list[i] = experiments.Layered{Experiment: rs.Experiments[i].Experiment, Traffic: traffic[i]}
	}
	if err := experiments.Prepare(list); err != nil {
		it := items[0]
		for i := range rs.Experiments {
			if strings.HasPrefix(err.Error(), "experiment "+rs.Experiments[i].ID+":") || strings.Contains(err.Error(), "layer "+rs.Experiments[i].Layer+":") {
				it = items[i]
				break
			}
		}
		(&reader{src: it.r.src, errs: errs}).errf(it.idAt, "%v", err)
	}
}
