package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/touchpoint-dev/touchpoint/features"
)

// aliasBomb is a touchpoint whose content nests levels of width aliases
// each: a few hundred bytes that expand to width^(levels-1) strings.
// It returns the file and the line and column of its first alias.
func aliasBomb(levels, width int) (file string, line, col int) {
	var b strings.Builder
	b.WriteString("touchpoints:\n  - id: bomb\n    kind: content\n    content:\n      l0: &l0 \"lol\"\n")
	for l := 1; l < levels; l++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", l-1), width), ",")
		fmt.Fprintf(&b, "      l%d: &l%d [%s]\n", l, l, refs)
	}
	return b.String(), 6, len("      l1: &l1 [") + 1
}

// writeRuleset writes a schema and rule files into a fresh directory and
// returns the rules directory and the schema path.
func writeRuleset(t *testing.T, schema string, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	for name, text := range files {
		p := filepath.Join(rulesDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	schemaPath := filepath.Join(dir, "features.yaml")
	if err := os.WriteFile(schemaPath, []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	return rulesDir, schemaPath
}

// firstError returns the first problem of a load that must fail.
func firstError(t *testing.T, err error) *Error {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("err = %v (%T), want an ErrorList", err, err)
	}
	return list[0]
}

func TestAliasesAreRefused(t *testing.T) {
	bomb, line, col := aliasBomb(7, 10)
	if len(bomb) > 700 {
		t.Fatalf("the bomb is %d bytes; it should stay small to be a fair test", len(bomb))
	}
	const schema = "customer:\n  ltv: {type: number}\n"
	cases := []struct {
		name      string
		schema    string
		file      string
		wantFile  string
		line, col int
		wantMsg   string
	}{
		{"alias bomb in content", schema, bomb, "bomb.yaml", line, col, "YAML alias *l0 is not allowed (and 59 more in this file); write the value out in full"},
		{"merge key in a rule", schema, "touchpoints:\n  - &t {id: t, kind: offer}\nrules:\n  - id: r\n    <<: *t\n", "bomb.yaml", 5, 9, "YAML alias *t is not allowed"},
		{"alias in the schema", "customer:\n  a: &n {type: number}\n  b: *n\n", "touchpoints: []\n", "features.yaml", 3, 6, "YAML alias *n is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, schemaPath := writeRuleset(t, tc.schema, map[string]string{"bomb.yaml": tc.file})
			_, err := Load(dir, schemaPath)
			e := firstError(t, err)
			if filepath.Base(e.File) != tc.wantFile || e.Line != tc.line || e.Col != tc.col || !strings.HasPrefix(e.Message, tc.wantMsg) {
				t.Fatalf("got %s, want %s:%d:%d: %s", e, tc.wantFile, tc.line, tc.col, tc.wantMsg)
			}
			if !strings.Contains(e.Detail(), "\n"+strings.Repeat(" ", 4+tc.col-1)+"^") {
				t.Errorf("the caret is not under column %d:\n%s", tc.col, e.Detail())
			}
		})
	}
}

func TestContentSizeIsLimited(t *testing.T) {
	const schema = "customer:\n  first_name: {type: string}\n"
	big := strings.Repeat("x", MaxContentBytes)
	cases := []struct {
		name    string
		content string
		ok      bool
	}{
		{"just under the limit", fmt.Sprintf("{t: %q}", big[:MaxContentBytes-len(`{"t":""}`)]), true},
		{"one byte over", fmt.Sprintf("{t: %q}", big[:MaxContentBytes-len(`{"t":""}`)+1]), false},
		{"a list of many small strings", "{l: [" + strings.TrimSuffix(strings.Repeat("abcdefgh,", MaxContentBytes/8), ",") + "]}", false},
		{"template text counts", fmt.Sprintf("{t: %q}", "{{ customer.first_name }}"+big), false},
		{"escaping counts", fmt.Sprintf("{t: %q}", strings.Repeat("<", MaxContentBytes/6+1)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := "touchpoints:\n  - id: big\n    kind: content\n    content: " + tc.content + "\n"
			dir, schemaPath := writeRuleset(t, schema, map[string]string{"tp.yaml": file})
			_, err := Load(dir, schemaPath)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := firstError(t, err)
			if filepath.Base(e.File) != "tp.yaml" || e.Line != 4 || e.Col != 14 ||
				!strings.HasPrefix(e.Message, "touchpoint big.content is more than 16384 bytes (16 KiB) as JSON") {
				t.Fatalf("got %s, want tp.yaml:4:14: touchpoint big.content is more than 16384 bytes …", e)
			}
		})
	}
}

func TestFileSizeIsLimited(t *testing.T) {
	huge := "# padding\n" + strings.Repeat("# "+strings.Repeat("x", 98)+"\n", MaxFileBytes/100+1)
	cases := []struct {
		name, schema, file, want string
	}{
		{"rule file", "customer: {}\n", huge, "big.yaml:1:1: the file is larger than 1048576 bytes (1 MiB)"},
		{"schema", huge, "touchpoints: []\n", "features.yaml:1:1: the file is larger than 1048576 bytes (1 MiB)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, schemaPath := writeRuleset(t, tc.schema, map[string]string{"big.yaml": tc.file})
			_, err := Load(dir, schemaPath)
			e := firstError(t, err)
			if got := filepath.Base(e.File) + strings.TrimPrefix(e.Error(), e.File); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestMaxItems(t *testing.T) {
	s, err := ParseSchema("f.yaml", []byte("customer:\n  tags: {type: list}\n  few: {type: list, max_items: 3, default: [a, b]}\n  ltv: {type: number}\ncontext:\n  cart: {type: list, max_items: 20}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field *Field
		want  int
	}{
		{&s.Customer[s.CustomerField("tags")], DefaultMaxItems},
		{&s.Customer[s.CustomerField("few")], 3},
		{&s.Customer[s.CustomerField("ltv")], 0},
		{&s.Context[s.ContextField("cart")], 20},
	} {
		if tc.field.MaxItems != tc.want {
			t.Errorf("%s.MaxItems = %d, want %d", tc.field.Name, tc.field.MaxItems, tc.want)
		}
	}
	few := &s.Customer[s.CustomerField("few")]
	if v, cut := few.Truncate(features.List("a", "b", "c", "d")); !cut || strings.Join(v.List, ",") != "a,b,c" || cap(v.List) != 3 {
		t.Errorf("Truncate = %v, %v; want [a b c], true", v.List, cut)
	}
	if v, cut := few.Truncate(features.List("a")); cut || len(v.List) != 1 {
		t.Errorf("Truncate of a short list = %v, %v", v.List, cut)
	}
	for _, tc := range []struct{ schema, at, want string }{
		{"customer:\n  n: {type: number, max_items: 3}\n", "3}", "customer.n: max_items can only be given for list fields"},
		{"customer:\n  l: {type: list, max_items: 0}\n", "0}", "customer.l.max_items must be between 1 and 1000, got 0"},
		{"context:\n  l: {type: list, max_items: many}\n", "many", `context.l.max_items must be a whole number, got "many"`},
		{"customer:\n  l: {type: list, max_items: 1, default: [a, b]}\n", "[a", "customer.l.default has 2 items, more than max_items (1)"},
	} {
		_, err := ParseSchema("f.yaml", []byte(tc.schema))
		line := strings.Split(tc.schema, "\n")[1]
		want := fmt.Sprintf("f.yaml:2:%d: %s", strings.Index(line, tc.at)+1, tc.want)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("schema %q: err = %v, want prefix %q", tc.schema, err, want)
		}
	}
}

// TestLoopNestingIsLimited is the cubic rule: any/all nested three
// deep over a list feature is refused where the third loop starts, and two
// levels still load.
func TestLoopNestingIsLimited(t *testing.T) {
	schema, err := ParseSchema("f.yaml", []byte("customer:\n  tags: {type: list}\ncontext:\n  seen: {type: list}\n"))
	if err != nil {
		t.Fatal(err)
	}
	const three = `any(customer.tags, {all(customer.tags, {any(customer.tags, {# == "x"})})})`
	cases := []struct {
		name, when, segment string
		at                  string // substring of when the error points at; "" = loads
		chain               string
	}{
		{"two levels load", `any(customer.tags, {all(context.seen, {# != "x"})})`, "", "", ""},
		{"a literal list is no loop", `any(customer.tags, {all(customer.tags, {# in ["a", "b"]})})`, "", "", ""},
		{"three quantifiers", three, "", `any(customer.tags, {# ==`, "here (any inside all inside any)"},
		{"in over a list feature", `any(customer.tags, {all(customer.tags, {# in context.seen})})`, "", `in context.seen`, "here (in inside all inside any)"},
		{"count and filter", `count(customer.tags, {len(filter(context.seen, {one(customer.tags, {# == "a"})})) > 0}) > 1`, "", `one(`, "here (one inside filter inside count)"},
		{"list functions", `any(customer.tags, {any(context.seen, {join(customer.tags) == #})})`, "", `join(`, "here (join inside any inside any)"},
		{"through a segment", `any(customer.tags, {segment("pairs")})`, `any(customer.tags, {any(context.seen, {# == "y"})})`, `segment(`, `through segment "pairs" (any inside any inside any)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := "touchpoints:\n  - id: t\n    kind: offer\nrules:\n  - id: r\n    when: '" + tc.when + "'\n    offer: [t]\n"
			if tc.segment != "" {
				file = "segments:\n  pairs: '" + tc.segment + "'\n" + file
			}
			_, err := Compile(schema, []string{"r.yaml"}, map[string][]byte{"r.yaml": []byte(file)})
			if tc.at == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := firstError(t, err)
			lines := strings.Split(file, "\n")
			wantLine := len(lines) - 2 // the when line (the file ends in a newline)
			wantCol := strings.Index(lines[wantLine-1], tc.at) + 1
			want := fmt.Sprintf("r.yaml:%d:%d: rule r.when: loops over lists nest 3 deep %s; at most 2 levels are allowed", wantLine, wantCol, tc.chain)
			if !strings.HasPrefix(e.Error(), want) {
				t.Fatalf("got  %s\nwant %s", e, want)
			}
			if !strings.HasSuffix(e.Detail(), "\n"+strings.Repeat(" ", 4+wantCol-1)+"^") {
				t.Errorf("the caret is not under column %d:\n%s", wantCol, e.Detail())
			}
		})
	}
}

// TestVersionIsContent loads one directory by a relative path, by its
// absolute path and as a copy elsewhere: one content, one version.
func TestVersionIsContent(t *testing.T) {
	base, err := Load("testdata/good/rules", "testdata/good/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata/good")
	copyDir := t.TempDir()
	copyFile(t, "testdata/good/features.yaml", filepath.Join(copyDir, "schema-with-another-name.yaml"))
	os.MkdirAll(filepath.Join(copyDir, "somewhere", "else"), 0o755)
	copyFile(t, "testdata/good/rules/main.yaml", filepath.Join(copyDir, "somewhere", "else", "main.yaml"))
	for _, tc := range []struct{ name, dir, schema string }{
		{"relative with dots", "./testdata/../testdata/good/rules/", "testdata/good/features.yaml"},
		{"absolute", filepath.Join(abs, "rules"), filepath.Join(abs, "features.yaml")},
		{"a copy", filepath.Join(copyDir, "somewhere", "else"), filepath.Join(copyDir, "schema-with-another-name.yaml")},
	} {
		rs, err := Load(tc.dir, tc.schema)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rs.Version != base.Version {
			t.Errorf("%s: version %s, want %s", tc.name, rs.Version, base.Version)
		}
	}
	// A file's name within the directory is part of the content.
	renamed := t.TempDir()
	copyFile(t, "testdata/good/rules/main.yaml", filepath.Join(renamed, "other.yaml"))
	rs, err := Load(renamed, "testdata/good/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if rs.Version == base.Version {
		t.Errorf("renaming a file kept version %s", rs.Version)
	}
}

// TestWorkerPanicsReachTheCaller: compiling runs on worker goroutines,
// where a panic would end the process; it must reach the caller instead.
func TestWorkerPanicsReachTheCaller(t *testing.T) {
	var got any
	func() {
		defer func() { got = recover() }()
		parallel(64, func(_, i int) {
			if i == 17 {
				panic("boom in item 17")
			}
		})
	}()
	wp, ok := got.(*WorkerPanic)
	if !ok || wp.Value != "boom in item 17" || !strings.Contains(string(wp.Stack), "TestWorkerPanicsReachTheCaller") {
		t.Fatalf("recovered %#v, want a *WorkerPanic with the worker's stack", got)
	}
}
