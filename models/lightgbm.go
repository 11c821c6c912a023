package models

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LightGBM objectives this package scores. Probability objectives end in
// a sigmoid of slope × margin; the others return the margin as it is (their
// ConvertOutput is the identity).
var lgbObjectives = []struct {
	name        string
	probability bool
}{
	{"binary", true},
	{"cross_entropy", true},
	{"xentropy", true}, // cross_entropy's name in LightGBM 2.x files
	{"regression", false},
	{"regression_l1", false},
	{"huber", false},
	{"fair", false},
	{"quantile", false},
	{"mape", false},
	{"lambdarank", false},
	{"rank_xendcg", false},
}

func lgbObjectiveNames() string {
	var names []string
	for _, o := range lgbObjectives {
		if o.name != "xentropy" {
			names = append(names, o.name)
		}
	}
	return strings.Join(names, ", ")
}

// lgbLine is one line of a LightGBM model file.
type lgbLine struct {
	no         int    // 1-based
	key, value string // key=value; key alone for a bare word
	valueCol   int    // 1-based column where value starts
}

// lgbReader walks a LightGBM model file line by line.
type lgbReader struct {
	data  []byte
	lines []lgbLine
	i     int
}

func (r *lgbReader) errf(l lgbLine, col int, format string, args ...any) *Error {
	return &Error{Line: l.no, Col: max(col, 1), Message: fmt.Sprintf(format, args...)}
}

// splitLines cuts the file into lines, keeping line numbers. The text
// after "end of trees" (importances, parameters) is not read.
func splitLines(data []byte) []lgbLine {
	var out []lgbLine
	no := 0
	for len(data) > 0 {
		no++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		l := lgbLine{no: no}
		if k, v, ok := bytes.Cut(line, []byte{'='}); ok {
			l.key, l.value, l.valueCol = string(k), string(v), len(k)+2
		} else {
			l.key = string(line)
		}
		out = append(out, l)
		if l.key == "end of trees" {
			break
		}
	}
	return out
}

// lgbTree is one tree block as the file has it.
type lgbTree struct {
	head   lgbLine // the Tree=N line
	fields map[string]lgbLine
}

// ReadLightGBM reads LightGBM's text model format (Booster.save_model,
// model.txt), versions v2 to v4: one output, numerical and categorical
// splits, random forests (average_output), for the objectives in
// lgbObjectives. It scores as LightGBM's predictor does, in float64: x <=
// threshold goes left; NaN is 0 unless the split's missing type is NaN;
// inputs within ±1e-35 are 0; categories are the input truncated to an int.
func ReadLightGBM(data []byte) (*Model, error) {
	if len(data) == 0 {
		return nil, &Error{Message: "the file is empty"}
	}
	r := &lgbReader{data: data, lines: splitLines(data)}
	if r.lines[0].key != "tree" {
		return nil, &Error{Line: 1, Col: 1, Message: `not a LightGBM text model: the first line is not "tree"`}
	}
	header := map[string]lgbLine{}
	r.i = 1
	for ; r.i < len(r.lines); r.i++ {
		l := r.lines[r.i]
		if l.key == "Tree" || l.key == "end of trees" {
			break
		}
		if l.key == "" && l.value == "" {
			continue
		}
		if prev, dup := header[l.key]; dup {
			return nil, r.errf(l, 1, "%s appears twice (also on line %d)", l.key, prev.no)
		}
		header[l.key] = l
	}
	var trees []lgbTree
	for r.i < len(r.lines) && r.lines[r.i].key == "Tree" {
		t := lgbTree{head: r.lines[r.i], fields: map[string]lgbLine{}}
		r.i++
		for ; r.i < len(r.lines); r.i++ {
			l := r.lines[r.i]
			if l.key == "Tree" || l.key == "end of trees" {
				break
			}
			if l.key == "" && l.value == "" {
				continue
			}
			if prev, dup := t.fields[l.key]; dup {
				return nil, r.errf(l, 1, "%s appears twice in one tree (also on line %d)", l.key, prev.no)
			}
			t.fields[l.key] = l
		}
		trees = append(trees, t)
	}
	if r.i >= len(r.lines) || r.lines[r.i].key != "end of trees" {
		last := r.lines[len(r.lines)-1]
		return nil, r.errf(last, 1, `the file ends without "end of trees" (is it cut short?)`)
	}
	return r.build(header, trees)
}

