package rules

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarPosition maps a 1-based line and column inside a scalar's value to
// the file position where that character is written, so errors in
// expressions and templates point into the rule file rather than into the
// expression. Escapes inside quoted scalars can shift the column slightly.
func scalarPosition(src *source, n *yaml.Node, line, col int) (int, int) {
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col
		}
		return n.Line + line - 1, col
	case yaml.LiteralStyle, yaml.FoldedStyle:
		return blockPosition(src, n, line, col)
	}
	if line == 1 {
		return n.Line, n.Column + col - 1
	}
	return n.Line + line - 1, col
}

// blockPosition handles | and > scalars, whose text starts on the line after
// the indicator at the indentation of its first non-blank line.
func blockPosition(src *source, n *yaml.Node, line, col int) (int, int) {
	first := n.Line + 1
	for first <= len(src.lines) && strings.TrimSpace(src.line(first)) == "" {
		first++
	}
	text := src.line(first)
	indent := len(text) - len(strings.TrimLeft(text, " "))
	if n.Style == yaml.LiteralStyle {
		return first + line - 1, indent + col
	}
	// Folded: lines were joined with spaces, so walk the source lines
	// consuming the column.
	l := first
	for l <= len(src.lines) {
		content := strings.TrimSpace(src.line(l))
		if col <= len(content)+1 {
			break
		}
		col -= len(content) + 1
		l++
	}
	return l, indent + col
}
