package models

import (
	"math"
	"os"
	"strings"
	"testing"
)

// The readers must turn any input into a model or an *Error: never a
// panic, a hang, or memory out of proportion to the input. Models that do
// read must score any vector without a panic.

func fuzzScore(t *testing.T, m *Model) {
	n := len(m.Inputs)
	if n > 1<<12 {
		return // scoring cost is per tree, not per input; skip the big vectors
	}
	x := make([]float64, n)
	contrib := make([]float64, n)
	for _, fill := range []float64{math.NaN(), 0, -1e-36, 1, -1, 3e9, math.Inf(1), 0.5} {
		for i := range x {
			x[i] = fill
		}
		m.Predict(x)
		m.Contributions(x, contrib)
	}
	for i := range x {
		m.Encode(i, "a")
	}
}

func checkReadError(t *testing.T, err error) {
	if _, ok := err.(*Error); !ok {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
}

func FuzzReadXGBoost(f *testing.F) {
	f.Add([]byte(tinyXGB))
	f.Add([]byte(strings.Replace(tinyXGB, `"left_children":[1,-1,-1]`, `"left_children":[1,0,-1]`, 1)))
	f.Add([]byte(strings.Replace(tinyXGB, `"reg:squarederror"`, `"binary:logistic"`, 1)))
	f.Add([]byte(`{"learner":{"feature_names":["\u00e9\ud83d\ude00"]}}`))
	f.Add([]byte(`[[[[[[`))
	if data, err := os.ReadFile("testdata/xgb_regression.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadXGBoost(data)
		if err != nil {
			checkReadError(t, err)
			return
		}
		fuzzScore(t, m)
	})
}

func FuzzReadLightGBM(f *testing.F) {
	f.Add([]byte(tinyLGB))
	f.Add([]byte(strings.Replace(tinyLGB, "num_cat=1", "num_cat=2", 1)))
	f.Add([]byte(strings.Replace(tinyLGB, "objective=binary sigmoid:2\n", "objective=regression\naverage_output\n", 1)))
	f.Add([]byte("tree\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=0\nobjective=regression\nfeature_names=a\n\nTree=0\nnum_leaves=1\nleaf_value=1\n\nend of trees\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadLightGBM(data)
		if err != nil {
			checkReadError(t, err)
			return
		}
		fuzzScore(t, m)
	})
}

func FuzzReadLogistic(f *testing.F) {
	f.Add([]byte("intercept: 1\nterms:\n  - {input: a, weight: 1, log1p: true, mean: 1, std: 2}\n  - {input: b, one_hot: {x: 1, y: 2}}\n  - {input: c, buckets: {bounds: [1, 2], weights: [0, 1, 2]}}\n"))
	if data, err := os.ReadFile("testdata/logistic_spec.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadLogistic(data)
		if err != nil {
			checkReadError(t, err)
			return
		}
		fuzzScore(t, m)
	})
}