func (r *lgbReader) build(header map[string]lgbLine, trees []lgbTree) (*Model, error) {
	top := lgbLine{no: 1}
	need := func(key string) (lgbLine, error) {
		l, ok := header[key]
		if !ok {
			return l, r.errf(top, 1, "the header has no %s line", key)
		}
		return l, nil
	}
	if l, ok := header["version"]; ok {
		switch l.value {
		case "v2", "v3", "v4":
		default:
			return nil, r.errf(l, l.valueCol, "version %q is not one this reader knows (v2 to v4)", l.value)
		}
	}
	for _, key := range []string{"num_class", "num_tree_per_iteration"} {
		l, err := need(key)
		if err != nil {
			return nil, err
		}
		if n, err := strconv.Atoi(l.value); err != nil || n != 1 {
			return nil, r.errf(l, l.valueCol, "%s is %s; only models with one output are supported (multiclass models are not)", key, l.value)
		}
	}

	// Objective.
	l, err := need("objective")
	if err != nil {
		return nil, err
	}
	obj := strings.Fields(l.value)
	if len(obj) == 0 {
		return nil, r.errf(l, l.valueCol, "the objective is empty")
	}
	name := obj[0]
	prob, known := false, false
	for _, o := range lgbObjectives {
		if o.name == name {
			prob, known = o.probability, true
		}
	}
	switch {
	case strings.HasPrefix(name, "multiclass"):
		return nil, r.errf(l, l.valueCol, "objective %q is multiclass; only models with one output are supported", name)
	case !known:
		return nil, r.errf(l, l.valueCol, "objective %q is not supported; supported: %s", name, lgbObjectiveNames())
	}
	slope := 1.0
	for _, p := range obj[1:] {
		k, v, _ := strings.Cut(p, ":")
		switch {
		case k == "sqrt":
			return nil, r.errf(l, l.valueCol, "objective %q with sqrt (predictions squared back) is not supported", name)
		case k == "sigmoid" && name == "binary":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || !(s > 0) || math.IsInf(s, 0) {
				return nil, r.errf(l, l.valueCol, "sigmoid %q must be a number above 0", v)
			}
			slope = s
		}
	}
	if name == "binary" && !strings.Contains(l.value, "sigmoid:") {
		return nil, r.errf(l, l.valueCol, "the binary objective has no sigmoid parameter")
	}

	// Inputs.
	l, err = need("max_feature_idx")
	if err != nil {
		return nil, err
	}
	maxIdx, err := strconv.Atoi(l.value)
	if err != nil || maxIdx < 0 || maxIdx >= maxInputs {
		return nil, r.errf(l, l.valueCol, "max_feature_idx %q is out of range (0 to %d)", l.value, maxInputs-1)
	}
	l, err = need("feature_names")
	if err != nil {
		return nil, err
	}
	names := strings.Split(l.value, " ")
	if len(names) != maxIdx+1 {
		return nil, r.errf(l, l.valueCol, "feature_names has %d names for max_feature_idx %d", len(names), maxIdx)
	}
	inputs := make([]Input, len(names))
	seen := make(map[string]int, len(names))
	col := l.valueCol
	for i, n := range names {
		if n == "" {
			return nil, r.errf(l, col, "feature %d has an empty name", i)
		}
		if j, dup := seen[n]; dup {
			return nil, r.errf(l, col, "features %d and %d are both named %q", j, i, n)
		}
		seen[n] = i
		inputs[i] = Input{Name: n, Kind: Number}
		col += len(n) + 1
	}
	_, average := header["average_output"]

	if len(trees) == 0 {
		return nil, r.errf(top, 1, "the model has no trees")
	}
	e := &ensemble{inputs: len(inputs), average: average}
	depth := 0
	for i, t := range trees {
		if t.head.value != strconv.Itoa(i) {
			return nil, r.errf(t.head, t.head.valueCol, "expected Tree=%d, found Tree=%s", i, t.head.value)
		}
		d, err := r.addTree(e, t, len(inputs))
		if err != nil {
			return nil, err
		}
		depth = max(depth, d)
	}
	e.done()
	return &Model{
		Type:        LightGBM,
		Objective:   name,
		Probability: prob,
		Inputs:      inputs,
		Trees:       len(trees),
		MaxDepth:    depth,
		impl:        e,
		slope:       slope,
	}, nil
}

