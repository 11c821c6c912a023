package models

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestLogisticTerms(t *testing.T) {
	m, err := NewLogistic(LogisticSpec{Intercept: -1, Terms: []Term{
		{Input: "ltv", Weight: 0.5, Log1p: true, Mean: 2, Std: 4},
		{Input: "churn", Weight: -2},
		{Input: "segment", Categories: []string{"gold", "silver"}, CategoryWeights: []float64{0.7, 0.2}},
		{Input: "tenure", Bounds: []float64{12, 24}, BucketWeights: []float64{-0.3, 0.1, 0.4}},
		{Input: "ltv", Bounds: []float64{100}, BucketWeights: []float64{0, 0.25}},
		{Input: "segment", Categories: []string{"bronze", "gold"}, CategoryWeights: []float64{-0.5, 0.05}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Input{{"ltv", Number}, {"churn", Number}, {"segment", String}, {"tenure", Number}}
	if len(m.Inputs) != len(want) {
		t.Fatalf("inputs %v", m.Inputs)
	}
	for i := range want {
		if m.Inputs[i] != want[i] {
			t.Fatalf("inputs %v, want %v", m.Inputs, want)
		}
	}
	if !m.Probability || m.Type != Logistic || m.Objective != "logistic" || m.Trees != 0 {
		t.Errorf("model %+v", m)
	}
	// Codes are in order of first appearance across the input's terms.
	for s, c := range map[string]float64{"gold": 0, "silver": 1, "bronze": 2} {
		if got := m.Encode(2, s); got != c {
			t.Errorf("Encode(segment, %q) = %v, want %v", s, got, c)
		}
	}
	if !math.IsNaN(m.Encode(2, "platinum")) || !math.IsNaN(m.Encode(0, "gold")) || !math.IsNaN(m.Encode(9, "gold")) {
		t.Error("unknown strings, number inputs and unknown inputs encode to NaN")
	}
	nan := math.NaN()
	gold := m.Encode(2, "gold")
	cases := []struct {
		x    []float64
		want float64
	}{
		// -1 + 0.5·(log1p(150)-2)/4 + -2·0.3 + (0.7+0.05) + 0.1 + 0.25
		{[]float64{150, 0.3, gold, 12}, -1 + 0.5*(math.Log1p(150)-2)/4 + -0.6 + 0.75 + 0.1 + 0.25},
		// Missing inputs contribute nothing; a bound equal to x counts as
		// below it; an unknown category (NaN) contributes nothing.
		{[]float64{nan, nan, nan, 24}, -1 + 0.4},
		{[]float64{99, 0, m.Encode(2, "bronze"), 11.9}, -1 + 0.5*(math.Log1p(99)-2)/4 + -0.5 + -0.3},
		// log1p below -1 is NaN: the term contributes nothing.
		{[]float64{-5, 0, 7, nan}, -1},
	}
	contrib := make([]float64, 4)
	for _, c := range cases {
		if got := m.Margin(c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%v: margin %v, want %v", c.x, got, c.want)
		}
		if got, want := m.Predict(c.x), 1/(1+math.Exp(-m.Margin(c.x))); got != want {
			t.Errorf("%v: Predict %v, want %v", c.x, got, want)
		}
		bias := m.Contributions(c.x, contrib)
		sum := bias
		for _, v := range contrib {
			sum += v
		}
		if bias != -1 || math.Abs(sum-m.Margin(c.x)) > 1e-12 {
			t.Errorf("%v: bias %v, contributions %v do not sum to the margin %v", c.x, bias, contrib, m.Margin(c.x))
		}
	}
}

func TestLogisticChecks(t *testing.T) {
	num := func(in string, w float64) Term { return Term{Input: in, Weight: w} }
	cases := []struct {
		name string
		spec LogisticSpec
		want string
	}{
		{"no terms", LogisticSpec{Intercept: 1}, "at least one term"},
		{"intercept", LogisticSpec{Intercept: math.Inf(1), Terms: []Term{num("a", 1)}}, "intercept must be a finite number"},
		{"no input", LogisticSpec{Terms: []Term{num("", 1)}}, "terms[0]: the term has no input"},
		{"weight", LogisticSpec{Terms: []Term{num("a", math.NaN())}}, "terms[0]: weight must be a finite number"},
		{"std", LogisticSpec{Terms: []Term{{Input: "a", Weight: 1, Std: -1}}}, "std must be a finite number above 0"},
		{"mean without std", LogisticSpec{Terms: []Term{{Input: "a", Weight: 1, Mean: 3}}}, "mean is set without std"},
		{"one-hot and weight", LogisticSpec{Terms: []Term{{Input: "a", Weight: 1, Categories: []string{"x"}, CategoryWeights: []float64{1}}}}, "a one-hot term gives a weight per category"},
		{"one-hot lengths", LogisticSpec{Terms: []Term{{Input: "a", Categories: []string{"x", "y"}, CategoryWeights: []float64{1}}}}, "2 categories and 1 weights"},
		{"one-hot empty", LogisticSpec{Terms: []Term{{Input: "a", Categories: []string{}, CategoryWeights: []float64{}}}}, "no categories"},
		{"one-hot twice", LogisticSpec{Terms: []Term{{Input: "a", Categories: []string{"x", "x"}, CategoryWeights: []float64{1, 2}}}}, `category "x" appears twice`},
		{"buckets and one-hot", LogisticSpec{Terms: []Term{{Input: "a", Categories: []string{"x"}, CategoryWeights: []float64{1}, Bounds: []float64{1}}}}, "not both"},
		{"bucket count", LogisticSpec{Terms: []Term{{Input: "a", Bounds: []float64{1, 2}, BucketWeights: []float64{1, 2}}}}, "one more weight than bounds"},
		{"bounds ascend", LogisticSpec{Terms: []Term{{Input: "a", Bounds: []float64{2, 2}, BucketWeights: []float64{1, 2, 3}}}}, "bounds must ascend"},
		{"bound finite", LogisticSpec{Terms: []Term{{Input: "a", Bounds: []float64{math.Inf(-1)}, BucketWeights: []float64{1, 2}}}}, "bound 0 must be a finite number"},
		{"string and number", LogisticSpec{Terms: []Term{num("a", 1), {Input: "a", Categories: []string{"x"}, CategoryWeights: []float64{1}}}}, `terms[1]: input "a" is a string here but a number in terms[0]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewLogistic(c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("%T is not an *Error", err)
			}
		})
	}
}

func TestReadLogisticSpec(t *testing.T) {
	yamlSpec := `type: logistic
intercept: -1.5
terms:
  - {input: ltv, weight: 0.9, mean: 240, std: 290}
  - {input: sessions, weight: 0.3, log1p: true, mean: 1.5, std: 0.4}
  - input: tenure
    buckets: {bounds: [26, 49], weights: [0.4, 0.9, 1.5]}
  - input: segment
    one_hot: {gold: 1.1, "silver": 0.4, bronze: -0.5}
`
	m, err := ReadLogistic([]byte(yamlSpec))
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{300, 3, 49, m.Encode(3, "silver")}
	want := -1.5 + 0.9*(300-240)/290.0 + 0.3*(math.Log1p(3)-1.5)/0.4 + 1.5 + 0.4
	if got := m.Margin(x); math.Abs(got-want) > 1e-12 {
		t.Errorf("margin %v, want %v", got, want)
	}
	// The same spec in JSON reads the same.
	jsonSpec := `{"intercept": -1.5, "terms": [{"input": "ltv", "weight": 0.9, "mean": 240, "std": 290},
 {"input": "sessions", "weight": 0.3, "log1p": true, "mean": 1.5, "std": 0.4},
 {"input": "tenure", "buckets": {"bounds": [26, 49], "weights": [0.4, 0.9, 1.5]}},
 {"input": "segment", "one_hot": {"gold": 1.1, "silver": 0.4, "bronze": -0.5}}]}`
	mj, err := ReadLogistic([]byte(jsonSpec))
	if err != nil {
		t.Fatal(err)
	}
	if got := mj.Margin(x); got != m.Margin(x) {
		t.Errorf("JSON margin %v, YAML margin %v", got, m.Margin(x))
	}
}

func TestReadLogisticErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
		line, col       int
	}{
		{"unknown key", "intercept: 1\nterms:\n  - {input: a, weigth: 1}\n", `terms[0]: unknown key "weigth" (want input, weight, log1p, mean, std, one_hot, buckets)`, 3, 16},
		{"no weight", "terms:\n  - {input: a}\n", "terms[0] needs weight (or one_hot or buckets)", 2, 5},
		{"std zero", "terms:\n  - {input: a, weight: 1, std: 0}\n", "terms[0].std must be above 0", 2, 32},
		{"bucket weights", "terms:\n  - input: a\n    buckets: {bounds: [1, 2], weights: [1, 2]}\n", "one more weight than bounds", 3, 14},
		{"bounds order", "terms:\n  - input: a\n    buckets: {bounds: [2, 1], weights: [1, 2, 3]}\n", "bounds must ascend", 3, 23},
		{"one_hot with weight", "terms:\n  - input: a\n    weight: 1\n    one_hot: {x: 1}\n", "drop weight", 3, 13},
		{"string number", "terms:\n  - {input: a, weight: \"1\"}\n", "terms[0].weight must be a number", 2, 24},
		{"mixed kinds", "terms:\n  - {input: a, weight: 1}\n  - {input: a, one_hot: {x: 1}}\n", `terms[1]: input "a" is a string here`, 3, 13},
		{"no terms", "intercept: 1\n", "needs terms", 1, 1},
		{"duplicate key", "intercept: 1\nintercept: 2\nterms: []\n", `key "intercept" appears twice`, 2, 1},
		{"alias", "terms:\n  - &t {input: a, weight: 1}\n  - *t\n", "YAML alias *t is not allowed", 3, 5},
		{"syntax", "terms: [\n", "did not find expected node content", 1, 1},
		{"empty", "", "the file is empty", 0, 0},
		{"not a mapping", "- 1\n", "the logistic spec must be a mapping", 1, 1},
		{"wrong type", "type: xgboost\nterms: []\n", "type must be logistic", 1, 7},
		{"infinite", "intercept: .inf\nterms: [{input: a, weight: 1}]\n", "intercept must be a finite number", 1, 12},
		{"empty terms", "terms: []\n", "at least one term", 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadLogistic([]byte(c.src))
			if err == nil {
				t.Fatal("no error")
			}
			me, ok := err.(*Error)
			if !ok {
				t.Fatalf("%T %v is not an *Error", err, err)
			}
			if !strings.Contains(me.Message, c.want) || me.Line != c.line || me.Col != c.col {
				t.Errorf("error %d:%d %q, want %d:%d containing %q", me.Line, me.Col, me.Message, c.line, c.col, c.want)
			}
		})
	}
}

// Inputs with few categories are found by comparing, with many by hashing;
// both give every category its weight and unknown values nothing.
func TestEncodeFewAndManyCategories(t *testing.T) {
	for _, n := range []int{3, scanCategories, scanCategories + 1, 40} {
		var term Term
		term.Input = "c"
		for k := 0; k < n; k++ {
			term.Categories = append(term.Categories, fmt.Sprintf("v%d", k))
			term.CategoryWeights = append(term.CategoryWeights, float64(k+1))
		}
		m, err := NewLogistic(LogisticSpec{Terms: []Term{term}})
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < n; k++ {
			if got := m.Margin([]float64{m.Encode(0, fmt.Sprintf("v%d", k))}); got != float64(k+1) {
				t.Errorf("%d categories: v%d gives margin %v, want %d", n, k, got, k+1)
			}
		}
		if code := m.Encode(0, "other"); !math.IsNaN(code) || m.Margin([]float64{code}) != 0 {
			t.Errorf("%d categories: an unknown value is coded %v", n, code)
		}
	}
}
