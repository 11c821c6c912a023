package rules

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const modelSchema = "customer:\n  ltv: {type: number}\n  tier: {type: string}\n  tags: {type: list}\n  vip: {type: bool}\ncontext:\n  channel: {type: string}\n"

// compileModels compiles one rule file (and model files) against modelSchema.
func compileModels(t *testing.T, file string, extra map[string]string) (*Ruleset, error) {
	t.Helper()
	schema, err := ParseSchema("f.yaml", []byte(modelSchema))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"r.yaml": []byte(file)}
	for k, v := range extra {
		files[k] = []byte(v)
	}
	return Compile(schema, []string{"r.yaml"}, files)
}

const logit = "models:\n  - id: m\n    type: logistic\n    intercept: 1\n    terms:\n      - {input: ltv, weight: 0.5}\n"
const tps = "touchpoints:\n  - id: t\n    kind: offer\n    attributes: {discount: 10, category: shoes}\n  - id: u\n    kind: offer\n"

// Mistakes in models, attributes and arbitration are load errors at the
// line and column where they are written.
func TestModelLoadErrors(t *testing.T) {
	cases := []struct {
		name, file, wantPos, wantMsg string
	}{
		{"unknown type", "models:\n  - id: m\n    type: xgboot\n    file: m.json\n", "r.yaml:3:11:", `unknown model type "xgboot" (did you mean xgboost?)`},
		{"no type", "models:\n  - id: m\n    file: m.json\n", "r.yaml:2:9:", "model m needs a type"},
		{"missing file", "models:\n  - id: m\n    type: xgboost\n    file: models/none.json\n", "r.yaml:4:11:", `cannot read model file "models/none.json"`},
		{"file outside the rules", "models:\n  - id: m\n    type: lightgbm\n    file: ../m.txt\n", "r.yaml:4:11:", "must be inside the rules directory"},
		{"xgboost without file", "models:\n  - id: m\n    type: xgboost\n", "r.yaml:3:11:", "needs file:"},
		{"logistic with a file", "models:\n  - id: m\n    type: logistic\n    file: m.json\n    terms: [{input: ltv, weight: 1}]\n", "r.yaml:4:11:", "written inline"},
		{"buckets need one more weight", "models:\n  - id: m\n    type: logistic\n    terms:\n      - {input: ltv, buckets: {bounds: [1, 2], weights: [0, 1]}}\n", "r.yaml:5:31:", "one more weight than bounds"},
		{"term without weight", "models:\n  - id: m\n    type: logistic\n    terms:\n      - {input: ltv}\n", "r.yaml:5:9:", "needs weight"},
		{"bad model id", "models:\n  - id: my-model\n    type: logistic\n    terms: [{input: ltv, weight: 1}]\n", "r.yaml:2:9:", "must start with a letter"},
		{"unknown model in when", logit + tps + "rules:\n  - id: r\n    when: model(\"n\") > 0.5\n    offer: [t]\n", "r.yaml:15:11:", `unknown model "n" (did you mean m?) (models: m)`},
		{"model name not quoted", logit + tps + "rules:\n  - id: r\n    when: model(m) > 0.5\n    offer: [t]\n", "r.yaml:15:11:", "needs a quoted model id"},
		{"arbitration variable in a rule", logit + tps + "rules:\n  - id: r\n    when: propensity > 0.5\n    offer: [t]\n", "r.yaml:15:11:", "propensity is read only by a placement's arbitration formula"},
		{"unknown propensity model", logit + tps + "  - id: v\n    kind: offer\n    propensity: mm\n", "r.yaml:15:17:", `names unknown model "mm" (did you mean m?)`},
		{"attribute types differ", logit + tps + "  - id: v\n    kind: offer\n    attributes: {discount: ten}\n", "r.yaml:15:28:", "attributes.discount is a string, but it is a number where first declared (line 10)"},
		{"attribute named id", "touchpoints:\n  - id: t\n    kind: offer\n    attributes: {id: 3}\n", "r.yaml:4:18:", `attribute "id" is taken`},
		{"unknown attribute", logit + tps + "rules:\n  - id: r\n    when: touchpoint.discont > 1\n    offer: [t]\n", "r.yaml:15:22:", "unknown touchpoint attribute touchpoint.discont (did you mean discount?) (touchpoints declare: id, kind, category, discount)"},
		{"negative lever", logit + tps + "rules:\n  - id: r\n    when: true\n    offer: [t]\n    lever: -1\n", "r.yaml:17:12:", "must not be negative"},
		{"arbitration not a number", logit + tps + "placements:\n  - id: p\n    arbitration: {score: touchpoint.category}\n", "r.yaml:15:26:", "must be a number expression"},
		{"value expression", logit + tps + "  - id: v\n    kind: offer\n    value: customer.tier\n", "r.yaml:15:12:", "must be a number expression"},
		{"expect_score without model", logit + tps + "rules:\n  - id: r\n    when: true\n    offer: [t]\n    tests:\n      - {expect_score: 0.5}\n", "r.yaml:18:9:", "has expect_score but no model"},
		{"model test names a decision", logit + "    tests:\n      - {expect_score: 0.5, expect: {p: [t]}}\n" + tps, "r.yaml:8:29:", `unknown key "expect"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileModels(t, tc.file, nil)
			if err == nil {
				t.Fatal("no error")
			}
			var first string
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, tc.wantMsg) {
					first = line
					break
				}
			}
			if !strings.HasPrefix(first, tc.wantPos) {
				t.Errorf("got %q, want an error at %q containing %q", err.Error(), tc.wantPos, tc.wantMsg)
			}
		})
	}
}

// Inputs are type-checked against the schema at load.
func TestModelInputErrors(t *testing.T) {
	head := "models:\n  - id: m\n    type: logistic\n"
	cases := []struct {
		name, file, wantPos, wantMsg string
	}{
		{"not a feature", head + "    terms:\n      - {input: ltvv, weight: 1}\n", "r.yaml:2:5:", `reads input "ltvv", which is not a customer feature; declare it in the feature schema or bind it under inputs: (did you mean ltv?)`},
		{"unknown input name", head + "    inputs: {ltvv: customer.ltv}\n    terms:\n      - {input: ltv, weight: 1}\n", "r.yaml:4:14:", `the model has no input "ltvv" (did you mean ltv?)`},
		{"string feature for a number", head + "    inputs: {x: customer.tier}\n    terms:\n      - {input: x, weight: 1}\n", "r.yaml:4:17:", `input "x" is a number in the model, but customer.tier is a string`},
		{"number for a one-hot", head + "    inputs: {x: customer.ltv * 2}\n    terms:\n      - {input: x, one_hot: {a: 1}}\n", "r.yaml:4:17:", `input "x" is a string (one-hot) in the model, but customer.ltv * 2 is a number`},
		{"list", head + "    terms:\n      - {input: tags, weight: 1}\n", "r.yaml:2:5:", `input "tags" is bound to a list`},
		{"model in an input", head + "    inputs: {x: model(\"m\")}\n    terms:\n      - {input: x, weight: 1}\n", "r.yaml:4:17:", "a model input cannot call model()"},
		{"bad expression", head + "    inputs: {x: customer.ltv +}\n    terms:\n      - {input: x, weight: 1}\n", "r.yaml:4:", "model m.inputs.x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileModels(t, tc.file, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(lineWith(err.Error(), tc.wantMsg), tc.wantPos) {
				t.Errorf("got %q, want an error at %q containing %q", err.Error(), tc.wantPos, tc.wantMsg)
			}
		})
	}
}

func lineWith(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func TestModelFileErrorsNameTheFile(t *testing.T) {
	file := "models:\n  - id: m\n    type: xgboost\n    file: models/m.json\n"
	for name, content := range map[string]string{
		"not json":            "{\"learner\": ",
		"unknown objective":   strings.Replace(readTestModel(t), "reg:squarederror", "survival:cox", -1),
		"lightgbm given json": "",
	} {
		t.Run(name, func(t *testing.T) {
			f := file
			if name == "lightgbm given json" {
				f = strings.Replace(file, "xgboost", "lightgbm", 1)
				content = readTestModel(t)
			}
			_, err := compileModels(t, f, map[string]string{"models/m.json": content})
			if err == nil || !strings.HasPrefix(err.Error(), "r.yaml:4:11: model m: ") || !strings.Contains(err.Error(), `model file `) || !strings.Contains(err.Error(), `models/m.json`) {
				t.Errorf("got %v", err)
			}
		})
	}
}

// xgbFeatures are the inputs of the models package's test models.
var xgbFeatures = []string{"  ltv", "  churn_risk", "  sessions_30d", "  days_since_purchase", "  avg_order_value", "  email_open_rate", "  tenure_months", "  cart_items", "  discount_affinity", "  support_tickets"}

func readTestModel(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../models/testdata/xgb_regression.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A model file is part of the ruleset: a new model file is a new version,
// so every node can tell which model it ranks with.
func TestModelFileInVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, "rules", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "f.yaml"), []byte("customer:\n"+strings.Join(xgbFeatures, ": {type: number}\n")+": {type: number}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := readTestModel(t)
	write("r.yaml", "models:\n  - id: m\n    type: xgboost\n    file: models/m.json\n")
	write("models/m.json", model)
	rs1, err := Load(filepath.Join(dir, "rules"), filepath.Join(dir, "f.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("models/m.json", strings.Replace(model, `"base_score":"`, `"base_score":"1`, 1))
	rs2, err := Load(filepath.Join(dir, "rules"), filepath.Join(dir, "f.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if rs1.Version == rs2.Version {
		t.Errorf("a changed model file kept version %s", rs1.Version)
	}
}

func TestModelLint(t *testing.T) {
	file := logit + "  - id: unused\n    type: logistic\n    terms: [{input: ltv, weight: 1}]\n" +
		"placements:\n  - id: p\n    arbitration: {score: propensity * value}\n" + tps +
		"rules:\n  - id: r\n    when: true\n    offer: [t, u]\n    tests: []\n  - id: s\n    when: true\n    propensity: m\n    offer: [u]\n"
	rs, err := compileModels(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range rs.Warnings {
		got = append(got, w.Error())
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{
		"r.yaml:7:5: model unused is never used",
		"r.yaml:14:5: touchpoint t: placement p ranks by propensity, but neither it nor rule r names a propensity model",
		"r.yaml:17:5: touchpoint u: placement p ranks by propensity, but neither it nor rule r names",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("warnings lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "model m is never used") {
		t.Errorf("model m is the propensity of rule s:\n%s", text)
	}
}

// Per-candidate outputs are remembered per touchpoint for the request;
// touchpoints that share a memo slot (indexes memoSlots apart) must not
// see each other's outputs, and a new request forgets them all.
func TestPerCandidateMemo(t *testing.T) {
	var file strings.Builder
	file.WriteString("models:\n  - id: m\n    type: logistic\n    inputs: {d: touchpoint.d}\n    terms:\n      - {input: d, weight: 0.01}\n      - {input: ltv, weight: 1}\ntouchpoints:\n")
	n := memoSlots + 2
	for i := 0; i < n; i++ {
		fmt.Fprintf(&file, "  - id: t%d\n    kind: offer\n    attributes: {d: %d}\n", i, i)
	}
	rs, err := compileModels(t, file.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env := rs.NewEnv()
	for round, ltv := range []float64{0, 2} {
		env.Reset()
		env.SetCustomer(rs.Schema.CustomerField("ltv"), numberValue(ltv))
		for _, i := range []int{0, memoSlots, 1, memoSlots + 1, 0, memoSlots} {
			env.SetTouchpoint(i, &rs.Touchpoints[i])
			want := 1 / (1 + math.Exp(-(0.01*float64(i) + ltv)))
			if got := env.Model(0); math.Abs(got-want) > 1e-12 {
				t.Fatalf("round %d, touchpoint %d: %v, want %v", round, i, got, want)
			}
		}
	}
}

// A test's keys are read in two steps (whether it tests a model decides
// how the rest reads), but each mistake is reported once.
func TestFixtureKeyErrorsOnce(t *testing.T) {
	file := logit + tps + "rules:\n  - id: r\n    when: true\n    offer: [t]\n    tests:\n      - {expect_score: 0.5, model: m, model: m, colour: red}\n"
	_, err := compileModels(t, file, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`duplicate key "model"`, `unknown key "colour"`} {
		if n := strings.Count(err.Error(), want); n != 1 {
			t.Errorf("%q reported %d times:\n%v", want, n, err)
		}
	}
}

func TestExperimentLoadErrors(t *testing.T) {
	exp := "experiments:\n  - id: x\n    variants: {a: 1, b: 1}\n"
	cases := []loadErrorCase{
		{"unknown experiment", exp + tps + "rules:\n  - id: r\n    when: variant(\"y\") == \"a\"\n    offer: [t]\n", "r.yaml:12:11:", `unknown experiment "y" (did you mean x?) (experiments: x)`},
		{"variant in who enters", "experiments:\n  - id: x\n    variants: {a: 1}\n    when: variant(\"x\") == \"a\"\n", "r.yaml:4:11:", "who enters an experiment cannot depend on a variant"},
		{"no variants", "experiments:\n  - id: x\n    holdout: 10\n", "r.yaml:2:9:", "needs variants"},
		{"unit", "experiments:\n  - id: x\n    unit: session\n    variants: {a: 1}\n", "r.yaml:3:11:", "unit must be customer_id"},
		{"layer over", "experiments:\n  - id: x\n    layer: l\n    traffic: 60\n    variants: {a: 1}\n  - id: y\n    layer: l\n    traffic: 50\n    variants: {a: 1}\n", "r.yaml:2:9:", "more than 100%"},
		{"holdout name", "experiments:\n  - id: x\n    variants: {holdout: 1}\n", "r.yaml:3:16:", "holdout is not a variant name"},
		{"fixture variant", exp + tps + "rules:\n  - id: r\n    when: true\n    offer: [t]\n    tests:\n      - {variants: {x: c}, expect: {}}\n", "r.yaml:15:24:", `experiment x has no variant "c" (did you mean a?) (use holdout, none, a, b)`},
		{"fixture experiment", exp + tps + "rules:\n  - id: r\n    when: true\n    offer: [t]\n    tests:\n      - {variants: {y: a}, expect: {}}\n", "r.yaml:15:21:", `unknown experiment "y"`},
	}
	checkLoadErrors(t, cases)
}

// loadErrorCase is a rule file that must fail to load with wantMsg at
// wantPos.
type loadErrorCase struct {
	name, file, wantPos, wantMsg string
}

func checkLoadErrors(t *testing.T, cases []loadErrorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileModels(t, tc.file, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(lineWith(err.Error(), tc.wantMsg), tc.wantPos) {
				t.Errorf("got %q, want an error at %q containing %q", err.Error(), tc.wantPos, tc.wantMsg)
			}
		})
	}
}