// numbers parses a tree's space-separated field: want values (any count
// when want < 0), each through parse, which reports a bad one.
func numbers[T any](r *lgbReader, t lgbTree, key string, want int, required bool, parse func(string) (T, bool)) ([]T, error) {
	l, ok := t.fields[key]
	if !ok || (!required && l.value == "") {
		// Data counts feed contributions only; without them splits weigh
		// their children equally.
		if required && want != 0 {
			return nil, r.errf(t.head, 1, "tree %s has no %s line", t.head.value, key)
		}
		return nil, nil
	}
	var out []T
	if want > 0 {
		out = make([]T, 0, min(want, len(l.value)/2+1))
	}
	col := l.valueCol
	rest := l.value
	for rest != "" {
		tok := rest
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if tok == "" {
			col++
			continue
		}
		v, ok := parse(tok)
		if !ok {
			return nil, r.errf(l, col, "tree %s: %s has %q, which is not a valid value here", t.head.value, key, tok)
		}
		out = append(out, v)
		col += len(tok) + 1
	}
	if want >= 0 && len(out) != want {
		return nil, r.errf(l, l.valueCol, "tree %s: %s has %d values; want %d", t.head.value, key, len(out), want)
	}
	return out, nil
}

func parseInt32(s string) (int32, bool) {
	v, err := strconv.ParseInt(s, 10, 32)
	return int32(v), err == nil
}

func parseUint32(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}

func parseFloat64(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// ParseFloat reports a value past float64's range as ErrRange and
		// ±Inf; LightGBM's parser gives the same infinity.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return v, true
		}
		return 0, false
	}
	return v, true
}

// parseCount reads a data count, written as an integer (or, by some
// versions, as a double).
func parseCount(s string) (float64, bool) {
	v, ok := parseFloat64(s)
	return v, ok && v >= 0 && !math.IsInf(v, 0)
}

