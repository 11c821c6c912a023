package models

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/internal/yamlalias"
)

// ReadLogistic reads a logistic regression spec from a JSON or YAML file
// (JSON is read as YAML) and builds its model. The keys are those of a
// rule file's inline logistic model:
//
//	intercept: -1.56
//	terms:
//	  - {input: ltv, weight: 0.98, mean: 239.7, std: 291.0}
//	  - {input: sessions_30d, weight: 0.27, log1p: true, mean: 1.51, std: 0.43}
//	  - {input: tenure_months, buckets: {bounds: [26, 49, 72], weights: [0.4, 0.9, 1.5, 2.2]}}
//	  - {input: segment, one_hot: {gold: 1.14, silver: 0.40, bronze: -0.50}}
//
// type: logistic may stand beside intercept and terms. Unknown keys are
// errors, so that a misspelt key does not silently drop a term's part.
func ReadLogistic(data []byte) (*Model, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, yamlError(err)
	}
	if f := yamlalias.Find(&doc); f.First != nil {
		return nil, &Error{Line: f.First.Line, Col: f.First.Column, Message: f.Message()}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := specDecoder{}
	spec, err := d.spec(root)
	if err != nil {
		return nil, err
	}
	if e := checkSpec(spec); e != nil {
		return nil, d.locate(root, e)
	}
	return NewLogistic(spec)
}

// yamlError turns the yaml package's "yaml: line N: message" into an *Error.
func yamlError(err error) *Error {
	msg := err.Error()
	var line, col int
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, _ := fmt.Sscanf(rest, "%d:", &line); n == 1 {
			_, msg, _ = strings.Cut(rest, ": ")
			col = 1
		}
	}
	if errors.Is(err, io.EOF) {
		msg = "the file is empty"
	}
	return &Error{Line: line, Col: col, Message: msg}
}

// specDecoder reads a spec from YAML nodes, remembering the node of each
// term so that checkSpec's findings can be placed.
type specDecoder struct {
	terms []map[string]*yaml.Node // per term: key -> value node, "" -> the term
}

func nodeErr(n *yaml.Node, format string, args ...any) *Error {
	return &Error{Line: n.Line, Col: n.Column, Message: fmt.Sprintf(format, args...)}
}

