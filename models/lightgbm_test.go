package models

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dmitryikh/leaves"
)

// The LightGBM golden tests use the models, inputs and predictions that
// LightGBM itself wrote into github.com/dmitryikh/leaves's testdata, read
// from the module cache (the module is a test dependency).

var leavesDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/dmitryikh/leaves").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m github.com/dmitryikh/leaves: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go list -m github.com/dmitryikh/leaves gives no module directory (run go mod download)")
	}
	return filepath.Join(m.Dir, "testdata"), nil
})

func leavesFile(t testing.TB, name string) string {
	t.Helper()
	dir, err := leavesDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// readTable reads whitespace-separated numbers, one row per line, dropping
// the first skip columns.
func readTable(t testing.TB, path string, skip int) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		row := make([]float64, 0, len(fields))
		for _, s := range fields[skip:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// readLibSVM reads "label index:value …" rows with n features; LightGBM
// reads an absent feature as 0.
func readLibSVM(t testing.TB, path string, n int) [][]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		row := make([]float64, n)
		for _, kv := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(kv, ":")
			i, err1 := strconv.Atoi(k)
			f, err2 := strconv.ParseFloat(v, 64)
			if err1 != nil || err2 != nil || i >= n {
				t.Fatalf("%s: bad entry %q", path, kv)
			}
			row[i] = f
		}
		rows = append(rows, row)
	}
	return rows
}

func readLightGBMFile(t testing.TB, path string) *Model {
	t.Helper()
	return readModel(t, LightGBM, path)
}

// oneClass rewrites a multiclass model text as the single-output model of
// class k: its trees are every num_class-th tree from k, and LightGBM's raw
// score for class k is their sum. The objective becomes regression, whose
// output is that raw sum.
func oneClass(t testing.TB, text string, k int) []byte {
	t.Helper()
	head, rest, ok := strings.Cut(text, "\nTree=")
	if !ok {
		t.Fatal("no trees")
	}
	body, _, ok := strings.Cut(rest, "end of trees")
	if !ok {
		t.Fatal("no end of trees")
	}
	var classes int
	var out strings.Builder
	for _, line := range strings.Split(head, "\n") {
		key, value, _ := strings.Cut(line, "=")
		switch key {
		case "num_class":
			classes, _ = strconv.Atoi(value)
			line = "num_class=1"
		case "num_tree_per_iteration":
			line = "num_tree_per_iteration=1"
		case "objective":
			line = "objective=regression"
		case "tree_sizes":
			continue
		}
		out.WriteString(line + "\n")
	}
	blocks := strings.Split("Tree="+body, "\nTree=")
	n := 0
	for i, b := range blocks {
		if i%classes != k {
			continue
		}
		_, b, _ = strings.Cut(b, "\n") // drop the old number
		fmt.Fprintf(&out, "Tree=%d\n%s\n", n, strings.TrimRight(b, "\n"))
		n++
	}
	out.WriteString("\nend of trees\n")
	return []byte(out.String())
}

func withObjective(t testing.TB, text, objective string) []byte {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "objective=") {
			lines[i] = "objective=" + objective
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatal("no objective line")
	return nil
}

func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func TestLightGBMGoldenBinary(t *testing.T) {
	m := readLightGBMFile(t, leavesFile(t, "lg_dart_breast_cancer.model"))
	if !m.Probability || m.Objective != "binary" || m.Trees != 10 {
		t.Fatalf("model %+v", m)
	}
	x := readTable(t, leavesFile(t, "breast_cancer_test.tsv"), 0)
	want := readTable(t, leavesFile(t, "lg_dart_breast_cancer_true_predictions.txt"), 0)
	for r := range x {
		if got := m.Predict(x[r]); !closeTo(got, want[r][0], 1e-12) {
			t.Errorf("row %d: %v, LightGBM %v", r, got, want[r][0])
		}
	}
}

