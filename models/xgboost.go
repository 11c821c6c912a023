package models

import (
	"math"
	"strconv"
	"strings"
)

// XGBoost objectives this package scores, and whether each is a
// probability (sigmoid of a margin that starts at logit(base_score)).
var xgbObjectives = []struct {
	name        string
	probability bool
}{
	{"binary:logistic", true},
	{"reg:logistic", true},
	{"reg:squarederror", false},
	{"rank:pairwise", false},
	{"rank:ndcg", false},
}

func xgbObjectiveNames() string {
	names := make([]string, len(xgbObjectives))
	for i, o := range xgbObjectives {
		names[i] = o.name
	}
	return strings.Join(names, ", ")
}

// xgbFile is what ReadXGBoost takes from the JSON before it builds the
// model; *At fields are byte offsets, for errors.
type xgbFile struct {
	haveLearner bool
	learnerAt   int

	names   []string
	namesAt int
	types   []string
	typesAt int

	booster       int
	boosterName   string
	boosterNameAt int
	haveModel     bool

	numTrees         int64
	numTreesAt       int
	sizeLeafVector   int64
	sizeLeafVectorAt int
	treeInfo         []int64
	treeInfoAt       int
	trees            []xgbTree
	treesAt          int

	baseScore               string
	baseScoreAt             int
	numClass, numFeature    int64
	numTarget               int64
	numClassAt, numTargetAt int
	numFeatureAt            int
	haveNumFeature          bool
	paramAt                 int
	haveParam               bool

	objective       int
	objectiveName   string
	objectiveNameAt int
}

// xgbTree is one tree's arrays as the file has them.
type xgbTree struct {
	at, id, idAt int
	haveID       bool

	left, right, splitIndex, splitType []int32
	cond, hess                         []float64
	defaultLeft                        []bool
	categoryNodes                      int

	numNodes, numDeleted int64
	haveNumNodes         bool
	sizeLeafVector       int64

	// where each array starts, for errors
	arrayAt map[string]int
}

// ReadXGBoost reads the JSON model format of XGBoost's Booster.save_model
// (a file name ending in .json), as XGBoost 1.x to 3.x write it: gbtree
// boosters with one output and numerical splits, for the objectives in
// xgbObjectives. It checks the whole file and scores exactly as XGBoost's
// predictor does: inputs and thresholds compared in float32 (x < split
// goes left, NaN goes the default way), leaves summed in float32 from the
// base margin.
func ReadXGBoost(data []byte) (*Model, error) {
	if err := sniffXGBoost(data); err != nil {
		return nil, err
	}
	s := &jsonScanner{data: data}
	var f xgbFile
	f.booster, f.objective, f.paramAt = -1, -1, -1
	err := s.object(func(key string, at int) error {
		if key == "learner" {
			f.haveLearner, f.learnerAt = true, at
			return f.learner(s)
		}
		return s.skip()
	})
	if err != nil {
		return nil, err
	}
	if s.peek() != 0 {
		return nil, s.errAt(s.pos, "unexpected %s after the model's closing }", s.describe())
	}
	return f.build(data)
}

// sniffXGBoost names the XGBoost formats that are not JSON.
func sniffXGBoost(data []byte) error {
	switch {
	case len(data) == 0:
		return &Error{Message: "the file is empty"}
	case strings.HasPrefix(string(data[:min(len(data), 4)]), "binf"):
		return &Error{Line: 1, Col: 1, Message: "this is XGBoost's old binary model format; save the model with a file name ending in .json"}
	case len(data) > 1 && data[0] == '{' && strings.IndexByte("$#iUIlLdDSTFZ[{", data[1]) >= 0 && data[1] != '"':
		return &Error{Line: 1, Col: 1, Message: "this looks like XGBoost's UBJSON format; save the model with a file name ending in .json"}
	}
	return nil
}

