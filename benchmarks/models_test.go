package benchmarks

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
	"testing"

	"github.com/dmitryikh/leaves"

	"github.com/touchpoint-dev/touchpoint/models"
)

// BenchmarkModel measures one prediction (Predict: margin and sigmoid) of
// each kind of model on rows that cycle through a golden file, with its
// allocations. Targets: logistic ≤ 100 ns, xgboost_100x6 ≤ 5 µs, 0 allocs.
//
// The _leaves cases score the same model with github.com/dmitryikh/leaves
// in the same run, so the two read as a ratio:
//
//   - xgboost_100x6 is models/testdata/xgb_binary.json (100 trees of depth
//     6, about 3,200 nodes); leaves reads XGBoost's old binary format, which
//     make_golden.py writes for it as xgb_binary.leaves.model.
//   - lightgbm_100x6 is the same trees written as a LightGBM text model
//     (lightgbmText below), so both libraries score identical trees in
//     LightGBM's float64 arithmetic.
//   - lightgbm_breast_cancer (39 numerical trees) and lightgbm_categorical
//     (100 trees splitting on five categorical features, of the French
//     motor claims data) are models LightGBM wrote, from leaves' testdata,
//     on rows drawn column by column from the data that came with them.
//   - xgboost_100x6_contributions measures Contributions.
func BenchmarkModel(b *testing.B) {
	root := "../models/testdata/"
	xgbRows := goldenVectors(b, root+"xgb_rows.jsonl")

	b.Run("logistic", func(b *testing.B) {
		m := readModel(b, models.Logistic, root+"logistic_spec.json")
		runModel(b, m.Predict, vectorsFor(b, m, goldenVectors(b, root+"logistic_rows.jsonl")))
	})

	b.Run("xgboost_100x6", func(b *testing.B) {
		m := readModel(b, models.XGBoost, root+"xgb_binary.json")
		runModel(b, m.Predict, vectorsFor(b, m, xgbRows))
	})
	b.Run("xgboost_100x6_leaves", func(b *testing.B) {
		m := readModel(b, models.XGBoost, root+"xgb_binary.json")
		lv, err := leaves.XGEnsembleFromFile(root+"xgb_binary.leaves.model", true)
		if err != nil {
			b.Fatal(err)
		}
		runModel(b, func(x []float64) float64 { return lv.PredictSingle(x, 0) }, vectorsFor(b, m, xgbRows))
	})
	b.Run("xgboost_100x6_contributions", func(b *testing.B) {
		m := readModel(b, models.XGBoost, root+"xgb_binary.json")
		contrib := make([]float64, len(m.Inputs))
		runModel(b, func(x []float64) float64 { return m.Contributions(x, contrib) }, vectorsFor(b, m, xgbRows))
	})

	b.Run("lightgbm_100x6", func(b *testing.B) {
		xm := readModel(b, models.XGBoost, root+"xgb_binary.json")
		m, err := models.ReadLightGBM(lightgbmText(b, root+"xgb_binary.json"))
		if err != nil {
			b.Fatal(err)
		}
		rows := vectorsFor(b, xm, xgbRows)
		// The same trees, so the same predictions up to float32 sums.
		for _, x := range rows {
			if d := math.Abs(m.Predict(x) - xm.Predict(x)); d > 1e-5 {
				b.Fatalf("the LightGBM copy predicts %v, the XGBoost model %v", m.Predict(x), xm.Predict(x))
			}
		}
		runModel(b, m.Predict, rows)
	})
	b.Run("lightgbm_100x6_leaves", func(b *testing.B) {
		xm := readModel(b, models.XGBoost, root+"xgb_binary.json")
		lv := leavesLightGBM(b, lightgbmText(b, root+"xgb_binary.json"))
		runModel(b, func(x []float64) float64 { return lv.PredictSingle(x, 0) }, vectorsFor(b, xm, xgbRows))
	})

	for _, c := range []struct{ name, model, rows, objective string }{
		{"lightgbm_breast_cancer", "lg_breast_cancer.txt", "lg_breast_cancer_data.txt", ""},
		// LightGBM's poisson objective is exp(margin), which Touchpoint does
		// not offer; read as regression, the trees are the same.
		{"lightgbm_categorical", "genlin_fmtp_poisson_Frequency.model", "genlin_fmtp_poisson_Frequency_features.tsv", "regression"},
	} {
		var text []byte
		var rows [][]float64
		setup := func(b *testing.B) {
			if text != nil {
				return
			}
			dir := leavesTestdata(b)
			var err error
			text, err = os.ReadFile(filepath.Join(dir, c.model))
			if err != nil {
				b.Fatal(err)
			}
			if c.objective != "" {
				text = []byte(regexpObjective(string(text), c.objective))
			}
			rows = shuffleColumns(readTSV(b, filepath.Join(dir, c.rows)), 4096)
		}
		b.Run(c.name, func(b *testing.B) {
			setup(b)
			m, err := models.ReadLightGBM(text)
			if err != nil {
				b.Fatal(err)
			}
			runModel(b, m.Predict, rows)
		})
		b.Run(c.name+"_leaves", func(b *testing.B) {
			setup(b)
			lv := leavesLightGBM(b, text)
			runModel(b, func(x []float64) float64 { return lv.PredictSingle(x, 0) }, rows)
		})
	}
}

