package models

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// below32's threshold must send every float64 the way XGBoost's float32
// comparison does: probe each threshold's neighbourhood, where rounding
// to float32 decides, and the special values.
func TestBelow32MatchesFloat32Comparison(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	specials := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, float32(math.Inf(1)), 0.5, 1e-38, 3.4e38}
	for i := 0; i < 20000; i++ {
		var th float32
		if i < len(specials) {
			th = specials[i]
		} else {
			th = math.Float32frombits(rng.Uint32())
			if th != th || math.IsInf(float64(th), -1) {
				continue
			}
		}
		thr, ok := below32(th)
		if !ok {
			t.Fatalf("below32(%v) not ok", th)
		}
		probes := []float64{thr, math.Nextafter(thr, math.Inf(1)), math.Nextafter(thr, math.Inf(-1)),
			float64(th), math.Nextafter(float64(th), math.Inf(-1)), math.Nextafter(float64(th), math.Inf(1)),
			float64(math.Nextafter32(th, float32(math.Inf(-1)))), math.Inf(1), math.Inf(-1), 0, rng.NormFloat64()}
		for _, x := range probes {
			if x != x {
				continue
			}
			if got, want := x <= thr, float32(x) < th; got != want {
				t.Fatalf("threshold %v (as %v): x=%v goes left=%v, XGBoost left=%v", th, thr, x, got, want)
			}
		}
	}
	for _, th := range []float32{float32(math.Inf(-1)), float32(math.NaN())} {
		if _, ok := below32(th); ok {
			t.Errorf("below32(%v) is ok; no value is below it", th)
		}
	}
}

