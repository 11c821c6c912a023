package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/touchpoint-dev/touchpoint/models"
	"github.com/touchpoint-dev/touchpoint/rules"
)

const modelsUsage = `Usage:
  touchpoint models predict [--type TYPE] [--margin] [--ignore-unknown] MODEL_FILE < rows.jsonl
  touchpoint models inspect [--type TYPE] MODEL_FILE

predict scores JSON Lines read from stdin, one object of inputs per line:

  {"ltv": 1200, "churn_risk": 0.3, "segment": "gold"}

and prints one number per line: the model's prediction (a probability for
classifiers: XGBoost's binary:logistic and reg:logistic, LightGBM's binary
and cross_entropy, logistic models), or with --margin the raw margin. A missing key or null is a missing value. A key the model
does not read is an error (a misspelt input would otherwise score as
missing without a word), unless --ignore-unknown. It stops at the first
line it cannot read, naming the line.

inspect describes a model: objective, trees, inputs.

TYPE is xgboost (Booster.save_model JSON), lightgbm (model.txt) or
logistic (JSON or YAML: {"intercept": …, "terms": [{"input": …,
"weight": …, "log1p": …, "mean": …, "std": …} | {"input": …, "one_hot":
{VALUE: WEIGHT, …}} | {"input": …, "buckets": {"bounds": […], "weights":
[…]}}]}, as a rule file's inline models). Without --type it is guessed
from the file's content.

Flags:
`

// modelsCommand runs "touchpoint models predict|inspect".
func modelsCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stderr, modelsUsage)
		modelFlags("models", stderr).PrintDefaults()
		if len(args) == 0 {
			return exitError{2}
		}
		return errHelp
	}
	verb := args[0]
	if verb != "predict" && verb != "inspect" {
		return fmt.Errorf(`unknown models command %q; use "touchpoint models predict" or "touchpoint models inspect"`, verb)
	}
	fs := modelFlags("models "+verb, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, modelsUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, modelArgs(args[1:])); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{2}
	}
	path := fs.Arg(0)
	typ := fs.Lookup("type").Value.String()
	m, typ, err := readModelFile(typ, path)
	if err != nil {
		return err
	}
	if verb == "inspect" {
		return inspectModel(stdout, path, typ, m)
	}
	margin := fs.Lookup("margin").Value.(flag.Getter).Get().(bool)
	ignore := fs.Lookup("ignore-unknown").Value.(flag.Getter).Get().(bool)
	return predictRows(stdin, stdout, m, margin, ignore)
}

func modelFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("type", "", "model type: "+strings.Join(models.Types, ", ")+" (default: guessed from the file)")
	fs.Bool("margin", false, "predict: print the raw margin rather than the prediction")
	fs.Bool("ignore-unknown", false, "predict: skip keys the model does not read instead of failing")
	return fs
}

// modelArgs moves flags after the model file to the front, so that
// "models predict m.json --type xgboost" works as people type it.
func modelArgs(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if (a == "--type" || a == "-type") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		rest = append(rest, a)
	}
	return append(flags, rest...)
}

