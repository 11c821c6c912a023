package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/internal/yamlalias"
)

// reader walks a parsed YAML document by hand so that every problem can be
// reported at its exact line and column, and so that unknown keys are errors
// rather than silently ignored.
type reader struct {
	src  *source
	errs *ErrorList
}

func (r *reader) errf(n *yaml.Node, format string, args ...any) {
	*r.errs = append(*r.errs, r.src.errorAt(n.Line, n.Column, format, args...))
}

// parseYAML parses data into its document node, reporting syntax errors with
// the line the yaml parser gives (it gives no column). Aliases (*name) are refused
// at their position and the file is not read further: nested aliases
// expand exponentially (a few hundred bytes can stand for gigabytes), and
// the yaml package keeps them unexpanded in the node tree, so refusing them here
// means nothing later ever expands one.
func parseYAML(src *source, data []byte, errs *ErrorList) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 1
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if i := strings.IndexByte(rest, ':'); i > 0 {
				if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
					line = n
					msg = strings.TrimSpace(rest[i+1:])
				}
			}
		}
		*errs = append(*errs, src.errorAt(line, 1, "invalid YAML: %s", msg))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file is allowed
	}
	if found := yamlalias.Find(&doc); found.First != nil {
		*errs = append(*errs, src.errorAt(found.First.Line, found.First.Column, "%s", found.Message()))
		return nil
	}
	return doc.Content[0]
}

// mapping calls fn for each key of a mapping node, rejecting keys not in
// allowed (when allowed is non-nil) and duplicate keys.
func (r *reader) mapping(n *yaml.Node, what string, allowed []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return true
		}
		r.errf(n, "%s must be a mapping of keys to values", what)
		return false
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if seen[key] {
			r.errf(k, "duplicate key %q in %s", key, what)
			continue
		}
		seen[key] = true
		if allowed != nil && !contains(allowed, key) {
			r.errf(k, "unknown key %q in %s%s (allowed: %s)", key, what, suggest(key, allowed), strings.Join(allowed, ", "))
			continue
		}
		fn(key, k, v)
	}
	return true
}

func (r *reader) sequence(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "%s must be a list", what)
		return nil
	}
	return n.Content
}

func (r *reader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.errf(n, "%s must be a string", what)
		return "", false
	}
	return n.Value, true
}

func (r *reader) nonEmptyStr(n *yaml.Node, what string) (string, bool) {
	s, ok := r.str(n, what)
	if ok && strings.TrimSpace(s) == "" {
		r.errf(n, "%s must not be empty", what)
		return "", false
	}
	return s, ok
}

func (r *reader) integer(n *yaml.Node, what string) (int, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		v, err := strconv.Atoi(n.Value)
		if err == nil {
			return v, true
		}
	}
	r.errf(n, "%s must be a whole number, got %q", what, n.Value)
	return 0, false
}

func (r *reader) number(n *yaml.Node, what string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, true
		}
	}
	r.errf(n, "%s must be a number, got %q", what, n.Value)
	return 0, false
}

func (r *reader) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var v bool
		if err := n.Decode(&v); err == nil {
			return v, true
		}
	}
	r.errf(n, "%s must be true or false, got %q", what, n.Value)
	return false, false
}

func (r *reader) strList(n *yaml.Node, what string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		r.errf(n, "%s must be a list", what)
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, it := range n.Content {
		s, good := r.nonEmptyStr(it, what+" entries")
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (r *reader) timestamp(n *yaml.Node, what string) (time.Time, bool) {
	if n.Kind == yaml.ScalarNode {
		if t, err := time.Parse(time.RFC3339, n.Value); err == nil {
			return t, true
		}
	}
	r.errf(n, "%s must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", what, n.Value)
	return time.Time{}, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest is Suggest, under the name the loaders use.
func suggest(got string, candidates []string) string { return Suggest(got, candidates) }

// Suggest returns " (did you mean X?)" for the candidate closest to got
// within a small edit distance, or "". Errors about an unknown name, in rule
// files and in decide requests alike, append it to offer the likely fix.
func Suggest(got string, candidates []string) string {
	best, bestDist := "", 3
	if len(got) <= 3 {
		bestDist = 2
	}
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
