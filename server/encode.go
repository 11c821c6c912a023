package server

import (
	"strconv"

	"github.com/touchpoint-dev/touchpoint/engine"
	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/jsonw"
	"github.com/touchpoint-dev/touchpoint/rules"
)

// The decide response is written by hand into a reused buffer: it is on the
// hot path, and encoding/json would cost reflection and allocations on
// every page view. Strings go through jsonw, which escapes <, >, & and
// U+2028/U+2029 so an answer is safe to inline in a page.

const hexDigits = "0123456789abcdef"

// appendRawJSON copies an already-encoded JSON value (touchpoint content)
// and applies the same HTML-safety escaping as jsonw.AppendString, whatever
// produced the content. In valid JSON those characters can only occur
// inside strings, where \uXXXX is always a correct replacement. Empty
// content is written as {}.
func appendRawJSON(dst []byte, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, '{', '}')
	}
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !htmlSensitive[c] {
			continue
		}
		switch {
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, raw[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			start = i + 1
		case c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xA8 || raw[i+2] == 0xA9):
			dst = append(dst, raw[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xf])
			i += 2
			start = i + 1
		}
	}
	return append(dst, raw[start:]...)
}

// htmlSensitive marks the bytes appendRawJSON looks at: <, > and &, and
// 0xE2, which starts U+2028 and U+2029. Content rarely holds any, and one
// table lookup per byte is what the scan then costs.
var htmlSensitive = [256]bool{'<': true, '>': true, '&': true, 0xE2: true}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendKey writes `"key":` for a key known to need no escaping.
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendDecision encodes d as the decide response. Placements are written in
// request order and every requested placement appears, with [] when nothing
// was chosen, so clients can rely on the key being present.
func appendDecision(dst []byte, req *engine.Request, d *engine.Decision) []byte {
	dst = append(dst, '{')
	dst = appendKey(dst, "decision_id")
	dst = jsonw.AppendString(dst, d.ID)
	dst = append(dst, ',')
	dst = appendKey(dst, "customer_id")
	customerID := d.CustomerID
	if customerID == "" {
		customerID = req.CustomerID
	}
	dst = jsonw.AppendString(dst, customerID)
	dst = append(dst, ',')
	dst = appendKey(dst, "ruleset")
	dst = jsonw.AppendString(dst, d.Ruleset)
	dst = append(dst, ',')
	dst = appendKey(dst, "known_customer")
	dst = appendBool(dst, d.KnownCustomer)
	if d.Degraded {
		dst = append(dst, ',')
		dst = appendKey(dst, "degraded")
		dst = append(dst, "true"...)
		if d.DegradedReasons != 0 {
			dst = append(dst, ',')
			dst = appendKey(dst, "degraded_reasons")
			dst = append(dst, '[')
			sep := false
			for r, ok := d.DegradedReasons.Next(0); ok; r, ok = d.DegradedReasons.Next(r) {
				if sep {
					dst = append(dst, ',')
				}
				sep = true
				dst = jsonw.AppendString(dst, r.String())
			}
			dst = append(dst, ']')
		}
	}
	dst = append(dst, ',')
	dst = appendKey(dst, "placements")
	dst = append(dst, '{')
	for i := range req.Placements {
		if i > 0 {
			dst = append(dst, ',')
		}
		id := req.Placements[i].ID
		dst = jsonw.AppendString(dst, id)
		dst = append(dst, ':', '[')
		if pr := findPlacement(d.Placements, i, id); pr != nil {
			for j := range pr.Items {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendItem(dst, &pr.Items[j])
			}
		}
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	if req.Explain && d.Explain != nil {
		dst = append(dst, ',')
		dst = appendKey(dst, "explain")
		dst = appendExplanation(dst, d.Explain)
	}
	return append(dst, '}')
}

// findPlacement returns the result for placement id. The engine answers in
// request order, so index i is tried first; the scan covers any other order.
func findPlacement(results []engine.PlacementResult, i int, id string) *engine.PlacementResult {
	if i < len(results) && results[i].ID == id {
		return &results[i]
	}
	for k := range results {
		if results[k].ID == id {
			return &results[k]
		}
	}
	return nil
}

// object writes one JSON object's members, placing the commas; it lives
// on the caller's stack, so encoding stays allocation-free.
type object struct {
	b []byte
	n int
}

func openObject(dst []byte) object { return object{b: append(dst, '{')} }

func (o *object) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendKey(o.b, k)
}

func (o *object) str(k, v string)          { o.key(k); o.b = jsonw.AppendString(o.b, v) }
func (o *object) num(k string, v float64)  { o.key(k); o.b = jsonw.AppendFloat(o.b, v) }
func (o *object) integer(k string, v int)  { o.key(k); o.b = strconv.AppendInt(o.b, int64(v), 10) }
func (o *object) boolean(k string, v bool) { o.key(k); o.b = appendBool(o.b, v) }
func (o *object) raw(k string, v []byte)   { o.key(k); o.b = appendRawJSON(o.b, v) }