// lg_rf_iris.model is a random forest (average_output) written by LightGBM
// 2.2, whose predictor averaged the trees and stopped there (its issue
// 1843); its leaves hold probabilities. LightGBM since averages and then
// applies the objective's sigmoid, as Predict does, so the old predictions
// are the average, our Margin.
func TestLightGBMGoldenRandomForest(t *testing.T) {
	m := readLightGBMFile(t, leavesFile(t, "lg_rf_iris.model"))
	x := readLibSVM(t, leavesFile(t, "iris_test.libsvm"), len(m.Inputs))
	want := readTable(t, leavesFile(t, "lg_rf_iris_true_predictions.txt"), 0)
	for r := range x {
		if got := m.Margin(x[r]); !closeTo(got, want[r][0], 1e-12) {
			t.Errorf("row %d: %v, LightGBM %v", r, got, want[r][0])
		}
		if got, want := m.Predict(x[r]), 1/(1+math.Exp(-m.Margin(x[r]))); got != want {
			t.Errorf("row %d: Predict %v, want the sigmoid of the average, %v", r, got, want)
		}
	}
	checkContributionsSum(t, m, x, 1e-12)
}

// Multiclass models are split into one model per class; their raw scores
// must be LightGBM's. lg_kddcup99 has categorical splits (missing types
// None, Zero and NaN) on 14 of its 41 features.
func TestLightGBMGoldenPerClass(t *testing.T) {
	for _, c := range []struct{ model, data, raw string }{
		{"lgmulticlass.model", "multiclass_test.tsv", "lgmulticlass_true_raw_predictions.txt"},
		{"lg_kddcup99.model", "kddcup99_test.tsv", "lg_kddcup99_true_predictions.txt"},
	} {
		t.Run(c.model, func(t *testing.T) {
			text, err := os.ReadFile(leavesFile(t, c.model))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ReadLightGBM(text); err == nil || !strings.Contains(err.Error(), "multiclass") {
				t.Errorf("a multiclass model reads with error %v, want one saying it is multiclass", err)
			}
			skip := 0
			if c.model == "lgmulticlass.model" {
				skip = 1 // the label
			}
			x := readTable(t, leavesFile(t, c.data), skip)
			want := readTable(t, leavesFile(t, c.raw), 0)
			for k := range want[0] {
				m, err := ReadLightGBM(oneClass(t, string(text), k))
				if err != nil {
					t.Fatalf("class %d: %v", k, err)
				}
				for r := range x {
					if got := m.Predict(x[r]); !closeTo(got, want[r][k], 1e-12) {
						t.Fatalf("class %d, row %d: %v, LightGBM %v", k, r, got, want[r][k])
					}
				}
				checkContributionsSum(t, m, x, 1e-9)
			}
		})
	}
}

// The French motor claims models have categorical features and log-link
// objectives (LightGBM predicts exp(margin)); read as regression, the
// margin's exp must be LightGBM's prediction.
func TestLightGBMGoldenCategoricalLogLink(t *testing.T) {
	for _, name := range []string{"poisson_Frequency", "gamma_AvgClaimAmount", "tweedie_PurePremium"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(leavesFile(t, "genlin_fmtp_"+name+".model"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ReadLightGBM(text); err == nil || !strings.Contains(err.Error(), "not supported") {
				t.Errorf("log-link objective reads with error %v, want not supported", err)
			}
			m, err := ReadLightGBM(withObjective(t, string(text), "regression"))
			if err != nil {
				t.Fatal(err)
			}
			x := readTable(t, leavesFile(t, "genlin_fmtp_"+name+"_features.tsv"), 0)
			want := readTable(t, leavesFile(t, "genlin_fmtp_"+name+"_true_predictions.txt"), 0)
			for r := range x {
				if got := math.Exp(m.Margin(x[r])); !closeTo(got, want[r][0], 1e-12) {
					t.Fatalf("row %d: %v, LightGBM %v", r, got, want[r][0])
				}
			}
		})
	}
}

// LightGBM's predicted leaf indices for lg_breast_cancer.txt (a v3 file):
// every tree must reach the leaf LightGBM reached.
func TestLightGBMGoldenLeaves(t *testing.T) {
	path := leavesFile(t, "lg_breast_cancer.txt")
	m := readLightGBMFile(t, path)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var leafValues [][]float64
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, "leaf_value="); ok {
			var vals []float64
			for _, f := range strings.Fields(v) {
				x, _ := strconv.ParseFloat(f, 64)
				vals = append(vals, x)
			}
			leafValues = append(leafValues, vals)
		}
	}
	x := readTable(t, leavesFile(t, "lg_breast_cancer_data.txt"), 0)
	leaf := readTable(t, leavesFile(t, "lg_breast_cancer_data_pred_leaves.txt"), 0)
	e := m.impl.(*ensemble)
	for r := range x {
		for k, root := range e.roots {
			got := e.out[e.leaf(root, x[r])]
			if want := leafValues[k][int(leaf[r][k])]; got != want {
				t.Fatalf("row %d, tree %d: leaf value %v, LightGBM's leaf %v has %v", r, k, got, leaf[r][k], want)
			}
		}
	}
}

