package rules

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/jsonw"
)

// Content is a touchpoint's content compiled to JSON: static parts are
// encoded once at load, and each templated string is a hole filled from the
// request's Env when rendering.
type Content struct {
	parts []contentPart
}

type contentPart struct {
	static []byte
	hole   *template // nil for a static part
}

// template is one templated string value: literal text and placeholders.
type template struct {
	pieces []templatePiece
}

type templatePiece struct {
	text string
	// escaped is text as the body of a JSON string, escaped once at load
	// rather than on every decision.
	escaped []byte
	ref     *templateRef // nil for literal text
}

type templateRef struct {
	customer bool // else context
	index    int
	filters  []templateFilter
}

type templateFilter struct {
	name string // default, upper, lower, title
	arg  string
}

var emptyContent = &Content{parts: []contentPart{{static: []byte("{}")}}}

// AppendJSON appends the rendered content object. It is valid JSON and
// safe to embed in HTML and JavaScript whatever the customer's values: <, >,
// & and U+2028/U+2029 are \u escapes, in the file's text and in values
// alike.
func (c *Content) AppendJSON(dst []byte, env *Env) []byte {
	for i := range c.parts {
		p := &c.parts[i]
		if p.hole == nil {
			dst = append(dst, p.static...)
			continue
		}
		dst = append(dst, '"')
		dst = p.hole.appendEscaped(dst, env)
		dst = append(dst, '"')
	}
	return dst
}

func (t *template) appendEscaped(dst []byte, env *Env) []byte {
	for _, p := range t.pieces {
		if p.ref == nil {
			dst = append(dst, p.escaped...)
			continue
		}
		dst = p.ref.appendEscaped(dst, env)
	}
	return dst
}

func (ref *templateRef) appendEscaped(dst []byte, env *Env) []byte {
	var val features.Value
	var present bool
	if ref.customer {
		val, present = env.Customer(ref.index)
	} else {
		val, present = env.Context(ref.index)
	}
	if len(ref.filters) == 0 {
		return appendValueEscaped(dst, val)
	}
	text := valueText(val)
	for _, f := range ref.filters {
		switch f.name {
		case "default":
			if !present || text == "" {
				text = f.arg
			}
		case "upper":
			text = strings.ToUpper(text)
		case "lower":
			text = strings.ToLower(text)
		case "title":
			text = titleCase(text)
		}
	}
	return jsonw.AppendEscaped(dst, text)
}

// appendValueEscaped writes a value as template text without building an
// intermediate string.
func appendValueEscaped(dst []byte, v features.Value) []byte {
	switch v.Kind {
	case features.KindNumber:
		return jsonw.AppendFloat(dst, v.Num)
	case features.KindString:
		return jsonw.AppendEscaped(dst, v.Str)
	case features.KindBool:
		return strconv.AppendBool(dst, v.Bool)
	case features.KindList:
		for i, s := range v.List {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = jsonw.AppendEscaped(dst, s)
		}
	}
	return dst
}

func valueText(v features.Value) string {
	switch v.Kind {
	case features.KindNumber:
		return string(jsonw.AppendFloat(nil, v.Num))
	case features.KindString:
		return v.Str
	case features.KindBool:
		return strconv.FormatBool(v.Bool)
	case features.KindList:
		return strings.Join(v.List, ", ")
	}
	return ""
}

func titleCase(s string) string {
	b := []byte(strings.ToLower(s))
	start := true
	for i, c := range b {
		if start && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		start = c == ' ' || c == '-' || c == '\t'
	}
	return string(b)
}

// MaxContentBytes bounds one touchpoint's compiled content: its JSON with
// each template counted by its literal text. Content is copied into every
// answer that shows the touchpoint, so its size is part of every decide's
// cost; large assets belong in a CMS, referenced by id or URL.
const MaxContentBytes = 16 << 10

// contentCompiler turns a touchpoint's content mapping into a Content.
type contentCompiler struct {
	r      *reader
	schema *Schema
	parts  []contentPart
	buf    []byte
	size   int // bytes in parts so far
}

// over reports whether the content compiled so far passed MaxContentBytes;
// compiling stops there.
func (c *contentCompiler) over() bool { return c.size+len(c.buf) > MaxContentBytes }

func (r *reader) compileContent(n *yaml.Node, schema *Schema, what string) *Content {
	if n == nil {
		return emptyContent
	}
	if n.Kind != yaml.MappingNode {
		r.errf(n, "%s must be a mapping of keys to values", what)
		return nil
	}
	c := &contentCompiler{r: r, schema: schema}
	before := len(*r.errs)
	c.node(n, what)
	c.flush()
	if c.over() {
		r.errf(n, "%s is more than %d bytes (16 KiB) as JSON, the most a touchpoint's content may be; keep large assets elsewhere and refer to them by id or URL", what, MaxContentBytes)
		return nil
	}
	if len(*r.errs) > before {
		return nil
	}
	return &Content{parts: c.parts}
}

func (c *contentCompiler) flush() {
	if len(c.buf) > 0 {
		c.size += len(c.buf)
		c.parts = append(c.parts, contentPart{static: c.buf})
		c.buf = nil
	}
}