func (f *xgbFile) learner(s *jsonScanner) error {
	return s.object(func(key string, at int) error {
		switch key {
		case "feature_names":
			f.namesAt = s.pos
			f.names = nil
			return s.array(func(int) error {
				v, err := s.str()
				f.names = append(f.names, v)
				return err
			})
		case "feature_types":
			f.typesAt = s.pos
			f.types = nil
			return s.array(func(int) error {
				v, err := s.str()
				f.types = append(f.types, v)
				return err
			})
		case "gradient_booster":
			f.booster = at
			return f.gradientBooster(s)
		case "learner_model_param":
			f.paramAt, f.haveParam = at, true
			return s.object(func(key string, at int) error {
				var err error
				switch key {
				case "base_score":
					s.space()
					f.baseScoreAt = s.pos
					f.baseScore, err = s.str()
				case "num_class":
					f.numClass, f.numClassAt, err = s.intString()
				case "num_feature":
					f.haveNumFeature = true
					f.numFeature, f.numFeatureAt, err = s.intString()
				case "num_target":
					f.numTarget, f.numTargetAt, err = s.intString()
				default:
					err = s.skip()
				}
				return err
			})
		case "objective":
			f.objective = at
			return s.object(func(key string, at int) error {
				if key != "name" {
					return s.skip()
				}
				s.space()
				f.objectiveNameAt = s.pos
				var err error
				f.objectiveName, err = s.str()
				return err
			})
		}
		return s.skip()
	})
}

func (f *xgbFile) gradientBooster(s *jsonScanner) error {
	return s.object(func(key string, at int) error {
		switch key {
		case "name":
			s.space()
			f.boosterNameAt = s.pos
			var err error
			f.boosterName, err = s.str()
			return err
		case "model":
			f.haveModel = true
			return f.model(s)
		}
		return s.skip()
	})
}

func (f *xgbFile) model(s *jsonScanner) error {
	f.numTrees = -1
	return s.object(func(key string, at int) error {
		switch key {
		case "gbtree_model_param":
			return s.object(func(key string, at int) error {
				var err error
				switch key {
				case "num_trees":
					f.numTrees, f.numTreesAt, err = s.intString()
				case "size_leaf_vector":
					f.sizeLeafVector, f.sizeLeafVectorAt, err = s.intString()
				default:
					err = s.skip()
				}
				return err
			})
		case "tree_info":
			f.treeInfoAt = s.pos
			return s.array(func(int) error {
				v, _, err := s.integer()
				f.treeInfo = append(f.treeInfo, v)
				return err
			})
		case "trees":
			s.space()
			f.treesAt = s.pos
			return s.array(func(int) error {
				t, err := readXGBTree(s)
				f.trees = append(f.trees, t)
				return err
			})
		}
		return s.skip()
	})
}

func readXGBTree(s *jsonScanner) (xgbTree, error) {
	s.space()
	t := xgbTree{at: s.pos, arrayAt: map[string]int{}}
	ints := func(dst *[]int32) error {
		return s.array(func(int) error {
			v, _, err := s.integer()
			*dst = append(*dst, int32(v))
			return err
		})
	}
	floats := func(dst *[]float64) error {
		return s.array(func(int) error {
			v, _, err := s.float(32)
			*dst = append(*dst, v)
			return err
		})
	}
	err := s.object(func(key string, at int) error {
		s.space()
		t.arrayAt[key] = s.pos
		switch key {
		case "id":
			t.haveID = true
			v, p, err := s.integer()
			t.id, t.idAt = int(v), p
			return err
		case "left_children":
			return ints(&t.left)
		case "right_children":
			return ints(&t.right)
		case "split_indices":
			return ints(&t.splitIndex)
		case "split_type":
			return ints(&t.splitType)
		case "split_conditions":
			return floats(&t.cond)
		case "sum_hessian":
			return floats(&t.hess)
		case "default_left":
			return s.array(func(int) error {
				v, _, err := s.boolean()
				t.defaultLeft = append(t.defaultLeft, v)
				return err
			})
		case "categories_nodes":
			return s.array(func(int) error {
				t.categoryNodes++
				return s.skip()
			})
		case "tree_param":
			return s.object(func(key string, at int) error {
				var err error
				switch key {
				case "num_nodes":
					t.haveNumNodes = true
					t.numNodes, _, err = s.intString()
				case "num_deleted":
					t.numDeleted, _, err = s.intString()
				case "size_leaf_vector":
					t.sizeLeafVector, _, err = s.intString()
				default:
					err = s.skip()
				}
				return err
			})
		}
		return s.skip()
	})
	return t, err
}

