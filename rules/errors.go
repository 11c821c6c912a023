package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a rule or schema file, located by line and column
// (both 1-based) so editors and people can jump to it.
type Error struct {
	File    string
	Line    int
	Col     int
	Message string
	// Source is the offending line of the file, shown with a caret under Col.
	Source string
}

// Error renders the one-line form: file:line:col: message.
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message)
}

// Detail renders the one-line form followed by the source line and a caret
// under the column.
func (e *Error) Detail() string {
	if e.Source == "" || e.Col < 1 {
		return e.Error()
	}
	var b strings.Builder
	b.WriteString(e.Error())
	b.WriteString("\n    ")
	b.WriteString(strings.ReplaceAll(e.Source, "\t", " "))
	b.WriteString("\n    ")
	col := e.Col - 1
	if n := len([]rune(e.Source)); col > n {
		col = n
	}
	b.WriteString(strings.Repeat(" ", col))
	b.WriteByte('^')
	return b.String()
}

// ErrorList is every problem found in one load, sorted by file and position.
type ErrorList []*Error

// Error renders each problem with its source line and caret.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Detail()
	}
	return strings.Join(parts, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// source is one file being read, kept to quote lines in errors.
type source struct {
	path  string
	lines []string
}

func newSource(path string, data []byte) *source {
	return &source{path: path, lines: strings.Split(string(data), "\n")}
}

func (s *source) line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	return strings.TrimRight(s.lines[n-1], "\r")
}

func (s *source) errorAt(line, col int, format string, args ...any) *Error {
	return &Error{File: s.path, Line: line, Col: col, Message: fmt.Sprintf(format, args...), Source: s.line(line)}
}
