// Package yamlalias finds YAML aliases (*name) in a parsed document, so that
// files read from people can refuse them before anything expands them.
//
// An alias refers to an anchored value; a few nested levels of aliases to
// aliases expand to millions of nodes (the "billion laughs" attack), while
// the document stays a few hundred bytes. The yaml package keeps aliases as
// AliasNode when it parses into a yaml.Node, so a walk of the node tree is
// linear in the size of the file and finds them before any expansion.
package yamlalias

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Found describes the aliases in a document: the first one in document
// order and how many there are in all.
type Found struct {
	First *yaml.Node // the first alias node; nil when there is none
	Count int
}

// Find walks n and reports its aliases. It does not follow them.
func Find(n *yaml.Node) Found {
	var f Found
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			if f.First == nil {
				f.First = n
			}
			f.Count++
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return f
}

// Message says what is wrong, without the position: "YAML alias *x is not
// allowed (and 3 more in this file); write the value out in full". It is
// empty when there is no alias.
func (f Found) Message() string {
	if f.First == nil {
		return ""
	}
	more := ""
	if f.Count > 1 {
		more = fmt.Sprintf(" (and %d more in this file)", f.Count-1)
	}
	return fmt.Sprintf("YAML alias *%s is not allowed%s; write the value out in full", f.First.Value, more)
}

// Error reports the aliases of a file at the position of the first.
type Error struct {
	File      string
	Line, Col int
	Message   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message) }

// Check parses the first document of data and returns an *Error naming
// the first alias in it, or nil when there is none. A document that does
// not parse is left to the caller's own decoding, which reports it; Check
// then returns nil.
func Check(file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil // empty or malformed: the caller's own decoding says so
	}
	f := Find(&doc)
	if f.First == nil {
		return nil
	}
	return &Error{File: file, Line: f.First.Line, Col: f.First.Column, Message: f.Message()}
}
