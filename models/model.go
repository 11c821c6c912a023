// Package models reads ranking models (XGBoost's JSON model format,
// LightGBM's text model format, and logistic regressions written inline in
// rule files or in JSON or YAML files) and scores them natively: no
// reflection and no allocation per prediction. It knows nothing of rules or
// customers; the rules package binds a model's inputs to features.
//
// It owns what a model file means: the readers check every file in full and
// say where it is wrong, and the scorers reproduce the training library's
// own arithmetic (XGBoost's float32 comparisons and sums, LightGBM's missing
// value and categorical rules), so that a score here is the score the data
// scientist saw. Tree ensembles of both formats share one flat layout
// (trees.go), which also gives per-input contributions for explanations.
package models

import "math"

// Model types, as rule files name them.
const (
	XGBoost  = "xgboost"
	LightGBM = "lightgbm"
	Logistic = "logistic"
)

// Types lists the model types in the order messages name them.
var Types = []string{XGBoost, LightGBM, Logistic}

// InputKind says what a model input holds.
type InputKind uint8

const (
	// Number inputs hold the value itself; NaN marks a missing value.
	Number InputKind = iota
	// String inputs hold the code Encode gives a string (NaN when the
	// model does not know the string, which counts as missing).
	String
)

func (k InputKind) String() string {
	if k == String {
		return "string"
	}
	return "number"
}

// Input is one input a model reads.
type Input struct {
	Name string
	Kind InputKind
}

// Missing is the value that marks a missing input.
var Missing = math.NaN()

// Model is one loaded model, immutable and safe for concurrent use.
type Model struct {
	Type string
	// Objective is the objective as the model file names it
	// (binary:logistic, regression, …); "logistic" for inline models.
	Objective string
	// Probability is set when Predict returns a probability (a sigmoid of
	// the margin) rather than the raw margin.
	Probability bool
	// Inputs are what Predict reads, in the order of its vector.
	Inputs []Input
	// Trees and MaxDepth describe tree ensembles (0 for logistic).
	Trees, MaxDepth int

	// impl holds the format-specific scorer.
	impl scorer
	// slope scales the margin inside the sigmoid: LightGBM's binary
	// objective takes sigmoid(slope × margin); 1 for every other model.
	slope float64
}

type scorer interface {
	margin(x []float64) float64
	contributions(x, contrib []float64) (bias float64)
	encode(i int, s string) float64
}

// Predict scores one input vector x, len(x) == len(m.Inputs): NaN marks a
// missing value, and string inputs hold the code Encode returned.
func (m *Model) Predict(x []float64) float64 {
	z := m.impl.margin(x)
	if m.Probability {
		return sigmoid(m.slope * z)
	}
	return z
}

// Margin is the model's raw output before any sigmoid.
func (m *Model) Margin(x []float64) float64 { return m.impl.margin(x) }

// Contributions writes each input's contribution to the margin into
// contrib (len(contrib) == len(m.Inputs)) and returns the bias, so that
// bias plus the contributions is the margin. For logistic models a
// contribution is weight × transformed value; for trees it is the change
// in the expected value at each split along the path, summed per input.
func (m *Model) Contributions(x, contrib []float64) (bias float64) {
	return m.impl.contributions(x, contrib)
}

// Encode returns the code of string s for string input i, or NaN when the
// model does not know s.
func (m *Model) Encode(i int, s string) float64 { return m.impl.encode(i, s) }

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