var sinkFloat float64

func runModel(b *testing.B, predict func([]float64) float64, rows [][]float64) {
	b.ReportAllocs()
	i := 0
	var s float64
	for b.Loop() {
		s += predict(rows[i])
		if i++; i == len(rows) {
			i = 0
		}
	}
	sinkFloat = s
}

func readModel(b *testing.B, typ, path string) *models.Model {
	m, err := models.ReadFile(typ, path)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// namedRows are a golden rows file's rows by column name.
type namedRows struct {
	columns []string
	rows    [][]any // float64, string or nil per column
}

func goldenVectors(b *testing.B, path string) namedRows {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out namedRows
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Columns []string
			X       []any
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			b.Fatal(err)
		}
		if line.Columns != nil {
			out.columns = line.Columns
			continue
		}
		out.rows = append(out.rows, line.X)
	}
	return out
}

// vectorsFor turns rows into m's input vectors: NaN for missing values,
// Encode's codes for strings.
func vectorsFor(b *testing.B, m *models.Model, r namedRows) [][]float64 {
	col := make([]int, len(m.Inputs))
	for i, in := range m.Inputs {
		col[i] = -1
		for c, name := range r.columns {
			if name == in.Name {
				col[i] = c
			}
		}
		if col[i] < 0 {
			b.Fatalf("no column for input %s", in.Name)
		}
	}
	out := make([][]float64, len(r.rows))
	for k, row := range r.rows {
		x := make([]float64, len(m.Inputs))
		for i := range x {
			switch v := row[col[i]].(type) {
			case float64:
				x[i] = v
			case string:
				x[i] = m.Encode(i, v)
			default:
				x[i] = math.NaN()
			}
		}
		out[k] = x
	}
	return out
}

// leavesTestdata is the testdata directory of the leaves module, which
// holds models and data LightGBM wrote.
func leavesTestdata(b *testing.B) string {
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/dmitryikh/leaves").Output()
	if err != nil {
		b.Fatalf("go list -m github.com/dmitryikh/leaves: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		b.Fatal("no module directory for github.com/dmitryikh/leaves (run go mod download)")
	}
	return filepath.Join(m.Dir, "testdata")
}

func readTSV(b *testing.B, path string) [][]float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var rows [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row []float64
		for _, f := range strings.Fields(line) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				b.Fatal(err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// shuffleColumns draws n rows whose every value comes from a random row
// of data: the columns keep their distributions, and there are too many
// rows for the branch predictor to learn the paths, as in real traffic.
func shuffleColumns(data [][]float64, n int) [][]float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([][]float64, n)
	for i := range out {
		row := make([]float64, len(data[0]))
		for j := range row {
			row[j] = data[rng.IntN(len(data))][j]
		}
		out[i] = row
	}
	return out
}

func regexpObjective(text, objective string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "objective=") {
			lines[i] = "objective=" + objective
		}
	}
	return strings.Join(lines, "\n")
}