// build checks what the file said and turns it into a model.
func (f *xgbFile) build(data []byte) (*Model, error) {
	at := func(off int, format string, args ...any) *Error { return errorAt(data, off, format, args...) }
	switch {
	case !f.haveLearner:
		return nil, at(0, `not an XGBoost JSON model: there is no "learner" object`)
	case f.booster < 0:
		return nil, at(f.learnerAt, `the learner has no "gradient_booster"`)
	case f.boosterName != "gbtree":
		off := f.boosterNameAt
		if f.boosterName == "" {
			off = f.booster
		}
		switch f.boosterName {
		case "dart":
			return nil, at(off, "dart boosters are not supported (it scales trees by their drop weights); train with booster gbtree")
		case "gblinear":
			return nil, at(off, "gblinear boosters are not supported; use a logistic model for a linear one, or train with booster gbtree")
		}
		return nil, at(off, "booster %q is not supported; only gbtree is", f.boosterName)
	case !f.haveModel:
		return nil, at(f.booster, `the gbtree booster has no "model"`)
	case f.objective < 0:
		return nil, at(f.learnerAt, `the learner has no "objective"`)
	case !f.haveParam:
		return nil, at(f.learnerAt, `the learner has no "learner_model_param"`)
	}

	// Objective.
	prob, known := false, false
	for _, o := range xgbObjectives {
		if o.name == f.objectiveName {
			prob, known = o.probability, true
		}
	}
	if !known {
		off := f.objectiveNameAt
		if f.objectiveName == "" {
			off = f.objective
		}
		if strings.HasPrefix(f.objectiveName, "multi:") {
			return nil, at(off, "objective %q is multiclass; only models with one output are supported (%s)", f.objectiveName, xgbObjectiveNames())
		}
		return nil, at(off, "objective %q is not supported; supported: %s", f.objectiveName, xgbObjectiveNames())
	}
	if f.numClass > 1 {
		return nil, at(f.numClassAt, "the model has %d classes; only models with one output are supported", f.numClass)
	}
	if f.numTarget > 1 {
		return nil, at(f.numTargetAt, "the model has %d targets; only models with one output are supported", f.numTarget)
	}
	if f.sizeLeafVector > 1 {
		return nil, at(f.sizeLeafVectorAt, "the model has vector leaves (size_leaf_vector %d); only models with one output are supported", f.sizeLeafVector)
	}

	// Base score, as a margin.
	base, err := f.baseMargin(data, prob)
	if err != nil {
		return nil, err
	}

	// Inputs.
	if !f.haveNumFeature {
		return nil, at(f.paramAt, `learner_model_param has no "num_feature"`)
	}
	if f.numFeature < 0 || f.numFeature > maxInputs {
		return nil, at(f.numFeatureAt, "num_feature %d is out of range (0 to %d)", f.numFeature, maxInputs)
	}
	nf := int(f.numFeature)
	inputs, err := f.inputs(data, nf)
	if err != nil {
		return nil, err
	}

	// Trees.
	if f.numTrees < 0 {
		return nil, at(f.booster, `the gbtree model has no "gbtree_model_param" with "num_trees"`)
	}
	if int64(len(f.trees)) != f.numTrees {
		return nil, at(f.treesAt, "gbtree_model_param says %d trees, but there are %d", f.numTrees, len(f.trees))
	}
	if len(f.treeInfo) != len(f.trees) {
		return nil, at(f.treeInfoAt, "tree_info has %d entries for %d trees", len(f.treeInfo), len(f.trees))
	}
	for i, g := range f.treeInfo {
		if g != 0 {
			return nil, at(f.treeInfoAt, "tree %d belongs to output group %d; only models with one output are supported", i, g)
		}
	}
	// XGBoost places each tree by its id; they must number the trees.
	order := make([]int, len(f.trees))
	for i := range order {
		order[i] = -1
	}
	for i := range f.trees {
		t := &f.trees[i]
		id := i
		if t.haveID {
			id = t.id
		}
		if id < 0 || id >= len(f.trees) || order[id] >= 0 {
			return nil, at(t.idAt, "tree id %d is out of range or used twice (%d trees)", t.id, len(f.trees))
		}
		order[id] = i
	}

	e := &ensemble{base: base, sum32: true, inputs: nf}
	depth := 0
	for id, i := range order {
		d, err := f.trees[i].add(e, data, id, inputs)
		if err != nil {
			return nil, err
		}
		depth = max(depth, d)
	}
	e.done()
	return &Model{
		Type:        XGBoost,
		Objective:   f.objectiveName,
		Probability: prob,
		Inputs:      inputs,
		Trees:       len(order),
		MaxDepth:    depth,
		impl:        e,
		slope:       1,
	}, nil
}