// optional writes a string member only when it is set.
func (o *object) optional(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *object) close() []byte { return append(o.b, '}') }

func appendItem(dst []byte, it *engine.Item) []byte {
	o := openObject(dst)
	o.str("touchpoint", it.Touchpoint)
	o.str("kind", it.Kind)
	if it.Fallback {
		o.boolean("fallback", true)
	} else {
		o.optional("rule", it.Rule)
	}
	o.num("score", it.Score)
	o.optional("experiment", it.Experiment)
	o.optional("variant", it.Variant)
	o.raw("content", it.Content)
	return o.close()
}

func appendExplanation(dst []byte, ex *engine.Explanation) []byte {
	dst = append(dst, '{')
	dst = appendKey(dst, "rules")
	dst = append(dst, '[')
	for i := range ex.Rules {
		if i > 0 {
			dst = append(dst, ',')
		}
		r := &ex.Rules[i]
		o := openObject(dst)
		o.str("rule", r.Rule)
		o.str("action", r.Action)
		o.str("outcome", r.Outcome)
		o.optional("error", r.Error)
		if r.Outcome == engine.OutcomeMatched {
			o.num("score", r.Score)
		}
		if len(r.Models) > 0 {
			o.key("models")
			o.b = appendModels(o.b, r.Models)
		}
		if len(r.FailedTerms) > 0 {
			o.key("failed_terms")
			to := openObject(o.b)
			to.str("op", r.TermsOp)
			to.optional("touchpoint", r.TermsTouchpoint)
			to.key("terms")
			to.b = appendTerms(to.b, r.FailedTerms)
			o.b = to.close()
		}
		dst = o.close()
	}
	dst = append(dst, ']', ',')
	dst = appendKey(dst, "candidates")
	dst = append(dst, '[')
	for i := range ex.Candidates {
		if i > 0 {
			dst = append(dst, ',')
		}
		c := &ex.Candidates[i]
		o := openObject(dst)
		o.str("placement", c.Placement)
		o.str("touchpoint", c.Touchpoint)
		o.str("rule", c.Rule)
		o.integer("priority", c.Priority)
		o.num("score", c.Score)
		o.boolean("chosen", c.Chosen)
		o.str("reason", c.Reason)
		o.optional("by", c.By)
		if c.Reason != engine.ReasonPlacementMismatch && c.Reason != engine.ReasonChannelMismatch {
			o.num("rule_score", c.RuleScore)
			o.num("propensity", c.Propensity)
			o.num("value", c.Value)
			o.num("lever", c.Lever)
		}
		if len(c.Models) > 0 {
			o.key("models")
			o.b = appendModels(o.b, c.Models)
		}
		dst = o.close()
	}
	return append(dst, ']', '}')
}

// appendModels encodes the models that ranked a candidate: output, every
// input as the model read it (null when missing) and the top contributions.
func appendModels(dst []byte, ms []rules.ModelExplanation) []byte {
	dst = append(dst, '[')
	for i := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		m := &ms[i]
		o := openObject(dst)
		o.str("model", m.Model)
		o.num("output", m.Output)
		o.key("inputs")
		o.b = append(o.b, '{')
		for k, in := range m.Inputs {
			if k > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendKey(o.b, in.Name)
			switch {
			case in.Missing:
				o.b = append(o.b, "null"...)
			case in.Value.Kind == features.KindString:
				o.b = jsonw.AppendString(o.b, in.Value.Str)
			default:
				o.b = jsonw.AppendFloat(o.b, in.Value.Num)
			}
		}
		o.b = append(o.b, '}')
		o.num("bias", m.Bias)
		o.key("top")
		o.b = append(o.b, '[')
		for k, c := range m.Top {
			if k > 0 {
				o.b = append(o.b, ',')
			}
			co := openObject(o.b)
			co.str("input", c.Input)
			co.num("contribution", c.Value)
			o.b = co.close()
		}
		o.b = append(o.b, ']')
		dst = o.close()
	}
	return append(dst, ']')
}

// appendError encodes the error body shared by every 4xx/5xx answer.
func appendError(dst []byte, code, field, message string) []byte {
	dst = append(dst, '{')
	dst = appendKey(dst, "error")
	o := openObject(dst)
	o.str("code", code)
	o.optional("field", field)
	o.str("message", message)
	return append(o.close(), '}')
}

// appendTerms encodes a condition's terms with their values (explain's
// failed_terms); a term without a value has "error" instead.
func appendTerms(dst []byte, terms []engine.TermValue) []byte {
	dst = append(dst, '[')
	for i := range terms {
		if i > 0 {
			dst = append(dst, ',')
		}
		t := &terms[i]
		o := openObject(dst)
		o.str("term", t.Term)
		if t.Error != "" {
			o.str("error", t.Error)
		} else {
			o.boolean("value", t.Value)
		}
		if t.Segment != "" {
			o.str("segment", t.Segment)
			o.key("terms")
			o.b = appendTerms(o.b, t.Terms)
		}
		dst = o.close()
	}
	return append(dst, ']')
}