// mapping walks a mapping's pairs, refusing keys not in keys and keys met
// twice.
func mapping(n *yaml.Node, what string, keys []string, each func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return nodeErr(n, "%s must be a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nodeErr(k, "%s: a key must be a plain value", what)
		}
		if seen[k.Value] {
			return nodeErr(k, "%s: key %q appears twice", what, k.Value)
		}
		seen[k.Value] = true
		if keys != nil && !containsString(keys, k.Value) {
			return nodeErr(k, "%s: unknown key %q (want %s)", what, k.Value, strings.Join(keys, ", "))
		}
		if err := each(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func yamlNumber(n *yaml.Node, what string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, nodeErr(n, "%s must be a number", what)
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, nodeErr(n, "%s must be a finite number, got %q", what, n.Value)
	}
	return f, nil
}

func yamlNumbers(n *yaml.Node, what string) ([]float64, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, nodeErr(n, "%s must be a list of numbers", what)
	}
	out := make([]float64, 0, len(n.Content))
	for i, c := range n.Content {
		f, err := yamlNumber(c, fmt.Sprintf("%s[%d]", what, i))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

var (
	specKeys   = []string{"type", "intercept", "terms"}
	termKeys   = []string{"input", "weight", "log1p", "mean", "std", "one_hot", "buckets"}
	bucketKeys = []string{"bounds", "weights"}
)

func (d *specDecoder) spec(root *yaml.Node) (LogisticSpec, error) {
	var spec LogisticSpec
	var haveTerms bool
	err := mapping(root, "the logistic spec", specKeys, func(key string, k, v *yaml.Node) error {
		switch key {
		case "type":
			if v.Kind != yaml.ScalarNode || v.Value != Logistic {
				return nodeErr(v, "type must be %s in a logistic spec", Logistic)
			}
		case "intercept":
			f, err := yamlNumber(v, "intercept")
			spec.Intercept = f
			return err
		case "terms":
			haveTerms = true
			if v.Kind != yaml.SequenceNode {
				return nodeErr(v, "terms must be a list of terms")
			}
			for i, tn := range v.Content {
				t, err := d.term(tn, i)
				if err != nil {
					return err
				}
				spec.Terms = append(spec.Terms, t)
			}
		}
		return nil
	})
	if err != nil {
		return spec, err
	}
	if !haveTerms {
		return spec, nodeErr(root, "a logistic spec needs terms: a list of {input, weight, …}")
	}
	return spec, nil
}

func (d *specDecoder) term(n *yaml.Node, i int) (Term, error) {
	var t Term
	what := fmt.Sprintf("terms[%d]", i)
	nodes := map[string]*yaml.Node{"": n}
	d.terms = append(d.terms, nodes)
	err := mapping(n, what, termKeys, func(key string, k, v *yaml.Node) error {
		nodes[key] = v
		var err error
		switch key {
		case "input":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
				return nodeErr(v, "%s.input must be a name", what)
			}
			t.Input = v.Value
		case "weight":
			t.Weight, err = yamlNumber(v, what+".weight")
		case "mean":
			t.Mean, err = yamlNumber(v, what+".mean")
		case "std":
			if t.Std, err = yamlNumber(v, what+".std"); err == nil && !(t.Std > 0) {
				err = nodeErr(v, "%s.std must be above 0", what)
			}
		case "log1p":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return nodeErr(v, "%s.log1p must be true or false", what)
			}
			err = v.Decode(&t.Log1p)
		case "one_hot":
			t.Categories, t.CategoryWeights = []string{}, []float64{}
			err = mapping(v, what+".one_hot", nil, func(value string, _, wv *yaml.Node) error {
				w, err := yamlNumber(wv, what+".one_hot."+value)
				t.Categories = append(t.Categories, value)
				t.CategoryWeights = append(t.CategoryWeights, w)
				return err
			})
		case "buckets":
			t.Bounds, t.BucketWeights = []float64{}, []float64{}
			err = mapping(v, what+".buckets", bucketKeys, func(key string, _, bv *yaml.Node) error {
				nodes[key] = bv
				list, err := yamlNumbers(bv, what+".buckets."+key)
				if key == "bounds" {
					t.Bounds = list
				} else {
					t.BucketWeights = list
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return t, err
	}
	if t.Input == "" {
		return t, nodeErr(n, "%s needs input: the input the term reads", what)
	}
	_, w := nodes["weight"]
	oh, b := nodes["one_hot"], nodes["buckets"]
	switch {
	case oh != nil && b != nil:
		return t, nodeErr(b, "%s has both one_hot and buckets; a term is one or the other", what)
	case oh == nil && b == nil && !w:
		return t, nodeErr(n, "%s needs weight (or one_hot or buckets)", what)
	case oh != nil || b != nil:
		for _, key := range []string{"weight", "log1p", "mean", "std"} {
			if v, ok := nodes[key]; ok {
				return t, nodeErr(v, "%s: one_hot and buckets give a weight per value; drop %s", what, key)
			}
		}
	}
	return t, nil
}

// locate places a checkSpec finding at the node it is about.
func (d *specDecoder) locate(root *yaml.Node, e *specError) *Error {
	n := root
	if e.term >= 0 && e.term < len(d.terms) {
		nodes := d.terms[e.term]
		n = nodes[""]
		if v, ok := nodes[e.field]; ok {
			n = v
		} else if e.field == "bounds" || e.field == "weights" {
			if v, ok := nodes["buckets"]; ok {
				n = v
			}
		}
	}
	return nodeErr(n, "%s", e.Error())
}
