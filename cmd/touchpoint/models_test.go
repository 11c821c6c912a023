package main

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
	"strings"
	"testing"
)

const modelData = "../../models/testdata/"

// goldenInput turns a golden rows file (a header naming the columns, then
// {"x": [...], "y": [...]} per row) into predict's stdin, leaving missing
// values out or writing them as null in turn, and returns the outputs.
func goldenInput(t *testing.T, path string) (stdin string, outputs []string, y [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var columns []string
	var in strings.Builder
	sc := bufio.NewScanner(f)
	nulls := 0
	for sc.Scan() {
		var line struct {
			Columns, Outputs []string
			X                []json.RawMessage
			Y                []json.Number
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line.Columns != nil {
			columns, outputs = line.Columns, line.Outputs
			continue
		}
		var fields []string
		for i, v := range line.X {
			if string(v) == "null" {
				if nulls++; nulls%2 == 0 {
					continue // absent rather than null
				}
			}
			fields = append(fields, strconv.Quote(columns[i])+": "+string(v))
		}
		in.WriteString("{" + strings.Join(fields, ", ") + "}\n")
		row := make([]string, len(line.Y))
		for i, n := range line.Y {
			row[i] = string(n)
		}
		y = append(y, row)
	}
	return in.String(), outputs, y
}

// predictBinary runs the built binary's models predict on stdin.
func predictBinary(t *testing.T, stdin string, args ...string) []float64 {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"models", "predict"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("models predict %v: %v\n%s", args, err, stderr.String())
	}
	var got []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		got = append(got, v)
	}
	return got
}

func column(t *testing.T, outputs []string, y [][]string, name string, bits int) []float64 {
	t.Helper()
	for i, o := range outputs {
		if o != name {
			continue
		}
		out := make([]float64, len(y))
		for r := range y {
			v, err := strconv.ParseFloat(y[r][i], bits)
			if err != nil {
				t.Fatal(err)
			}
			out[r] = v
		}
		return out
	}
	t.Fatalf("no output %q", name)
	return nil
}

// predict prints what XGBoost and scikit-learn predicted for the golden
// rows, to full precision.
func TestModelsPredictGolden(t *testing.T) {
	stdin, outputs, y := goldenInput(t, modelData+"xgb_rows.jsonl")
	got := predictBinary(t, stdin, "--type", "xgboost", modelData+"xgb_binary.json")
	want := column(t, outputs, y, "binary", 32)
	if len(got) != len(want) || len(got) < 1000 {
		t.Fatalf("%d predictions for %d rows", len(got), len(want))
	}
	for r := range want {
		if math.Abs(got[r]-want[r]) > 1e-6 {
			t.Errorf("row %d: %v, XGBoost %v", r, got[r], want[r])
		}
	}
	// The margin is XGBoost's float32 sum exactly; the flag may follow the
	// file and the type is guessed.
	got = predictBinary(t, stdin, modelData+"xgb_binary.json", "--margin")
	for r, w := range column(t, outputs, y, "binary_margin", 32) {
		if got[r] != w {
			t.Errorf("row %d: margin %v, XGBoost %v", r, got[r], w)
		}
	}
	got = predictBinary(t, stdin, "--type=xgboost", modelData+"xgb_regression.json")
	for r, w := range column(t, outputs, y, "regression", 32) {
		if got[r] != w {
			t.Errorf("row %d: regression %v, XGBoost %v", r, got[r], w)
		}
	}

	stdin, outputs, y = goldenInput(t, modelData+"logistic_rows.jsonl")
	got = predictBinary(t, stdin, "--type", "logistic", modelData+"logistic_spec.json")
	for r, w := range column(t, outputs, y, "prediction", 64) {
		if math.Abs(got[r]-w) > 1e-9 {
			t.Errorf("row %d: %v, scikit-learn %v", r, got[r], w)
		}
	}
}