// XGBoost's approximate contributions (Saabas) for the golden model: ours
// are computed in float64 from float32 statistics, XGBoost's in float32.
func TestXGBoostContributionsGolden(t *testing.T) {
	m := readModel(t, XGBoost, "testdata/xgb_binary.json")
	rows := readGolden(t, "testdata/xgb_rows.jsonl")
	f, err := os.Open("testdata/xgb_binary_contribs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	contrib := make([]float64, len(m.Inputs))
	r := 0
	for ; sc.Scan(); r++ {
		var want []json.Number
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		x := rows.vector(t, m, r, false)
		bias := m.Contributions(x, contrib)
		got := append(append([]float64(nil), contrib...), bias)
		for k := range want {
			w, _ := strconv.ParseFloat(string(want[k]), 32)
			if math.Abs(got[k]-w) > 5e-6 {
				t.Errorf("row %d, contribution %d: %v, XGBoost %v", r, k, got[k], w)
			}
		}
	}
	if r < 100 {
		t.Fatalf("only %d rows of contributions", r)
	}
	// bias + contributions is the margin, up to the float32 rounding of
	// XGBoost's own sum.
	var x [][]float64
	for r := range rows.X {
		x = append(x, rows.vector(t, m, r, false))
	}
	checkContributionsSum(t, m, x, 1e-5)
}

func TestXGBoostDescribesTheModel(t *testing.T) {
	m := readModel(t, XGBoost, "testdata/xgb_binary.json")
	if m.Type != XGBoost || m.Objective != "binary:logistic" || !m.Probability || m.Trees != 100 || m.MaxDepth != 6 {
		t.Errorf("binary model: %s %s probability=%v trees=%d depth=%d", m.Type, m.Objective, m.Probability, m.Trees, m.MaxDepth)
	}
	if len(m.Inputs) != 10 || m.Inputs[0] != (Input{"ltv", Number}) || m.Inputs[9].Name != "support_tickets" {
		t.Errorf("inputs %v", m.Inputs)
	}
	rank := readModel(t, XGBoost, "testdata/xgb_rank.json")
	if rank.Probability || rank.Objective != "rank:pairwise" || rank.Inputs[3].Name != "f3" || rank.MaxDepth != 4 {
		t.Errorf("rank model: %s probability=%v inputs %v depth %d", rank.Objective, rank.Probability, rank.Inputs, rank.MaxDepth)
	}
	if !math.IsNaN(m.Encode(0, "x")) {
		t.Error("a tree model encodes a string")
	}
}

// tinyXGB is a one-tree XGBoost model: node 0 splits input a at 0.5
// (missing goes right), leaves 1 (left, -1) and 2 (right, 2). Edits in the
// tests replace parts of it.
const tinyXGB = `{"learner":{"attributes":{},"feature_names":["a","b"],"feature_types":["float","int"],
"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"1","size_leaf_vector":"0"},
"tree_info":[0],"trees":[{"base_weights":[0,0,0],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],
"default_left":[0,0,0],"id":0,"left_children":[1,-1,-1],"loss_changes":[1,0,0],"parents":[2147483647,0,0],"right_children":[2,-1,-1],
"split_conditions":[5E-1,-1E0,2E0],"split_indices":[0,0,0],"split_type":[0,0,0],"sum_hessian":[4E0,3E0,1E0],
"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"3","size_leaf_vector":"0"}}]},"name":"gbtree"},
"learner_model_param":{"base_score":"5E-1","boost_from_average":"1","num_class":"0","num_feature":"2","num_target":"1"},
"objective":{"name":"reg:squarederror","reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,4]}`

func TestXGBoostTinyModel(t *testing.T) {
	m, err := ReadXGBoost([]byte(tinyXGB))
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	for _, c := range []struct{ a, want float64 }{
		{0.4, 0.5 - 1}, {0.5, 0.5 + 2}, {nan, 0.5 + 2}, {math.Inf(-1), -0.5}, {math.Inf(1), 2.5},
		// 0.49999999 rounds to 0.5 in float32, so it is not below the split.
		{0.49999999, 2.5}, {float64(math.Nextafter32(0.5, 0)), -0.5},
	} {
		if got := m.Predict([]float64{c.a, 0}); got != c.want {
			t.Errorf("a=%v: %v, want %v", c.a, got, c.want)
		}
	}
	// default_left sends missing values left.
	left := strings.Replace(tinyXGB, `"default_left":[0,0,0]`, `"default_left":[1,0,0]`, 1)
	m, err = ReadXGBoost([]byte(left))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Predict([]float64{nan, 0}); got != -0.5 {
		t.Errorf("missing with default_left: %v, want -0.5", got)
	}
	// Newer versions write base_score in brackets and default_left as
	// booleans; a logistic objective starts from logit(base_score).
	newer := strings.NewReplacer(`"base_score":"5E-1"`, `"base_score":"[2E-1]"`,
		`"default_left":[0,0,0]`, `"default_left":[true,false,false]`,
		`"reg:squarederror"`, `"binary:logistic"`).Replace(tinyXGB)
	m, err = ReadXGBoost([]byte(newer))
	if err != nil {
		t.Fatal(err)
	}
	base := float64(-float32(math.Log(float64(float32(1)/float32(0.2) - 1))))
	if got, want := m.Margin([]float64{nan, 0}), float64(float32(base)+float32(-1)); got != want {
		t.Errorf("margin %v, want %v", got, want)
	}
	if got, want := m.Predict([]float64{0.7, 0}), 1/(1+math.Exp(-float64(float32(base)+2))); got != want {
		t.Errorf("probability %v, want %v", got, want)
	}
	contrib := make([]float64, 2)
	bias := m.Contributions([]float64{0.7, 0}, contrib)
	// The root's mean is (3·-1 + 1·2)/4 = -0.25.
	if want := float64(float32(base)) - 0.25; math.Abs(bias-want) > 1e-12 || contrib[0] != 2.25 || contrib[1] != 0 {
		t.Errorf("bias %v contributions %v; want %v and [2.25 0]", bias, contrib, want)
	}
}

// Every malformed file is an error at the place it is wrong, never a panic.
func TestXGBoostErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
		line, col            int // 0: not checked
	}{
		{"not json", `{"learner"`, `["learner"`, `expected an object, found an array`, 1, 1},
		{"cut short", tinyXGB, tinyXGB[:200], "the file ends where", 0, 0},
		{"dart", `"name":"gbtree"`, `"name":"dart"`, "dart boosters are not supported", 0, 0},
		{"gblinear", `"name":"gbtree"`, `"name":"gblinear"`, "gblinear boosters are not supported", 0, 0},
		{"multiclass objective", `"reg:squarederror"`, `"multi:softprob"`, `objective "multi:softprob" is multiclass`, 0, 0},
		{"unknown objective", `"reg:squarederror"`, `"survival:cox"`, `objective "survival:cox" is not supported; supported: binary:logistic, reg:logistic, reg:squarederror, rank:pairwise, rank:ndcg`, 8, 21},
		{"num_class", `"num_class":"0"`, `"num_class":"3"`, "3 classes", 0, 0},
		{"categorical feature", `["float","int"]`, `["float","c"]`, "feature 1 (b) is categorical", 0, 0},
		{"unknown feature type", `["float","int"]`, `["float","x"]`, `unknown type "x"`, 0, 0},
		{"names count", `["a","b"]`, `["a"]`, "feature_names has 1 names for num_feature 2", 1, 45},
		{"duplicate names", `["a","b"]`, `["a","a"]`, `both named "a"`, 0, 0},
		{"categorical split", `"split_type":[0,0,0]`, `"split_type":[1,0,0]`, "node 0 is a categorical split", 0, 0},
		{"split index", `"split_indices":[0,0,0]`, `"split_indices":[7,0,0]`, "splits on feature 7, outside the model's 2 features", 0, 0},
		{"child out of range", `"left_children":[1,-1,-1]`, `"left_children":[5,-1,-1]`, "child 5, outside the tree's 3 nodes", 0, 0},
		{"one child", `"right_children":[2,-1,-1]`, `"right_children":[-1,-1,-1]`, "node 0 has one child", 0, 0},
		{"cycle", `"left_children":[1,-1,-1],`, `"left_children":[1,0,-1],`, "tree 0: node 1 has one child", 0, 0},
		{"cycle through both", `"left_children":[1,-1,-1],"loss_changes":[1,0,0],"parents":[2147483647,0,0],"right_children":[2,-1,-1]`,
			`"left_children":[1,0,-1],"loss_changes":[1,0,0],"parents":[2147483647,0,0],"right_children":[2,2,-1]`, "reached twice", 0, 0},
		{"unreached node", `"left_children":[1,-1,-1],"loss_changes":[1,0,0],"parents":[2147483647,0,0],"right_children":[2,-1,-1]`,
			`"left_children":[-1,-1,-1],"loss_changes":[1,0,0],"parents":[2147483647,0,0],"right_children":[-1,-1,-1]`, "2 of the tree's 3 nodes are not reached", 0, 0},
		{"array length", `"split_conditions":[5E-1,-1E0,2E0]`, `"split_conditions":[5E-1,-1E0]`, "split_conditions has 2 entries for 3 nodes", 0, 0},
		{"num_nodes", `"num_nodes":"3"`, `"num_nodes":"4"`, "num_nodes is 4", 0, 0},
		{"num_trees", `"num_trees":"1"`, `"num_trees":"2"`, "says 2 trees, but there are 1", 0, 0},
		{"tree_info group", `"tree_info":[0]`, `"tree_info":[1]`, "output group 1", 0, 0},
		{"NaN leaf", `"split_conditions":[5E-1,-1E0,2E0]`, `"split_conditions":[5E-1,NaN,2E0]`, "leaf 1 has value NaN", 0, 0},
		{"NaN split", `"split_conditions":[5E-1,-1E0,2E0]`, `"split_conditions":[NaN,-1E0,2E0]`, "split condition NaN", 0, 0},
		{"negative hessian", `"sum_hessian":[4E0,3E0,1E0]`, `"sum_hessian":[4E0,-3E0,1E0]`, "sum_hessian -3", 0, 0},
		{"base score", `"base_score":"5E-1"`, `"base_score":"x"`, `base_score "x" is not a finite number`, 0, 0},
		{"logistic base score", `"base_score":"5E-1","boost_from_average":"1","num_class":"0","num_feature":"2","num_target":"1"},
"objective":{"name":"reg:squarederror"`, `"base_score":"1E0","boost_from_average":"1","num_class":"0","num_feature":"2","num_target":"1"},
"objective":{"name":"binary:logistic"`, "must be between 0 and 1", 0, 0},
		{"vector base score", `"base_score":"5E-1"`, `"base_score":"[5E-1,1E0]"`, "more than one value", 0, 0},
		{"duplicate key", `"id":0,`, `"id":0,"id":0,`, `key "id" appears twice`, 0, 0},
		{"tree id", `"id":0,`, `"id":3,`, "tree id 3 is out of range", 0, 0},
		{"trailing data", `"version":[1,7,4]}`, `"version":[1,7,4]}}`, "after the model's closing }", 0, 0},
		{"bad number", `"split_indices":[0,0,0]`, `"split_indices":[0.5,0,0]`, "expected a whole number", 0, 0},
		{"bad escape", `"feature_names":["a"`, `"feature_names":["\q"`, `unknown escape \q`, 0, 0},
		{"num_feature", `"num_feature":"2","num_target"`, `"num_feature":"99999999","num_target"`, "num_feature 99999999 is out of range", 0, 0},
		{"no learner", `{"learner":`, `{"lerner":`, `there is no "learner"`, 1, 1},
		{"binary format", tinyXGB, "binf\x00\x00", "old binary model format", 1, 1},
		{"ubjson", tinyXGB, "{L\x00\x00\x00\x00\x00\x00\x00\x07learner", "UBJSON", 1, 1},
		{"empty", tinyXGB, "", "the file is empty", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(tinyXGB, c.old, c.new, 1)
			if src == tinyXGB {
				t.Fatalf("the edit %q does not apply", c.old)
			}
			m, err := ReadXGBoost([]byte(src))
			checkRefusal(t, m, err, c.want, c.line, c.col)
		})
	}
}

// Deep nesting is refused before it can exhaust the stack.
func TestXGBoostDeepNesting(t *testing.T) {
	src := `{"learner":{"attributes":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`
	_, err := ReadXGBoost([]byte(src))
	if err == nil || !strings.Contains(err.Error(), "nests deeper than") {
		t.Fatalf("err = %v", err)
	}
}

func ExampleReadXGBoost() {
	m, err := ReadXGBoost([]byte(tinyXGB))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Objective, m.Trees, m.Inputs, m.Predict([]float64{0.25, math.NaN()}))
	// Output: reg:squarederror 1 [{a number} {b number}] -0.5
}

// checkRefusal checks that a reader refused a file with an *Error
// containing want, at line:col when line > 0.
func checkRefusal(t *testing.T, m *Model, err error, want string, line, col int) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; model %+v", m)
	}
	me, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	if !strings.Contains(me.Message, want) {
		t.Errorf("error %q, want it to contain %q", me.Message, want)
	}
	if line > 0 && (me.Line != line || me.Col != col) {
		t.Errorf("error at %d:%d, want %d:%d (%s)", me.Line, me.Col, line, col, me.Message)
	}
}