// baseMargin is base_score in margin space, computed as XGBoost does in
// float32: logit(base_score) for logistic objectives, base_score itself
// for the others. XGBoost 1.x writes "5E-1", later versions "[5E-1]".
func (f *xgbFile) baseMargin(data []byte, logistic bool) (float64, error) {
	at := func(format string, args ...any) *Error { return errorAt(data, f.baseScoreAt, format, args...) }
	if f.baseScoreAt == 0 {
		return 0, errorAt(data, f.paramAt, `learner_model_param has no "base_score"`)
	}
	text := f.baseScore
	if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
		text = strings.TrimSpace(text[1 : len(text)-1])
		if strings.Contains(text, ",") {
			return 0, at("base_score %q has more than one value; only models with one output are supported", f.baseScore)
		}
	}
	v, err := strconv.ParseFloat(text, 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, at("base_score %q is not a finite number", f.baseScore)
	}
	b := float32(v)
	if !logistic {
		return float64(b), nil
	}
	if !(b > 0 && b < 1) {
		return 0, at("base_score %v must be between 0 and 1 (exclusive) for a logistic objective", b)
	}
	odds := float32(1)/b - float32(1)
	return float64(-float32(math.Log(float64(odds)))), nil
}

func (f *xgbFile) inputs(data []byte, nf int) ([]Input, error) {
	if len(f.names) > 0 && len(f.names) != nf {
		return nil, errorAt(data, f.namesAt, "feature_names has %d names for num_feature %d", len(f.names), nf)
	}
	if len(f.types) > 0 && len(f.types) != nf {
		return nil, errorAt(data, f.typesAt, "feature_types has %d types for num_feature %d", len(f.types), nf)
	}
	for i, t := range f.types {
		switch t {
		case "q", "float", "int", "i":
		case "c":
			return nil, errorAt(data, f.typesAt, "feature %d (%s) is categorical; categorical features are not supported (encode it as numbers before training)", i, f.name(i))
		default:
			return nil, errorAt(data, f.typesAt, "feature %d (%s) has unknown type %q (want q, float, int, i)", i, f.name(i), t)
		}
	}
	inputs := make([]Input, nf)
	seen := make(map[string]int, nf)
	for i := range inputs {
		name := f.name(i)
		if name == "" {
			return nil, errorAt(data, f.namesAt, "feature %d has an empty name", i)
		}
		if j, dup := seen[name]; dup {
			return nil, errorAt(data, f.namesAt, "features %d and %d are both named %q", j, i, name)
		}
		seen[name] = i
		inputs[i] = Input{Name: name, Kind: Number}
	}
	return inputs, nil
}

