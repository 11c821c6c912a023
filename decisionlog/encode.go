package decisionlog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"time"
	"unsafe"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/internal/jsonw"
)

// HashBytes is how much of the HMAC-SHA256 of a customer id the line
// keeps: 16 bytes (128 bits, 32 hex digits) leave collisions out of reach
// for any customer base while keeping lines short.
const HashBytes = 16

// encoder turns entries into JSON lines. It belongs to the writer
// goroutine, so its buffers are reused without locking.
type encoder struct {
	node []byte // the node name, already a JSON string
	mac  hash.Hash
	sum  []byte
	hex  [2 * HashBytes]byte
}

func newEncoder(node string, key []byte) *encoder {
	enc := &encoder{node: jsonw.AppendString(nil, node)}
	if key != nil {
		enc.mac = hmac.New(sha256.New, key)
		enc.sum = make([]byte, 0, sha256.Size)
	}
	return enc
}

// customerHash is the hex of the truncated HMAC-SHA256 of id under the
// configured key: stable for a key, unrelated across keys.
func (enc *encoder) customerHash(id []byte) []byte {
	enc.mac.Reset()
	enc.mac.Write(id)
	enc.sum = enc.mac.Sum(enc.sum[:0])
	hex.Encode(enc.hex[:], enc.sum[:HashBytes])
	return enc.hex[:]
}

// appendLine appends e as one JSON object and a newline.
func (enc *encoder) appendLine(b []byte, e *entry) []byte {
	b = append(b, `{"decision_id":`...)
	b = appendText(b, e.text(e.id))
	b = append(b, `,"time":"`...)
	b = appendTime(b, e.when)
	b = append(b, `","node":`...)
	b = append(b, enc.node...)
	b = append(b, `,"ruleset":`...)
	b = jsonw.AppendString(b, e.ruleset)
	if enc.mac != nil {
		b = append(b, `,"customer_hash":"`...)
		b = append(b, enc.customerHash(e.text(e.customer))...)
		b = append(b, '"')
	} else {
		b = append(b, `,"customer_id":`...)
		b = appendText(b, e.text(e.customer))
	}
	b = append(b, `,"known_customer":`...)
	b = strconv.AppendBool(b, e.known)
	if e.isDegraded {
		b = append(b, `,"degraded":[`...)
		n := 0
		for r, ok := e.degraded.Next(0); ok; r, ok = e.degraded.Next(r) {
			if n > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, r.String())
			n++
		}
		b = append(b, ']')
	}
	b = append(b, `,"context":{`...)
	for i := range e.context {
		f := &e.context[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendText(b, e.text(f.name))
		b = append(b, ':')
		b = enc.appendValue(b, e, f)
	}
	b = append(b, `},"placements":[`...)
	c := 0
	for pi := range e.placements {
		p := &e.placements[pi]
		if pi > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendText(b, e.text(p.id))
		if p.count > 0 {
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(p.count), 10)
		}
		if p.experiment != "" {
			b = append(b, `,"experiment":`...)
			b = jsonw.AppendString(b, p.experiment)
			b = append(b, `,"variant":`...)
			b = jsonw.AppendString(b, p.variant)
		}
		b = append(b, `,"candidates":[`...)
		// Candidates come in placement order; one pass serves them all.
		for n := 0; c < len(e.candidates) && int(e.candidates[c].placement) == pi; c, n = c+1, n+1 {
			if n > 0 {
				b = append(b, ',')
			}
			b = appendCandidate(b, &e.candidates[c])
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}\n"...)
}

func appendCandidate(b []byte, c *candidateRec) []byte {
	b = append(b, `{"touchpoint":`...)
	b = jsonw.AppendString(b, c.touchpoint)
	if c.rule != "" {
		b = append(b, `,"rule":`...)
		b = jsonw.AppendString(b, c.rule)
	}
	b = append(b, `,"score":`...)
	b = jsonw.AppendFloat(b, c.score)
	b = append(b, `,"reason":`...)
	b = jsonw.AppendString(b, c.reason)
	b = append(b, `,"chosen":`...)
	b = strconv.AppendBool(b, c.chosen)
	if c.chosen {
		b = append(b, `,"propensity":`...)
		b = jsonw.AppendFloat(b, c.propensity)
	}
	if c.model != "" {
		b = append(b, `,"model":`...)
		b = jsonw.AppendString(b, c.model)
		b = append(b, `,"model_output":`...)
		b = jsonw.AppendFloat(b, c.modelOutput)
	}
	if c.experiment != "" {
		b = append(b, `,"experiment":`...)
		b = jsonw.AppendString(b, c.experiment)
		b = append(b, `,"variant":`...)
		b = jsonw.AppendString(b, c.variant)
	}
	return append(b, '}')
}

func (enc *encoder) appendValue(b []byte, e *entry, f *contextField) []byte {
	switch f.kind {
	case features.KindNumber:
		return jsonw.AppendFloat(b, f.num)
	case features.KindBool:
		return strconv.AppendBool(b, f.b)
	case features.KindString:
		return appendText(b, e.text(f.str))
	case features.KindList:
		b = append(b, '[')
		for i := f.listFirst; i < f.listEnd; i++ {
			if i > f.listFirst {
				b = append(b, ',')
			}
			b = appendText(b, e.text(e.listItems[i]))
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

// appendText appends arena bytes as a JSON string. The string view lives
// only for the call, while the arena is not written.
func appendText(b, s []byte) []byte {
	return jsonw.AppendString(b, unsafe.String(unsafe.SliceData(s), len(s)))
}

// appendTime appends t in UTC as time.RFC3339Nano does (trailing zeros of
// the fraction dropped). Every line has one; formatting it by hand costs a
// fifth of the general layout engine.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, second, 2)
	if ns := t.Nanosecond(); ns != 0 {
		width := 9
		for ns%10 == 0 {
			ns /= 10
			width--
		}
		b = append(b, '.')
		b = appendDigits(b, ns, width)
	}
	return append(b, 'Z')
}

// appendDigits appends v (non-negative) as exactly width digits.
func appendDigits(b []byte, v, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}
