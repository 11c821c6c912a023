package models

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// goldenRows is a rows file of make_golden.py: a header naming the
// columns and outputs, then one row per line with the library's outputs.
type goldenRows struct {
	Columns []string
	Outputs []string
	X       [][]any         // per row, per column: float64, string or nil
	Y       [][]json.Number // per row, per output, as written
}

func readGolden(t testing.TB, path string) *goldenRows {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &goldenRows{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if line == 1 {
			if err := dec.Decode(&struct {
				Columns *[]string
				Outputs *[]string
			}{&g.Columns, &g.Outputs}); err != nil {
				t.Fatalf("%s:1: %v", path, err)
			}
			continue
		}
		var row struct {
			X []any
			Y []json.Number
		}
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		for i, v := range row.X {
			if n, ok := v.(json.Number); ok {
				f, err := strconv.ParseFloat(string(n), 64)
				if err != nil {
					t.Fatalf("%s:%d: %v", path, line, err)
				}
				row.X[i] = f
			}
		}
		g.X = append(g.X, row.X)
		g.Y = append(g.Y, row.Y)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(g.X) == 0 {
		t.Fatalf("%s has no rows", path)
	}
	return g
}

// output returns output column name of row r, parsed to bits (32 for
// XGBoost's float32 results).
func (g *goldenRows) output(t testing.TB, r int, name string, bits int) float64 {
	t.Helper()
	for i, o := range g.Outputs {
		if o == name {
			v, err := strconv.ParseFloat(string(g.Y[r][i]), bits)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no output %q", name)
	return 0
}

// vector builds model m's input vector for row r, matching inputs to
// columns by name, or by position when byPosition (a model without
// feature names, whose inputs are f0, f1, …).
func (g *goldenRows) vector(t testing.TB, m *Model, r int, byPosition bool) []float64 {
	t.Helper()
	x := make([]float64, len(m.Inputs))
	for i, in := range m.Inputs {
		col := i
		if !byPosition {
			col = -1
			for c, name := range g.Columns {
				if name == in.Name {
					col = c
				}
			}
			if col < 0 {
				t.Fatalf("no column for input %q", in.Name)
			}
		}
		switch v := g.X[r][col].(type) {
		case nil:
			x[i] = math.NaN()
		case float64:
			x[i] = v
		case string:
			x[i] = m.Encode(i, v)
		}
	}
	return x
}

func readModel(t testing.TB, typ, path string) *Model {
	t.Helper()
	m, err := ReadFile(typ, path)
	if err != nil {
		if me, ok := err.(*Error); ok {
			t.Fatalf("%s:%d:%d: %v", path, me.Line, me.Col, err)
		}
		t.Fatal(err)
	}
	return m
}

// checkGolden scores every row of the golden files in dir with the models
// there and compares with the libraries' outputs.
func checkGolden(t *testing.T, dir string) {
	rows := readGolden(t, filepath.Join(dir, "xgb_rows.jsonl"))
	if len(rows.X) < 1000 {
		t.Errorf("only %d XGBoost rows", len(rows.X))
	}
	binary := readModel(t, XGBoost, filepath.Join(dir, "xgb_binary.json"))
	regression := readModel(t, XGBoost, filepath.Join(dir, "xgb_regression.json"))
	rank := readModel(t, XGBoost, filepath.Join(dir, "xgb_rank.json"))
	missing, values := 0, 0
	bad := 0
	for r := range rows.X {
		x := rows.vector(t, binary, r, false)
		for _, v := range x {
			values++
			if math.IsNaN(v) {
				missing++
			}
		}
		// XGBoost's margins are float32 sums; ours must be the same float32.
		if got, want := binary.Margin(x), rows.output(t, r, "binary_margin", 32); got != want {
			bad++
			t.Errorf("row %d: binary margin %v, XGBoost %v", r, got, want)
		}
		// XGBoost's sigmoid is float32 arithmetic; ours is float64.
		if got, want := binary.Predict(x), rows.output(t, r, "binary", 32); math.Abs(got-want) > 1e-6 {
			bad++
			t.Errorf("row %d: binary %v, XGBoost %v", r, got, want)
		}
		xr := rows.vector(t, regression, r, false)
		if got, want := regression.Predict(xr), rows.output(t, r, "regression", 32); got != want {
			bad++
			t.Errorf("row %d: regression %v, XGBoost %v", r, got, want)
		}
		xk := rows.vector(t, rank, r, true)
		if got, want := rank.Predict(xk), rows.output(t, r, "rank", 32); got != want {
			bad++
			t.Errorf("row %d: rank %v, XGBoost %v", r, got, want)
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	if missing < values/20 {
		t.Errorf("only %d of %d values are missing", missing, values)
	}

	lrows := readGolden(t, filepath.Join(dir, "logistic_rows.jsonl"))
	if len(lrows.X) < 1000 {
		t.Errorf("only %d logistic rows", len(lrows.X))
	}
	lm := readModel(t, Logistic, filepath.Join(dir, "logistic_spec.json"))
	for r := range lrows.X {
		x := lrows.vector(t, lm, r, false)
		if got, want := lm.Predict(x), lrows.output(t, r, "prediction", 64); math.Abs(got-want) > 1e-9 {
			bad++
			t.Errorf("row %d: logistic %v, scikit-learn %v", r, got, want)
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
}

func TestGoldenCommitted(t *testing.T) { checkGolden(t, "testdata") }

// TestGoldenRegenerated reruns make_golden.py into a temporary directory
// and checks the fresh predictions: the committed files cannot drift from
// what the script and the installed libraries write.
func TestGoldenRegenerated(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import numpy, sklearn, xgboost").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s with xgboost and scikit-learn is not available (%v: %s); install them with `apt-get install python3-xgboost python3-sklearn`",
			python, err, bytes.TrimSpace(out))
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must not skip the regenerated golden test")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	out, err := exec.Command(python, "testdata/make_golden.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make_golden.py: %v\n%s", err, out)
	}
	checkGolden(t, dir)
}

// Scoring allocates nothing, whatever the model.
func TestScoringDoesNotAllocate(t *testing.T) {
	for _, c := range []struct{ typ, path string }{
		{XGBoost, "testdata/xgb_binary.json"},
		{Logistic, "testdata/logistic_spec.json"},
	} {
		m := readModel(t, c.typ, c.path)
		x := make([]float64, len(m.Inputs))
		for i := range x {
			x[i] = float64(i%3) - 0.5
		}
		x[0] = math.NaN()
		contrib := make([]float64, len(m.Inputs))
		var sink float64
		if n := testing.AllocsPerRun(100, func() {
			sink += m.Predict(x) + m.Margin(x) + m.Contributions(x, contrib)
		}); n != 0 {
			t.Errorf("%s: %v allocations per prediction", c.path, n)
		}
		_ = sink
	}
	m, err := ReadLightGBM([]byte(tinyLGB))
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{0.3, math.NaN(), 3}
	if n := testing.AllocsPerRun(100, func() { m.Predict(x) }); n != 0 {
		t.Errorf("LightGBM: %v allocations per prediction", n)
	}
}