// Against leaves, on random rows with missing values, zeros and values on
// the thresholds: leaves reimplements LightGBM's decisions, so the two
// must agree wherever leaves follows LightGBM. (It does not where an input
// within ±1e-35 of zero meets a threshold within that range: LightGBM's
// prediction API turns such inputs into 0 and so do we, leaves does not.
// The rows here hold exact zeros, not such inputs.)
func TestLightGBMAgainstLeaves(t *testing.T) {
	for _, name := range []string{"lg_breast_cancer.txt", "lg_dart_breast_cancer.model", "model_simple.txt", "genlin_fmtp_poisson_Frequency.model"} {
		t.Run(name, func(t *testing.T) {
			path := leavesFile(t, name)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(text), "objective=poisson") {
				text = withObjective(t, string(text), "regression")
			}
			m, err := ReadLightGBM(text)
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(t.TempDir(), "m.txt")
			os.WriteFile(tmp, text, 0o644)
			lv, err := leaves.LGEnsembleFromFile(tmp, false)
			if err != nil {
				t.Fatal(err)
			}
			rows := randomRows(m, 2000, thresholds(m))
			for r, x := range rows {
				got, want := m.Margin(x), lv.PredictSingle(x, 0)
				if !closeTo(got, want, 1e-12) {
					t.Fatalf("row %d %v: %v, leaves %v", r, x, got, want)
				}
			}
		})
	}
}

// thresholds lists, per input, the thresholds its numerical splits use.
func thresholds(m *Model) [][]float64 {
	e := m.impl.(*ensemble)
	out := make([][]float64, len(m.Inputs))
	for i, n := range e.nodes {
		if !e.isLeaf(int32(i)) && n.info&flagCategorical == 0 {
			f := n.info & inputMask
			out[f] = append(out[f], n.value)
		}
	}
	return out
}

// randomRows draws rows that stress the decisions: a tenth missing, a tenth
// zero, a third on or next to a threshold, small whole numbers (category
// codes, some negative), and wide random values.
func randomRows(m *Model, n int, thr [][]float64) [][]float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float64, n)
	for r := range rows {
		x := make([]float64, len(m.Inputs))
		for i := range x {
			switch p := rng.Float64(); {
			case p < 0.1:
				x[i] = math.NaN()
			case p < 0.2:
				x[i] = 0
			case p < 0.5 && len(thr[i]) > 0:
				v := thr[i][rng.IntN(len(thr[i]))]
				switch rng.IntN(3) {
				case 0:
					x[i] = math.Nextafter(v, math.Inf(-1))
				case 1:
					x[i] = math.Nextafter(v, math.Inf(1))
				default:
					x[i] = v
				}
			case p < 0.75:
				x[i] = float64(rng.IntN(40) - 2)
			default:
				x[i] = rng.NormFloat64() * 1000
			}
		}
		rows[r] = x
	}
	return rows
}

// checkContributionsSum checks that bias plus contributions is the margin.
func checkContributionsSum(t *testing.T, m *Model, rows [][]float64, tol float64) {
	t.Helper()
	contrib := make([]float64, len(m.Inputs))
	for r, x := range rows {
		bias := m.Contributions(x, contrib)
		sum := bias
		for _, c := range contrib {
			sum += c
		}
		if margin := m.Margin(x); !closeTo(sum, margin, tol) {
			t.Fatalf("row %d: bias %v + contributions = %v, margin %v", r, bias, sum, margin)
		}
	}
}

// tinyLGB exercises each of LightGBM's decision rules. Tree 0 splits a at
// 0.5 (missing type None: NaN is 0) and then b at 0 (missing type NaN,
// default left; a threshold of 0, where LightGBM's zeroing of inputs
// within ±1e-35 matters). Tree 1 is categorical on c, categories {1, 3,
// 33}. Tree 2 splits a at 0.25 with missing type Zero, default right.
// Tree 3 is a single leaf.
const tinyLGB = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=2
objective=binary sigmoid:2
feature_names=a b c
feature_infos=[-5:5] [-1:1] 1:2:3:33
tree_sizes=1 1 1 1

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=1 1
threshold=0.5 0
decision_type=0 10
left_child=1 -1
right_child=-3 -2
leaf_value=0.3 -0.2 0.7
leaf_weight=1 1 1
leaf_count=5 3 2
internal_value=0 0
internal_weight=0 0
internal_count=10 8
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=1
split_feature=2
split_gain=1
threshold=0
decision_type=1
left_child=-1
right_child=-2
leaf_value=1 -1
leaf_weight=1 1
leaf_count=6 4
internal_value=0
internal_weight=0
internal_count=10
cat_boundaries=0 2
cat_threshold=10 2
is_linear=0
shrinkage=1