func leavesLightGBM(b *testing.B, text []byte) *leaves.Ensemble {
	path := filepath.Join(b.TempDir(), "model.txt")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		b.Fatal(err)
	}
	lv, err := leaves.LGEnsembleFromFile(path, true)
	if err != nil {
		b.Fatal(err)
	}
	return lv
}

// lightgbmText writes an XGBoost JSON model's trees as a LightGBM text
// model: the same splits (each XGBoost float32 test float32(x) < c as the
// float64 test x <= t that agrees with it), missing values the default
// way, the base margin added to the first tree's leaves.
func lightgbmText(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Learner struct {
			FeatureNames    []string `json:"feature_names"`
			GradientBooster struct {
				Model struct {
					Trees []struct {
						Left        []int32   `json:"left_children"`
						Right       []int32   `json:"right_children"`
						Index       []int32   `json:"split_indices"`
						Cond        []float32 `json:"split_conditions"`
						DefaultLeft []int     `json:"default_left"`
					} `json:"trees"`
				} `json:"model"`
			} `json:"gradient_booster"`
			Param struct {
				BaseScore string `json:"base_score"`
			} `json:"learner_model_param"`
		} `json:"learner"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		b.Fatal(err)
	}
	base, err := strconv.ParseFloat(doc.Learner.Param.BaseScore, 32)
	if err != nil {
		b.Fatal(err)
	}
	margin := float64(-float32(math.Log(float64(1/float32(base) - 1))))
	names := doc.Learner.FeatureNames
	var out strings.Builder
	trees := doc.Learner.GradientBooster.Model.Trees
	sizes := strings.TrimSpace(strings.Repeat("1 ", len(trees)))
	fmt.Fprintf(&out, "tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=%d\nobjective=binary sigmoid:1\nfeature_names=%s\ntree_sizes=%s\n\n",
		len(names)-1, strings.Join(names, " "), sizes)
	for k, t := range trees {
		// LightGBM numbers splits and leaves apart: map XGBoost's nodes.
		id := make([]int32, len(t.Left))
		var splits, leafs []int
		for i := range t.Left {
			if t.Left[i] < 0 {
				id[i] = ^int32(len(leafs))
				leafs = append(leafs, i)
			} else {
				id[i] = int32(len(splits))
				splits = append(splits, i)
			}
		}
		var feat, thr, dt, left, right, val []string
		for _, i := range splits {
			feat = append(feat, strconv.Itoa(int(t.Index[i])))
			thr = append(thr, strconv.FormatFloat(float32Below(t.Cond[i]), 'g', -1, 64))
			d := 8 // missing type NaN
			if t.DefaultLeft[i] == 1 {
				d |= 2
			}
			dt = append(dt, strconv.Itoa(d))
			left = append(left, strconv.Itoa(int(id[t.Left[i]])))
			right = append(right, strconv.Itoa(int(id[t.Right[i]])))
		}
		for _, i := range leafs {
			v := float64(t.Cond[i])
			if k == 0 {
				v += margin
			}
			val = append(val, strconv.FormatFloat(v, 'g', -1, 64))
		}
		fmt.Fprintf(&out, "Tree=%d\nnum_leaves=%d\nnum_cat=0\nsplit_feature=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\nleaf_value=%s\nshrinkage=1\n\n\n",
			k, len(leafs), strings.Join(feat, " "), strings.Join(thr, " "), strings.Join(dt, " "),
			strings.Join(left, " "), strings.Join(right, " "), strings.Join(val, " "))
	}
	out.WriteString("end of trees\n")
	return []byte(out.String())
}

// float32Below is the largest float64 x with float32(x) < c, for finite c.
func float32Below(c float32) float64 {
	lo := float64(math.Nextafter32(c, float32(math.Inf(-1))))
	mid := lo/2 + float64(c)/2
	if float32(mid) < c {
		return mid
	}
	return math.Nextafter(mid, math.Inf(-1))
}