func (c *contentCompiler) node(n *yaml.Node, what string) {
	if c.over() {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		c.buf = append(c.buf, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				c.buf = append(c.buf, ',')
			}
			k := n.Content[i]
			c.buf = jsonw.AppendString(c.buf, k.Value)
			c.buf = append(c.buf, ':')
			c.node(n.Content[i+1], what+"."+k.Value)
		}
		c.buf = append(c.buf, '}')
	case yaml.SequenceNode:
		c.buf = append(c.buf, '[')
		for i, item := range n.Content {
			if i > 0 {
				c.buf = append(c.buf, ',')
			}
			c.node(item, what+"["+strconv.Itoa(i)+"]")
		}
		c.buf = append(c.buf, ']')
	case yaml.ScalarNode:
		c.scalar(n, what)
	default:
		c.r.errf(n, "%s: unsupported YAML value", what)
	}
}

func (c *contentCompiler) scalar(n *yaml.Node, what string) {
	switch n.Tag {
	case "!!null":
		c.buf = append(c.buf, "null"...)
		return
	case "!!bool":
		var b bool
		_ = n.Decode(&b)
		c.buf = strconv.AppendBool(c.buf, b)
		return
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err == nil {
			c.buf = jsonw.AppendFloat(c.buf, f)
			return
		}
	}
	if !strings.Contains(n.Value, "{{") {
		c.buf = jsonw.AppendString(c.buf, n.Value)
		return
	}
	t := c.template(n, what)
	if t == nil {
		return
	}
	c.flush()
	c.size += 2 // the quotes
	for _, p := range t.pieces {
		c.size += len(p.escaped)
	}
	c.parts = append(c.parts, contentPart{hole: t})
}

func literalPiece(text string) templatePiece {
	return templatePiece{text: text, escaped: jsonw.AppendEscaped(nil, text)}
}

// template parses "text {{ customer.x | default \"y\" }} text".
func (c *contentCompiler) template(n *yaml.Node, what string) *template {
	s := n.Value
	t := &template{}
	pos := 0
	for pos < len(s) {
		open := strings.Index(s[pos:], "{{")
		if open < 0 {
			t.pieces = append(t.pieces, literalPiece(s[pos:]))
			break
		}
		open += pos
		if open > pos {
			t.pieces = append(t.pieces, literalPiece(s[pos:open]))
		}
		end := strings.Index(s[open:], "}}")
		if end < 0 {
			c.errAt(n, open, "%s: unclosed {{ in template", what)
			return nil
		}
		end += open
		ref, ok := c.placeholder(n, s[open+2:end], open+2, what)
		if !ok {
			return nil
		}
		t.pieces = append(t.pieces, templatePiece{ref: ref})
		pos = end + 2
	}
	return t
}

func (c *contentCompiler) errAt(n *yaml.Node, offset int, format string, args ...any) {
	line, col := scalarPosition(c.r.src, n, 1, offset+1)
	*c.r.errs = append(*c.r.errs, c.r.src.errorAt(line, col, format, args...))
}

func (c *contentCompiler) placeholder(n *yaml.Node, body string, offset int, what string) (*templateRef, bool) {
	parts := splitPipes(body)
	head := strings.TrimSpace(parts[0])
	headAt := offset + strings.Index(body, head)
	ns, name, found := strings.Cut(head, ".")
	ref := &templateRef{}
	switch {
	case !found:
		c.errAt(n, headAt, "%s: template placeholder %q must name customer.<feature> or context.<field>", what, head)
		return nil, false
	case ns == "customer":
		ref.customer, ref.index = true, c.schema.CustomerField(name)
		if ref.index < 0 {
			c.errAt(n, headAt, "%s: unknown feature customer.%s%s", what, name, suggest(name, fieldNames(c.schema.Customer)))
			return nil, false
		}
	case ns == "context":
		ref.index = c.schema.ContextField(name)
		if ref.index < 0 {
			c.errAt(n, headAt, "%s: unknown context field context.%s%s", what, name, suggest(name, fieldNames(c.schema.Context)))
			return nil, false
		}
	default:
		c.errAt(n, headAt, "%s: template placeholder %q must name customer.<feature> or context.<field>", what, head)
		return nil, false
	}
	for _, raw := range parts[1:] {
		f := strings.TrimSpace(raw)
		at := offset + strings.Index(body, raw) + strings.Index(raw, f)
		name, arg, _ := strings.Cut(f, " ")
		arg = strings.TrimSpace(arg)
		switch name {
		case "upper", "lower", "title":
			if arg != "" {
				c.errAt(n, at, "%s: filter %s takes no argument", what, name)
				return nil, false
			}
			ref.filters = append(ref.filters, templateFilter{name: name})
		case "default":
			text, err := strconv.Unquote(arg)
			if err != nil || !strings.HasPrefix(arg, `"`) {
				c.errAt(n, at, `%s: default needs a quoted text, as in default "there"`, what)
				return nil, false
			}
			ref.filters = append(ref.filters, templateFilter{name: name, arg: text})
		default:
			c.errAt(n, at, "%s: unknown template filter %q (use default, upper, lower or title)", what, name)
			return nil, false
		}
	}
	return ref, true
}

// splitPipes splits on | outside double-quoted text.
func splitPipes(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '|':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func fieldNames(fields []Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}