Tree=2
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=0.25
decision_type=4
left_child=-1
right_child=-2
leaf_value=0.1 -0.1
leaf_weight=1 1
leaf_count=1 1
internal_value=0
internal_weight=0
internal_count=2
is_linear=0
shrinkage=1


Tree=3
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.05
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
a=2
`

func TestLightGBMDecisionRules(t *testing.T) {
	m, err := ReadLightGBM([]byte(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	if m.Trees != 4 || m.MaxDepth != 2 || !m.Probability || m.Objective != "binary" || len(m.Inputs) != 3 {
		t.Fatalf("model %+v", m)
	}
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		a, b, c float64
		want    float64
		why     string
	}{
		{nan, nan, 1, 0.3 + 1 + -0.1 + 0.05, "NaN is 0 for a, NaN goes the default way for b; 1 is in the set; NaN is missing for Zero"},
		{0.6, 0, 2, 0.7 + -1 + -0.1 + 0.05, "2 is not in the set"},
		{0.2, 5e-36, -0.5, 0.3 + -1 + 0.1 + 0.05, "5e-36 counts as 0 (<= 0); -0.5 truncates to category 0"},
		{1e-36, 1e-30, 33.7, -0.2 + 1 + -0.1 + 0.05, "1e-30 > 0; 33.7 is category 33; 1e-36 is zero, missing for Zero"},
		{-5, -1, 3e9, 0.3 + -1 + 0.1 + 0.05, "a category past int32 is in no set"},
		{0.5, nan, 64, 0.3 + -1 + -0.1 + 0.05, "x <= threshold goes left; 64 is past the bitset"},
		{inf, 0, nan, 0.7 + -1 + -0.1 + 0.05, "NaN is in no category set"},
		{math.Copysign(0, -1), -1e-35, -1, 0.3 + -1 + -0.1 + 0.05, "-1e-35 counts as 0; -0 is zero; -1 is no category"},
	}
	for _, c := range cases {
		x := []float64{c.a, c.b, c.c}
		if got := m.Margin(x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%v: margin %v, want %v (%s)", x, got, c.want, c.why)
		}
		if got, want := m.Predict(x), 1/(1+math.Exp(-2*m.Margin(x))); got != want {
			t.Errorf("%v: Predict %v, want sigmoid(2·margin) %v", x, got, want)
		}
	}

	// Contributions: tree 0's root mean is (8·mean(node 1) + 2·0.7)/10
	// with mean(node 1) = (5·0.3 + 3·-0.2)/8.
	contrib := make([]float64, 3)
	x := []float64{0.6, 0, 2}
	bias := m.Contributions(x, contrib)
	root0 := (8*((5*0.3+3*-0.2)/8) + 2*0.7) / 10
	root1 := (6*1 + 4*-1) / 10.0
	if want := root0 + root1 + 0 + 0.05; math.Abs(bias-want) > 1e-12 {
		t.Errorf("bias %v, want %v", bias, want)
	}
	if want := []float64{0.7 - root0 + -0.1 - 0, 0, -1 - root1}; !closeTo(contrib[0], want[0], 1e-12) || contrib[1] != 0 || !closeTo(contrib[2], want[2], 1e-12) {
		t.Errorf("contributions %v, want %v", contrib, want)
	}
	checkContributionsSum(t, m, randomRows(m, 500, thresholds(m)), 1e-12)
}

func TestLightGBMRandomForestAverages(t *testing.T) {
	src := strings.Replace(tinyLGB, "objective=binary sigmoid:2\n", "objective=regression\naverage_output\n", 1)
	m, err := ReadLightGBM([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{0.6, 0, 2}
	if got, want := m.Predict(x), (0.7+-1+-0.1+0.05)/4; math.Abs(got-want) > 1e-12 || m.Probability {
		t.Errorf("average %v, want %v (probability %v)", got, want, m.Probability)
	}
	checkContributionsSum(t, m, randomRows(m, 200, thresholds(m)), 1e-12)
}

func TestLightGBMErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
		line, col            int
	}{
		{"not a model", "tree\n", "forest\n", `the first line is not "tree"`, 1, 1},
		{"multiclass", "num_class=1", "num_class=3", "num_class is 3; only models with one output", 3, 11},
		{"multiclass objective", "objective=binary sigmoid:2", "objective=multiclass num_class:3", `objective "multiclass" is multiclass`, 7, 11},
		{"unknown objective", "objective=binary sigmoid:2", "objective=poisson", `objective "poisson" is not supported; supported: binary, cross_entropy, regression, regression_l1, huber, fair, quantile, mape, lambdarank, rank_xendcg`, 7, 11},
		{"sqrt", "objective=binary sigmoid:2", "objective=regression sqrt", "sqrt", 7, 11},
		{"sigmoid", "sigmoid:2", "sigmoid:-1", "sigmoid", 7, 11},
		{"no sigmoid", "binary sigmoid:2", "binary", "no sigmoid parameter", 7, 11},
		{"names", "feature_names=a b c", "feature_names=a b", "feature_names has 2 names for max_feature_idx 2", 8, 15},
		{"duplicate names", "feature_names=a b c", "feature_names=a b a", `features 0 and 2 are both named "a"`, 8, 19},
		{"cut short", "\nend of trees\n", "\n", `without "end of trees"`, 0, 0},
		{"tree numbering", "Tree=1\n", "Tree=7\n", "expected Tree=1, found Tree=7", 0, 0},
		{"count", "leaf_value=0.3 -0.2 0.7", "leaf_value=0.3 -0.2", "tree 0: leaf_value has 2 values; want 3", 21, 12},
		{"bad value", "threshold=0.5 0\n", "threshold=0.5 zero\n", `tree 0: threshold has "zero"`, 17, 15},
		{"feature", "split_feature=0 1\n", "split_feature=0 9\n", "split 1 is on feature 9, outside the model's 3 features", 0, 0},
		{"child", "right_child=-3 -2\n", "right_child=-3 -9\n", "outside the tree's 5 nodes", 0, 0},
		{"cycle", "left_child=1 -1\n", "left_child=1 0\n", "reached twice", 0, 0},
		{"unreached", "left_child=1 -1\nright_child=-3 -2", "left_child=-2 -1\nright_child=-3 -2", "not reached", 0, 0},
		{"missing type 3", "decision_type=0 10", "decision_type=0 14", "missing type 3", 0, 0},
		{"decision type", "decision_type=0 10", "decision_type=0 99", "decision_type 99", 0, 0},
		{"category set", "threshold=0\ndecision_type=1", "threshold=4\ndecision_type=1", "names category set 4", 0, 0},
		{"cat boundaries", "cat_boundaries=0 2", "cat_boundaries=0 5", "cat_boundaries must run from 0 to the 2 values", 0, 0},
		{"linear", "is_linear=0", "is_linear=1", "linear trees are not supported", 0, 0},
		{"NaN threshold", "threshold=0.5 0\n", "threshold=nan 0\n", "threshold NaN", 0, 0},
		{"infinite leaf", "leaf_value=0.3 -0.2 0.7", "leaf_value=0.3 inf 0.7", "leaf 1 has value +Inf", 0, 0},
		{"num_leaves", "num_leaves=3", "num_leaves=99999999999", "num_leaves", 13, 12},
		{"duplicate field", "num_cat=0\nsplit_feature=0 1", "num_cat=0\nnum_cat=0\nsplit_feature=0 1", "num_cat appears twice", 0, 0},
		{"no objective", "objective=binary sigmoid:2\n", "", "no objective line", 1, 1},
		{"no trees", tinyLGB[:strings.Index(tinyLGB, "Tree=0")], tinyLGB[:strings.Index(tinyLGB, "Tree=0")] + "end of trees\n", "no trees", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(tinyLGB, c.old, c.new, 1)
			if c.name == "no trees" {
				src = c.new
			} else if src == tinyLGB {
				t.Fatalf("the edit %q does not apply", c.old)
			}
			m, err := ReadLightGBM([]byte(src))
			checkRefusal(t, m, err, c.want, c.line, c.col)
		})
	}
}