// addTree checks one tree block and appends it to e. LightGBM numbers
// splits 0..n-2 and leaves ~0..~(n-1) (children below 0); in raw, leaves
// follow the splits.
func (r *lgbReader) addTree(e *ensemble, t lgbTree, numInputs int) (int, error) {
	name := t.head.value
	fieldErr := func(key string, format string, args ...any) *Error {
		l, ok := t.fields[key]
		if !ok {
			l = t.head
		}
		return r.errf(l, l.valueCol, "tree %s: "+format, append([]any{name}, args...)...)
	}
	nl, ok := t.fields["num_leaves"]
	if !ok {
		return 0, r.errf(t.head, 1, "tree %s has no num_leaves line", name)
	}
	leaves, err := strconv.Atoi(nl.value)
	// Each leaf takes at least a few bytes of the file: a count past that
	// is malformed, and must not size an allocation.
	if err != nil || leaves < 1 || leaves > len(r.data) {
		return 0, r.errf(nl, nl.valueCol, "tree %s: num_leaves %q must be a whole number, 1 or more", name, nl.value)
	}
	if l, ok := t.fields["is_linear"]; ok && l.value != "0" {
		return 0, r.errf(l, l.valueCol, "tree %s is a linear tree; linear trees are not supported", name)
	}
	numCat := 0
	if l, ok := t.fields["num_cat"]; ok {
		numCat, err = strconv.Atoi(l.value)
		if err != nil || numCat < 0 || numCat >= leaves {
			return 0, r.errf(l, l.valueCol, "tree %s: num_cat %q is out of range", name, l.value)
		}
	}
	splits := leaves - 1
	feature, err := numbers(r, t, "split_feature", splits, true, parseInt32)
	if err != nil {
		return 0, err
	}
	threshold, err := numbers(r, t, "threshold", splits, true, parseFloat64)
	if err != nil {
		return 0, err
	}
	decision, err := numbers(r, t, "decision_type", splits, true, parseInt32)
	if err != nil {
		return 0, err
	}
	leftChild, err := numbers(r, t, "left_child", splits, true, parseInt32)
	if err != nil {
		return 0, err
	}
	rightChild, err := numbers(r, t, "right_child", splits, true, parseInt32)
	if err != nil {
		return 0, err
	}
	leafValue, err := numbers(r, t, "leaf_value", leaves, true, parseFloat64)
	if err != nil {
		return 0, err
	}
	leafCount, err := numbers(r, t, "leaf_count", leaves, false, parseCount)
	if err != nil {
		return 0, err
	}
	internalCount, err := numbers(r, t, "internal_count", splits, false, parseCount)
	if err != nil {
		return 0, err
	}
	var boundaries []int32
	var catBits []uint32
	if numCat > 0 {
		boundaries, err = numbers(r, t, "cat_boundaries", numCat+1, true, parseInt32)
		if err != nil {
			return 0, err
		}
		catBits, err = numbers(r, t, "cat_threshold", -1, true, parseUint32)
		if err != nil {
			return 0, err
		}
		if boundaries[0] != 0 || int(boundaries[numCat]) != len(catBits) {
			return 0, fieldErr("cat_boundaries", "cat_boundaries must run from 0 to the %d values of cat_threshold", len(catBits))
		}
		for k := 1; k <= numCat; k++ {
			if boundaries[k] < boundaries[k-1] {
				return 0, fieldErr("cat_boundaries", "cat_boundaries must not decrease")
			}
		}
	}
	setBase := int32(len(e.sets))
	bitBase := int32(len(e.bits))
	if int(bitBase)+len(catBits) >= math.MaxInt32 {
		return 0, fieldErr("cat_threshold", "the model has too many categories")
	}
	for k := 0; k < numCat; k++ {
		e.sets = append(e.sets, catSet{bitBase + boundaries[k], bitBase + boundaries[k+1]})
	}
	e.bits = append(e.bits, catBits...)

	raw := make([]rawNode, splits+leaves)
	child := func(c int32) int32 {
		if c >= 0 {
			if int(c) >= splits {
				return int32(len(raw)) // out of range: addTree reports it
			}
			return c
		}
		if leaf := ^c; int(leaf) < leaves {
			return int32(splits) + leaf
		}
		return int32(len(raw))
	}
	for k := 0; k < leaves; k++ {
		n := rawNode{left: -1, right: -1, value: leafValue[k], cover: 0}
		if leafCount != nil {
			n.cover = leafCount[k]
		}
		raw[splits+k] = n
	}
	for k := 0; k < splits; k++ {
		n := rawNode{left: child(leftChild[k]), right: child(rightChild[k]), value: threshold[k]}
		if internalCount != nil {
			n.cover = internalCount[k]
		}
		raw[k] = n
	}
	check := func(i int32) error {
		if int(i) >= splits {
			k := int(i) - splits
			if v := leafValue[k]; math.IsNaN(v) || math.IsInf(v, 0) {
				return fieldErr("leaf_value", "leaf %d has value %v; a leaf value must be finite", k, v)
			}
			return nil
		}
		n := &raw[i]
		f := feature[i]
		if f < 0 || int(f) >= numInputs {
			return fieldErr("split_feature", "split %d is on feature %d, outside the model's %d features", i, f, numInputs)
		}
		n.info = uint32(f)
		dt := decision[i]
		if dt < 0 || dt > 15 {
			return fieldErr("decision_type", "split %d has decision_type %d; LightGBM writes 0 to 15", i, dt)
		}
		thr := threshold[i]
		if math.IsNaN(thr) {
			return fieldErr("threshold", "split %d has threshold NaN", i)
		}
		if dt&1 != 0 { // categorical
			if thr != math.Trunc(thr) || thr < 0 || int(thr) >= numCat {
				return fieldErr("threshold", "categorical split %d names category set %v, outside the tree's %d sets", i, thr, numCat)
			}
			n.info |= flagCategorical
			n.value = float64(setBase + int32(thr))
			return nil
		}
		defaultLeft := dt&2 != 0
		switch missing := dt >> 2 & 3; missing {
		case 0: // None: NaN is compared as 0
			if 0 <= thr {
				n.info |= flagMissingLeft
			}
		case 1: // Zero: NaN and zero take the default way
			n.info |= flagZeroMissing
			if defaultLeft {
				n.info |= flagMissingLeft
			}
		case 2: // NaN takes the default way
			if defaultLeft {
				n.info |= flagMissingLeft
			}
		default:
			return fieldErr("decision_type", "split %d has missing type 3, which LightGBM does not define", i)
		}
		if thr >= -lgbZero && thr < lgbZero {
			n.info |= flagTinyZero
		}
		return nil
	}
	d, err := e.addTree(raw, 0, check)
	if err != nil {
		if me, ok := err.(*Error); ok {
			return 0, me
		}
		return 0, fieldErr("left_child", "%v", err)
	}
	return d, nil
}