// The same logistic spec in YAML predicts the same.
func TestModelsPredictYAMLSpec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "m.yaml")
	os.WriteFile(spec, []byte("intercept: -1\nterms:\n  - {input: ltv, weight: 0.002}\n  - input: segment\n    one_hot: {gold: 0.5}\n"), 0o644)
	var out bytes.Buffer
	err := modelsCommand([]string{"predict", spec}, strings.NewReader("{\"ltv\": 1200, \"segment\": \"gold\"}\n\n{\"segment\": \"tin\"}\n"), &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s\n%s\n", strconv.FormatFloat(1/(1+math.Exp(-(-1+0.002*1200+0.5))), 'g', -1, 64),
		strconv.FormatFloat(1/(1+math.Exp(1)), 'g', -1, 64))
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestModelsPredictBadRows(t *testing.T) {
	spec := modelData + "logistic_spec.json"
	cases := []struct {
		name, rows, want string
		extra            []string
	}{
		{"not an object", `{"ltv": 1}` + "\n[1, 2]\n", "line 2: expected a JSON object of inputs", nil},
		{"malformed", `{"ltv": 1}` + "\n\n" + `{"ltv": 1` + "\n", "line 3: malformed JSON", nil},
		{"typo", `{"ltvv": 1}`, `line 1: unknown input "ltvv" (did you mean ltv?); the model reads ltv, churn_risk, sessions_30d, tenure_months, segment (or pass --ignore-unknown)`, nil},
		{"string for a number", `{"ltv": "high"}`, `line 1: input "ltv" is a number, got the string "high"`, nil},
		{"number for a string", `{"segment": 3}`, `line 1: input "segment" is a string input (one-hot), got the number 3`, nil},
		{"twice", `{"ltv": 1, "ltv": 2}`, `line 1: input "ltv" appears twice`, nil},
		{"nested", `{"ltv": {"a": 1}}`, `line 1: input "ltv" is an object`, nil},
		{"two values", `{"ltv": 1} {"ltv": 2}`, "line 1: more than one JSON value on the line", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := modelsCommand(append(append([]string{"predict"}, c.extra...), spec), strings.NewReader(c.rows), &out, &errb)
			if err == nil || err.Error() != c.want && !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			// Lines before the bad one are still scored.
			if strings.HasPrefix(c.rows, `{"ltv": 1}`+"\n") && strings.Count(out.String(), "\n") != 1 {
				t.Errorf("output %q, want the first line's prediction", out.String())
			}
		})
	}
	var out bytes.Buffer
	if err := modelsCommand([]string{"predict", "--ignore-unknown", spec}, strings.NewReader(`{"ltvv": 1, "ltv": 2, "vip": true}`), &out, &out); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("--ignore-unknown: %v, output %q", err, out.String())
	}
}

func TestModelsInspect(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{"xgb_binary.json", []string{"type:       xgboost", "objective:  binary:logistic", "output:     probability (sigmoid of the margin)", "trees:      100, max depth 6", "inputs:     10", "  ltv                  number"}},
		{"xgb_rank.json", []string{"objective:  rank:pairwise", "output:     raw margin", "trees:      20, max depth 4", "  f9  number"}},
		{"logistic_spec.json", []string{"type:       logistic", "inputs:     5", "  segment        string"}},
	} {
		out, errOut, code := runCLI("models", "inspect", modelData+c.file)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.file, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%s: output lacks %q:\n%s", c.file, w, out)
			}
		}
	}
}

// LightGBM's own model and predictions from leaves' testdata, through the
// binary with the type guessed.
func TestModelsPredictLightGBM(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/dmitryikh/leaves").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("no module directory for leaves: %v", err)
	}
	dir := filepath.Join(mod.Dir, "testdata")
	data, err := os.ReadFile(filepath.Join(dir, "breast_cancer_test.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var stdin strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var fields []string
		for i, v := range strings.Fields(line) {
			fields = append(fields, fmt.Sprintf(`"Column_%d": %s`, i, v))
		}
		stdin.WriteString("{" + strings.Join(fields, ", ") + "}\n")
	}
	got := predictBinary(t, stdin.String(), filepath.Join(dir, "lg_dart_breast_cancer.model"))
	want, err := os.ReadFile(filepath.Join(dir, "lg_dart_breast_cancer_true_predictions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(want))
	if len(lines) != len(got) {
		t.Fatalf("%d predictions, LightGBM made %d", len(got), len(lines))
	}
	for r, l := range lines {
		w, _ := strconv.ParseFloat(l, 64)
		if math.Abs(got[r]-w) > 1e-12 {
			t.Errorf("row %d: %v, LightGBM %v", r, got[r], w)
		}
	}
}

func TestModelsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\"learner\": {\"objective\": {\"name\": \"multi:softmax\"}}}"), 0o644)
	unknown := filepath.Join(dir, "model.bin")
	os.WriteFile(unknown, []byte("\x00\x01"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"models", "frobnicate"}, `touchpoint: unknown models command "frobnicate"`},
		{[]string{"models", "inspect", bad}, "touchpoint: " + bad + `:1:2: the learner has no "gradient_booster"`},
		{[]string{"models", "inspect", "--type", "lightgbm", bad}, "touchpoint: " + bad + `:1:1: not a LightGBM text model`},
		{[]string{"models", "inspect", unknown}, "touchpoint: cannot tell what kind of model " + unknown + " is; pass --type"},
		{[]string{"models", "inspect", "--type", "onnx", bad}, `touchpoint: ` + bad + `: unknown model type "onnx"`},
		{[]string{"models", "predict", "/no/such/model.json"}, `touchpoint: model file "/no/such/model.json" does not exist`},
	}
	for _, c := range cases {
		_, errOut, code := runCLI(c.args...)
		if code == 0 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line starting %q", c.args, code, errOut, c.want)
		}
	}
	out, errOut, code := runCLI("models", "--help")
	if all := out + errOut; code != 0 || !strings.Contains(all, "Flags:") || !strings.Contains(all, "-ignore-unknown") {
		t.Errorf("models --help: exit %d\n%s", code, all)
	}
	if _, _, code := runCLI("models", "predict"); code != 2 {
		t.Errorf("models predict without a file: exit %d, want 2", code)
	}
}
