// Package logread reads what the decision log writes, and the events that
// report on its decisions, for the tools that learn from them (off-policy
// evaluation, experiment reports). It depends on nothing else of
// Touchpoint, so that those tools' packages need not depend on each other.
package logread

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// maxLine bounds one line of a decision log or events file; a decision
// line with every candidate of a large ruleset stays well below it.
const maxLine = 4 << 20

// Decision is one line of the decision log, as far as evaluation reads it.
type Decision struct {
	DecisionID   string                     `json:"decision_id"`
	CustomerID   string                     `json:"customer_id"`
	CustomerHash string                     `json:"customer_hash"`
	Ruleset      string                     `json:"ruleset"`
	Context      map[string]json.RawMessage `json:"context"`
	Placements   []Placement                `json:"placements"`
}

// Placement is one placement of a logged decision, or of a decide
// request, where it may also be written as its id alone.
type Placement struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
	// Experiment and Variant are the experiment arm the placement counted
	// for (an exposure), when the customer entered one covering it.
	Experiment string      `json:"experiment"`
	Variant    string      `json:"variant"`
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one candidate a placement considered.
type Candidate struct {
	Touchpoint string  `json:"touchpoint"`
	Rule       string  `json:"rule"`
	Reason     string  `json:"reason"`
	Score      float64 `json:"score"`
	Chosen     bool    `json:"chosen"`
	Propensity float64 `json:"propensity"`
	Experiment string  `json:"experiment"`
	Variant    string  `json:"variant"`
}

// Shown is what the placement showed first and the probability the
// logging policy gave that choice; "" with probability 1 when it showed
// nothing (a deterministic policy's empty answer).
func (p *Placement) Shown() (touchpoint string, propensity float64) {
	for _, c := range p.Candidates {
		if c.Chosen {
			return c.Touchpoint, c.Propensity
		}
	}
	return "", 1
}

// UnmarshalJSON reads a placement object, or a plain id as decide
// requests allow.
func (p *Placement) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*p = Placement{}
		return json.Unmarshal(b, &p.ID)
	}
	type plain Placement // without this method
	return json.Unmarshal(b, (*plain)(p))
}

// ReadRequests calls fn for each request of a file that is either a
// decision log or JSON Lines of decide request bodies ({"customer_id",
// "placements", "context"}): what a replay needs of either. A line
// without a customer id (or hash) or placements is an error naming its
// line number.
func ReadRequests(r io.Reader, fn func(line int, d *Decision) error) error {
	return readLines(r, func(line int, b []byte) error {
		var d Decision
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("line %d: neither a decision log line nor a decide request: %w", line, err)
		}
		if d.CustomerID == "" && d.CustomerHash == "" {
			return fmt.Errorf("line %d: no customer_id", line)
		}
		if len(d.Placements) == 0 {
			return fmt.Errorf("line %d: no placements", line)
		}
		return fn(line, &d)
	})
}

// ReadDecisions calls fn for each line of a decision log; a line that is
// not a decision is an error naming its line number.
func ReadDecisions(r io.Reader, fn func(line int, d *Decision) error) error {
	return readLines(r, func(line int, b []byte) error {
		var d Decision
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("line %d: not a decision log line: %w", line, err)
		}
		if d.DecisionID == "" {
			return fmt.Errorf("line %d: no decision_id", line)
		}
		return fn(line, &d)
	})
}

// Event is one event of an events file, as far as reports read it.
type Event struct {
	DecisionID string  `json:"decision_id"`
	Touchpoint string  `json:"touchpoint"`
	Type       string  `json:"type"`
	Value      float64 `json:"value"`
}

// ReadEvents calls fn for each event of an events file (JSON Lines of
// the events API's event objects).
func ReadEvents(r io.Reader, fn func(line int, ev *Event) error) error {
	return readLines(r, func(line int, b []byte) error {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("line %d: not an event: %w", line, err)
		}
		return fn(line, &ev)
	})
}

func readLines(r io.Reader, fn func(line int, b []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if err := fn(line, b); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}