func (f *xgbFile) name(i int) string {
	if len(f.names) > 0 {
		return f.names[i]
	}
	return "f" + strconv.Itoa(i)
}

// add checks tree id and appends it to e.
func (t *xgbTree) add(e *ensemble, data []byte, id int, inputs []Input) (int, error) {
	fail := func(key string, format string, args ...any) *Error {
		off, ok := t.arrayAt[key]
		if !ok {
			off = t.at
		}
		return errorAt(data, off, "tree %d: "+format, append([]any{id}, args...)...)
	}
	n := len(t.left)
	if !t.haveNumNodes {
		return 0, fail("", `tree_param has no "num_nodes"`)
	}
	if t.numNodes != int64(n) {
		return 0, fail("left_children", "left_children has %d entries; num_nodes is %d", n, t.numNodes)
	}
	if n == 0 {
		return 0, fail("left_children", "the tree has no nodes")
	}
	for _, a := range []struct {
		key string
		n   int
		opt bool
	}{
		{"right_children", len(t.right), false},
		{"split_indices", len(t.splitIndex), false},
		{"split_conditions", len(t.cond), false},
		{"default_left", len(t.defaultLeft), false},
		{"split_type", len(t.splitType), true},
		{"sum_hessian", len(t.hess), true},
	} {
		if a.n != n && !(a.opt && a.n == 0) {
			return 0, fail(a.key, "%s has %d entries for %d nodes", a.key, a.n, n)
		}
	}
	if t.sizeLeafVector > 1 {
		return 0, fail("tree_param", "vector leaves (size_leaf_vector %d) are not supported", t.sizeLeafVector)
	}
	if t.numDeleted < 0 || t.numDeleted > int64(n) {
		return 0, fail("tree_param", "num_deleted %d is out of range", t.numDeleted)
	}
	raw := make([]rawNode, n)
	for i := range raw {
		r := rawNode{left: t.left[i], right: t.right[i], value: t.cond[i], cover: 1}
		if len(t.hess) > 0 {
			r.cover = t.hess[i]
		}
		if r.left >= 0 {
			r.info = uint32(max(t.splitIndex[i], 0))
			if t.defaultLeft[i] {
				r.info |= flagMissingLeft
			}
		}
		raw[i] = r
	}
	check := func(i int32) error {
		r := &raw[i]
		if len(t.hess) > 0 && !(t.hess[i] >= 0 && t.hess[i] <= math.MaxFloat32) {
			return fail("sum_hessian", "node %d has sum_hessian %v; it must be a finite number, 0 or more", i, t.hess[i])
		}
		if r.left < 0 {
			if math.IsNaN(r.value) || math.IsInf(r.value, 0) {
				return fail("split_conditions", "leaf %d has value %v; a leaf value must be finite", i, r.value)
			}
			return nil
		}
		if len(t.splitType) > 0 && t.splitType[i] != 0 || t.categoryNodes > 0 {
			return fail("split_type", "node %d is a categorical split; categorical splits are not supported (encode the feature as numbers before training)", i)
		}
		if f := t.splitIndex[i]; f < 0 || int(f) >= len(inputs) {
			return fail("split_indices", "node %d splits on feature %d, outside the model's %d features", i, f, len(inputs))
		}
		thr, ok := below32(float32(r.value))
		if !ok {
			return fail("split_conditions", "node %d has split condition %v; no value is below it", i, r.value)
		}
		r.value = thr
		return nil
	}
	d, err := e.addTree(raw, int(t.numDeleted), check)
	if err != nil {
		if me, ok := err.(*Error); ok {
			return 0, me
		}
		return 0, fail("left_children", "%v", err)
	}
	return d, nil
}
