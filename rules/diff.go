package rules

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Change is one difference between two rulesets, worded for the people
// who write rule files.
type Change struct {
	// Kind is added, removed or changed.
	Kind string
	// What is rule, touchpoint, placement, segment, experiment, model or
	// policy; ID names it ("" for the policy).
	What, ID string
	// Where is the file, and line, of the new version (of the old one for
	// a removal).
	Where string
	// Details say what changed, one key each: "priority: 500 → 400".
	Details []string
}

func (c Change) String() string {
	name := c.What
	if c.ID != "" {
		name += " " + c.ID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", name, c.Kind, c.Where)
	for _, d := range c.Details {
		b.WriteString("\n    " + strings.ReplaceAll(d, "\n", "\n    "))
	}
	return b.String()
}

// diffSections are the rule file sections whose items have ids, and what
// one item is called.
var diffSections = []struct{ key, what string }{
	{"placements", "placement"}, {"touchpoints", "touchpoint"}, {"rules", "rule"},
	{"experiments", "experiment"}, {"models", "model"},
}

// diffItem is one item of a section, or one segment, as written.
type diffItem struct {
	value any
	where string
}

// Diff lists what changed from old to new, both loaded with Load: items
// added, removed or changed, by id whatever file holds them, and their
// keys that changed; segments and the contact policy; and model files
// whose bytes changed. Comments, order and layout do not count.
func Diff(old, new *Ruleset) ([]Change, error) {
	oldItems, err := diffItems(old)
	if err != nil {
		return nil, err
	}
	newItems, err := diffItems(new)
	if err != nil {
		return nil, err
	}
	var out []Change
	kinds := []string{"placement", "touchpoint", "rule", "segment", "experiment", "model", "policy"}
	for _, what := range kinds {
		o, n := oldItems[what], newItems[what]
		ids := make([]string, 0, len(o)+len(n))
		for id := range o {
			ids = append(ids, id)
		}
		for id := range n {
			if _, ok := o[id]; !ok {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			a, inOld := o[id]
			b, inNew := n[id]
			switch {
			case !inOld:
				out = append(out, Change{Kind: "added", What: what, ID: id, Where: b.where, Details: summary(b.value)})
			case !inNew:
				out = append(out, Change{Kind: "removed", What: what, ID: id, Where: a.where})
			default:
				path := ""
				if what == "segment" {
					path = "condition"
				}
				if d := valueDiff(path, a.value, b.value); len(d) > 0 {
					out = append(out, Change{Kind: "changed", What: what, ID: id, Where: b.where, Details: d})
				}
			}
		}
		if what == "model" {
			out = append(out, modelFileChanges(old, new, newItems["model"])...)
		}
	}
	return out, nil
}

// modelFileChanges reports model files whose bytes changed (a retrained
// model), which the rule files alone do not show.
func modelFileChanges(old, new *Ruleset, items map[string]diffItem) []Change {
	var out []Change
	for _, m := range new.Models {
		if m.Path == "" {
			continue
		}
		before, ok := old.modelFiles[m.Path]
		if !ok || bytes.Equal(before, new.modelFiles[m.Path]) {
			continue
		}
		out = append(out, Change{Kind: "changed", What: "model", ID: m.ID, Where: items[m.ID].where,
			Details: []string{fmt.Sprintf("file %s changed (%d bytes, was %d): retrained or replaced", m.Path, len(new.modelFiles[m.Path]), len(before))}})
	}
	return out
}

// diffItems reads a ruleset's files back as plain values, by kind and id.
func diffItems(rs *Ruleset) (map[string]map[string]diffItem, error) {
	out := map[string]map[string]diffItem{}
	add := func(what, id string, it diffItem) {
		if out[what] == nil {
			out[what] = map[string]diffItem{}
		}
		out[what][id] = it
	}
	paths := make([]string, 0, len(rs.sources))
	for p := range rs.sources {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		name := filepath.ToSlash(p)
		var root yaml.Node
		if err := yaml.Unmarshal(rs.sources[p], &root); err != nil {
			return nil, fmt.Errorf("cannot read %s again: %w", p, err)
		}
		if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
			continue
		}
		top := root.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			key, v := top.Content[i].Value, top.Content[i+1]
			switch key {
			case "segments":
				for j := 0; j+1 < len(v.Content); j += 2 {
					add("segment", v.Content[j].Value, diffItem{value: plain(v.Content[j+1]), where: fmt.Sprintf("%s:%d", name, v.Content[j].Line)})
				}
			case "policy":
				add("policy", "", diffItem{value: plain(v), where: fmt.Sprintf("%s:%d", name, top.Content[i].Line)})
			default:
				for _, sec := range diffSections {
					if sec.key != key {
						continue
					}
					for _, item := range v.Content {
						val, ok := plain(item).(map[string]any)
						if !ok {
							continue
						}
						id, _ := val["id"].(string)
						delete(val, "id")
						add(sec.what, id, diffItem{value: val, where: fmt.Sprintf("%s:%d", name, item.Line)})
					}
				}
			}
		}
	}
	return out, nil
}

// plain decodes a node into maps, lists and scalars.
func plain(n *yaml.Node) any {
	var v any
	if err := n.Decode(&v); err != nil {
		return n.Value
	}
	return v
}

// valueDiff lists the keys that differ between a and b, under path.
func valueDiff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			av, ina := am[k]
			bv, inb := bm[k]
			switch {
			case !ina:
				out = append(out, fmt.Sprintf("%s: added, %s", sub, render(bv)))
			case !inb:
				out = append(out, fmt.Sprintf("%s: removed (was %s)", sub, render(av)))
			default:
				out = append(out, valueDiff(sub, av, bv)...)
			}
		}
		return out
	}
	if render(a) == render(b) {
		return nil
	}
	if path == "tests" || strings.HasSuffix(path, ".tests") {
		al, _ := a.([]any)
		bl, _ := b.([]any)
		return []string{fmt.Sprintf("%s: changed (%d fixtures, were %d)", path, len(bl), len(al))}
	}
	ra, rb := render(a), render(b)
	if len(ra)+len(rb) > 100 {
		return []string{fmt.Sprintf("%s:\n  was: %s\n  now: %s", path, ra, rb)}
	}
	return []string{fmt.Sprintf("%s: %s → %s", path, ra, rb)}
}

// render writes a value compactly, in YAML's flow style: [a, b] and
// {key: value}, keys sorted.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + render(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// summary describes an added item by its description and what it does.
func summary(v any) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return []string{render(v)}
	}
	var out []string
	for _, k := range []string{"description", "when", "offer", "suppress", "placements", "priority", "kind", "fallback", "variants", "type"} {
		if x, ok := m[k]; ok {
			out = append(out, k+": "+render(x))
		}
	}
	if len(out) == 0 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out = append(out, "keys: "+strings.Join(keys, ", "))
	}
	return out
}