// readModelFile reads a model, guessing its type when typ is empty. A
// problem in the file is reported as FILE:LINE:COL: message.
func readModelFile(typ, path string) (*models.Model, string, error) {
	if err := checkPaths(pathSetting{"model file", path}); err != nil {
		return nil, "", err
	}
	if typ == "" {
		var err error
		if typ, err = guessModelType(path); err != nil {
			return nil, "", err
		}
	}
	m, err := models.ReadFile(typ, path)
	var me *models.Error
	switch {
	case errors.As(err, &me) && me.Line > 0:
		return nil, "", fmt.Errorf("%s:%d:%d: %s", path, me.Line, me.Col, me.Message)
	case err != nil:
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return m, typ, nil
}

// guessModelType tells the three formats apart by their first bytes: a
// LightGBM text model starts with the line "tree", an XGBoost JSON model
// is an object with "learner" in it, and anything else JSON or YAML is
// taken for a logistic spec.
func guessModelType(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	head = bytes.TrimLeft(head[:n], " \t\r\n\ufeff")
	switch {
	case bytes.HasPrefix(head, []byte("tree\n")) || bytes.HasPrefix(head, []byte("tree\r\n")):
		return models.LightGBM, nil
	case bytes.HasPrefix(head, []byte("{")) && bytes.Contains(head, []byte(`"learner"`)),
		bytes.HasPrefix(head, []byte("binf")):
		return models.XGBoost, nil
	case bytes.Contains(head, []byte("terms")) || strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml"):
		return models.Logistic, nil
	}
	return "", fmt.Errorf("cannot tell what kind of model %s is; pass --type (%s)", path, strings.Join(models.Types, ", "))
}

func inspectModel(w io.Writer, path, typ string, m *models.Model) error {
	out := bufio.NewWriter(w)
	fmt.Fprintf(out, "file:       %s\n", filepath.Clean(path))
	fmt.Fprintf(out, "type:       %s\n", typ)
	output := "raw margin"
	if m.Probability {
		output = "probability (sigmoid of the margin)"
	}
	fmt.Fprintf(out, "objective:  %s\n", m.Objective)
	fmt.Fprintf(out, "output:     %s\n", output)
	if m.Trees > 0 {
		fmt.Fprintf(out, "trees:      %d, max depth %d\n", m.Trees, m.MaxDepth)
	}
	fmt.Fprintf(out, "inputs:     %d\n", len(m.Inputs))
	width := 0
	for _, in := range m.Inputs {
		width = max(width, len(in.Name))
	}
	for _, in := range m.Inputs {
		fmt.Fprintf(out, "  %-*s  %s\n", width, in.Name, in.Kind)
	}
	return out.Flush()
}

// maxRowBytes bounds one line of predict's input.
const maxRowBytes = 1 << 20

func predictRows(stdin io.Reader, stdout io.Writer, m *models.Model, margin, ignoreUnknown bool) error {
	index := make(map[string]int, len(m.Inputs))
	names := make([]string, len(m.Inputs))
	for i, in := range m.Inputs {
		index[in.Name] = i
		names[i] = in.Name
	}
	x := make([]float64, len(m.Inputs))
	seen := make([]bool, len(m.Inputs))
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxRowBytes)
	buf := make([]byte, 0, 32)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if err := readRow(text, m, index, names, x, seen, ignoreUnknown); err != nil {
			return fmt.Errorf("line %d: %v", line, err)
		}
		v := m.Predict(x)
		if margin {
			v = m.Margin(x)
		}
		buf = strconv.AppendFloat(buf[:0], v, 'g', -1, 64)
		buf = append(buf, '\n')
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d is longer than %d KiB", line+1, maxRowBytes>>10)
		}
		return fmt.Errorf("cannot read stdin: %w", err)
	}
	return out.Flush()
}

// readRow fills x from one JSON object: numbers for number inputs, strings
// (encoded by the model) for string inputs, null or absent for missing.
// Booleans count as 1 and 0, as the rules bind them.
func readRow(text []byte, m *models.Model, index map[string]int, names []string, x []float64, seen []bool, ignoreUnknown bool) error {
	for i := range x {
		x[i] = math.NaN()
		seen[i] = false
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("expected a JSON object of inputs")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %v", err)
		}
		key := tok.(string)
		val, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %v", err)
		}
		if d, ok := val.(json.Delim); ok {
			return fmt.Errorf("input %q is an %s; inputs are numbers, strings or null", key, map[json.Delim]string{'{': "object", '[': "array"}[d])
		}
		i, known := index[key]
		if !known {
			if ignoreUnknown {
				continue
			}
			return fmt.Errorf("unknown input %q%s; the model reads %s (or pass --ignore-unknown)", key, rules.Suggest(key, names), strings.Join(names, ", "))
		}
		if seen[i] {
			return fmt.Errorf("input %q appears twice", key)
		}
		seen[i] = true
		kind := m.Inputs[i].Kind
		switch v := val.(type) {
		case nil:
		case json.Number:
			if kind == models.String {
				return fmt.Errorf("input %q is a string input (one-hot), got the number %s", key, v)
			}
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return fmt.Errorf("input %q: %s is out of range", key, v)
			}
			x[i] = f
		case bool:
			if kind == models.String {
				return fmt.Errorf("input %q is a string input (one-hot), got %v", key, v)
			}
			x[i] = 0
			if v {
				x[i] = 1
			}
		case string:
			if kind == models.Number {
				return fmt.Errorf("input %q is a number, got the string %q", key, v)
			}
			x[i] = m.Encode(i, v)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}
