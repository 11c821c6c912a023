package features

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/valyala/fastjson"
)

// maxLineBytes bounds one customer line. It protects the loader from a file
// that is not JSON Lines at all (one huge line) rather than limiting real data.
const maxLineBytes = 16 << 20

// MemoryStore is an embedded Store holding every customer in memory.
//
// It is sized for millions of customers: features are validated when loaded
// and kept in a compact binary encoding, with feature names and short string
// values interned, instead of as a map of Values per customer (which would
// take several times the memory). Lookup decodes a fresh Record on every call,
// which is why a Cache normally sits in front of it. Strings in returned
// Records share the store's memory, so decoding copies no string data.
//
// A MemoryStore is immutable once loaded and safe for concurrent use.
type MemoryStore struct {
	index  map[string]uint32 // customer id → ordinal
	refs   []uint64          // ordinal → chunk index<<32 | offset of its encoding
	chunks []string          // encoded customers, see appendFeature
	names  []string          // feature names by interned index
	strs   []string          // interned string values by index
	// layouts are the distinct sets of features customers have, shared by
	// the records Lookup returns; see Layout.
	layouts []*Layout
}

// OpenJSONL loads a MemoryStore from a JSON Lines file holding one record per
// line in the format RecordParser reads. Blank lines are skipped. A bad line
// fails the whole load with an error naming path:line.
func OpenJSONL(path string) (*MemoryStore, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load customers from %q: %w", path, err)
	}
	defer f.Close()
	return LoadJSONL(f, path)
}

// LoadJSONL is OpenJSONL for any reader; name stands for the path in errors.
func LoadJSONL(r io.Reader, name string) (*MemoryStore, error) {
	l := loader{
		nameIdx: make(map[string]uint32),
		strIdx:  make(map[string]uint32),
		index:   make(map[string]uint32),

		layoutIdx: make(map[string]uint32),
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			// Editors on some platforms save with a byte order mark.
			b = TrimBOM(b)
		}
		if IsBlankLine(b) {
			continue
		}
		if err := l.add(b, line); err != nil {
			return nil, fmt.Errorf("cannot load customers: %w", &LoadError{Path: name, Line: line, Err: err})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line is longer than %d MiB", maxLineBytes>>20)
			return nil, fmt.Errorf("cannot load customers: %w", &LoadError{Path: name, Line: line + 1, Err: err})
		}
		return nil, fmt.Errorf("cannot load customers from %q: %w", name, err)
	}
	return l.finish(), nil
}

// LoadError reports a bad line in a customer file.
type LoadError struct {
	Path string
	Line int
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err) }
func (e *LoadError) Unwrap() error { return e.Err }

// Len reports how many customers the store holds.
func (s *MemoryStore) Len() int { return len(s.index) }

// Contains reports whether the store holds the customer, without decoding
// the record.
func (s *MemoryStore) Contains(customerID string) bool {
	_, ok := s.index[customerID]
	return ok
}

// Lookup decodes the customer's record. The Record's ID is customerID itself.
func (s *MemoryStore) Lookup(_ context.Context, customerID string) (*Record, error) {
	ord, ok := s.index[customerID]
	if !ok {
		return nil, nil
	}
	values, err := s.decode(s.refs[ord])
	if err != nil {
		return nil, fmt.Errorf("cannot decode customer %q: %w", customerID, err)
	}
	return &Record{ID: customerID, Values: values}, nil
}

// Ping always succeeds: the data is already in memory.
func (s *MemoryStore) Ping(context.Context) error { return nil }

// Encoding of one customer:
//
//	uvarint layout: 1 + index into MemoryStore.layouts, or 0 for a
//	        customer whose features no shared layout fits
//	uvarint how many strings (string values and list items) follow
//	uvarint feature count, then per feature:
//	uvarint name index, tag byte, payload
//
// Payloads by tag:
//
//	tagInt      zigzag varint; integral numbers, which are common and short
//	tagDecimal  scale byte e, zigzag varint m; the number is m / 10^e, for
//	            amounts and ratios such as 459.76 that would otherwise take
//	            eight bytes
//	tagNumber   8-byte little-endian float64 bits
//	tagString   one string
//	tagTrue     nothing
//	tagFalse    nothing
//	tagList     uvarint count, then that many strings
//
// A string is uvarint x: when x is odd, x>>1 indexes the interned strings;
// when even, x>>1 bytes of text follow.
const (
	tagInt byte = iota + 1
	tagDecimal
	tagNumber
	tagString
	tagTrue
	tagFalse
	tagList
)

const (
	// maxExactInt is the magnitude below which every integer is exactly a float64.
	maxExactInt = 1 << 53
	// maxDecimalScale is the most decimal places tagDecimal tries.
	maxDecimalScale = 6

	// Short strings are interned because feature values repeat heavily
	// (stages, tiers, languages, stores). The table is bounded so a feature
	// holding unique values, such as an email, cannot grow it without limit;
	// once full, new strings are stored inline.
	maxInternedLen = 32
	maxInterned    = 1 << 16

	// chunkSize is the unit the encoded customers are stored in. Chunks
	// avoid re-copying one ever-growing buffer, which for a million
	// customers costs seconds of load time.
	chunkSize = 1 << 20
)

var errCorrupt = errors.New("corrupt encoded record")

// loader builds a MemoryStore from records one line at a time.
type loader struct {
	parser fastjson.Parser

	nameIdx map[string]uint32
	names   []string
	// order[i] is the name index seen at position i of the previous record.
	// Records usually list features in the same order, so checking the
	// prediction first skips most name map lookups.
	order []uint32
	// seen[i] == stamp when feature name i already occurred in the current
	// record; stamping avoids clearing a set for each of a million records.
	seen  []uint32
	stamp uint32

	strIdx map[string]uint32
	strs   []string

	buf    []byte // encoding of the current record
	chunks []string
	cur    strings.Builder // chunk being filled

	index map[string]uint32
	refs  []uint64
	lines []int // ordinal → line, for duplicate-id messages

	// key is the current record's layout key: name index and kind of each
	// feature, in order. layoutIdx maps keys to indexes into layouts.
	key       []byte
	layoutIdx map[string]uint32
	layouts   []*Layout
}

func (l *loader) add(b []byte, line int) error {
	id, feats, err := parseEnvelope(&l.parser, b)
	if err != nil {
		return err
	}
	if ord, dup := l.index[string(id)]; dup {
		return fmt.Errorf("duplicate id %q (first seen on line %d)", id, l.lines[ord])
	}
	if len(l.refs) == math.MaxUint32 {
		return errors.New("too many customers for the embedded store")
	}

	l.stamp++
	if l.stamp == 0 {
		clear(l.seen)
		l.stamp = 1
	}
	// Reserve room for the header, which is known only after the walk.
	const hdrLen = 3 * binary.MaxVarintLen64
	buf := append(l.buf[:0], make([]byte, hdrLen)...)
	key := l.key[:0]
	n, strs := 0, 0
	err = walkFeatures(feats, func(name []byte, f *rawFeature) error {
		idx := l.intern(name, n)
		if l.seen[idx] == l.stamp {
			return fmt.Errorf("duplicate feature %q", name)
		}
		l.seen[idx] = l.stamp
		buf = l.appendFeature(buf, idx, f)
		key = binary.AppendUvarint(key, uint64(idx))
		key = append(key, byte(f.kind))
		switch f.kind {
		case KindString:
			strs++
		case KindList:
			strs += len(f.list)
		}
		n++
		return nil
	})
	l.buf, l.key = buf, key
	if err != nil {
		return err
	}
	var hdr [hdrLen]byte
	h := binary.AppendUvarint(hdr[:0], l.layout(key))
	h = binary.AppendUvarint(h, uint64(strs))
	h = binary.AppendUvarint(h, uint64(n))
	start := hdrLen - len(h)
	copy(buf[start:], h)

	l.index[string(id)] = uint32(len(l.refs))
	l.refs = append(l.refs, l.store(buf[start:]))
	l.lines = append(l.lines, line)
	return nil
}

// store appends one encoded customer to the chunks and returns its reference.
func (l *loader) store(enc []byte) uint64 {
	if l.cur.Cap()-l.cur.Len() < len(enc) {
		l.seal()
		l.cur.Grow(max(chunkSize, len(enc)))
	}
	ref := uint64(len(l.chunks))<<32 | uint64(l.cur.Len())
	l.cur.Write(enc)
	return ref
}

// seal moves the chunk being filled to chunks.
func (l *loader) seal() {
	if l.cur.Len() == 0 {
		return
	}
	s := l.cur.String()
	if l.cur.Cap()-len(s) > len(s)/8 {
		s = strings.Clone(s) // a mostly empty last chunk need not keep its slack
	}
	l.chunks = append(l.chunks, s)
	l.cur.Reset()
}

// intern returns the index of the feature name found at position pos.
func (l *loader) intern(name []byte, pos int) uint32 {
	if pos < len(l.order) {
		if idx := l.order[pos]; l.names[idx] == string(name) {
			return idx
		}
	}
	idx, ok := l.nameIdx[string(name)]
	if !ok {
		idx = uint32(len(l.names))
		s := string(name)
		l.nameIdx[s] = idx
		l.names = append(l.names, s)
		l.seen = append(l.seen, 0)
	}
	if pos < len(l.order) {
		l.order[pos] = idx
	} else {
		l.order = append(l.order, idx)
	}
	return idx
}

// layout returns the header's layout number for the features of key: one
// more than the index of their shared layout, or 0 when the store already
// shares as many layouts as it may.
func (l *loader) layout(key []byte) uint64 {
	if i, ok := l.layoutIdx[string(key)]; ok {
		return uint64(i) + 1
	}
	if len(l.layouts) >= maxSharedLayouts {
		return 0
	}
	lay := &Layout{shared: true, aliased: true}
	for c := (cursor{s: string(key)}); c.i < len(c.s); {
		lay.names = append(lay.names, l.names[c.uvarint()])
		lay.kinds = append(lay.kinds, Kind(c.byte()))
	}
	l.layoutIdx[string(key)] = uint32(len(l.layouts))
	l.layouts = append(l.layouts, lay)
	return uint64(len(l.layouts))
}

func (l *loader) finish() *MemoryStore {
	l.seal()
	return &MemoryStore{index: l.index, refs: l.refs, chunks: l.chunks, names: l.names, strs: l.strs, layouts: l.layouts}
}

func (l *loader) appendFeature(buf []byte, nameIdx uint32, f *rawFeature) []byte {
	buf = binary.AppendUvarint(buf, uint64(nameIdx))
	switch f.kind {
	case KindNumber:
		return appendNumber(buf, f.num)
	case KindString:
		buf = append(buf, tagString)
		return l.appendString(buf, f.str)
	case KindBool:
		if f.b {
			return append(buf, tagTrue)
		}
		return append(buf, tagFalse)
	case KindList:
		buf = append(buf, tagList)
		buf = binary.AppendUvarint(buf, uint64(len(f.list)))
		for _, item := range f.list {
			s, _ := item.StringBytes()
			buf = l.appendString(buf, s)
		}
		return buf
	}
	panic(fmt.Sprintf("features: cannot encode kind %v", f.kind))
}

func appendNumber(buf []byte, n float64) []byte {
	// -0 is not integral in any encoding below; it falls through to tagNumber.
	if n != 0 || !math.Signbit(n) {
		if n == math.Trunc(n) && math.Abs(n) < maxExactInt {
			buf = append(buf, tagInt)
			return binary.AppendVarint(buf, int64(n))
		}
		for e := 1; e <= maxDecimalScale; e++ {
			p := math.Pow10(e)
			m := math.Round(n * p)
			// Division by an exact power of ten rounds correctly, so this
			// check guarantees decoding gives back exactly n.
			if math.Abs(m) < maxExactInt && m/p == n {
				buf = append(buf, tagDecimal, byte(e))
				return binary.AppendVarint(buf, int64(m))
			}
		}
	}
	buf = append(buf, tagNumber)
	return binary.LittleEndian.AppendUint64(buf, math.Float64bits(n))
}

func (l *loader) appendString(buf, s []byte) []byte {
	if len(s) > 0 && len(s) <= maxInternedLen {
		idx, ok := l.strIdx[string(s)]
		if !ok && len(l.strs) < maxInterned {
			idx, ok = uint32(len(l.strs)), true
			str := string(s)
			l.strIdx[str] = idx
			l.strs = append(l.strs, str)
		}
		if ok {
			return binary.AppendUvarint(buf, uint64(idx)<<1|1)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(s))<<1)
	return append(buf, s...)
}

// decode rebuilds the features encoded at ref. The encoding was produced
// by the loader, so errors mean a bug, but decoding still checks every bound
// rather than trusting it.
func (s *MemoryStore) decode(ref uint64) (Values, error) {
	chunk := ref >> 32
	if chunk >= uint64(len(s.chunks)) {
		return Values{}, errCorrupt
	}
	c := cursor{s: s.chunks[chunk], i: int(uint32(ref)), strs: s.strs}
	lay, nstrs, n := c.uvarint(), c.uvarint(), c.uvarint()
	// Every feature takes at least two bytes and every string one; larger
	// counts are corrupt and must not reach make.
	if c.bad || n > uint64(len(c.s)-c.i)/2 || nstrs > uint64(len(c.s)-c.i) || lay > uint64(len(s.layouts)) {
		return Values{}, errCorrupt
	}
	var l *Layout
	if lay > 0 {
		l = s.layouts[lay-1]
		if uint64(l.Len()) != n {
			return Values{}, errCorrupt
		}
	} else {
		l = &Layout{names: make([]string, n), kinds: make([]Kind, n), aliased: true}
	}
	v := Values{layout: l, words: make([]uint64, n)}
	if nstrs > 0 {
		v.strs = make([]string, 0, nstrs)
	}
	for i := range n {
		idx := c.uvarint()
		tag := c.byte()
		if c.bad || idx >= uint64(len(s.names)) {
			return Values{}, errCorrupt
		}
		var kind Kind
		switch tag {
		case tagInt:
			kind, v.words[i] = KindNumber, math.Float64bits(float64(c.varint()))
		case tagDecimal:
			e := c.byte()
			m := c.varint()
			if e == 0 || e > maxDecimalScale {
				return Values{}, errCorrupt
			}
			kind, v.words[i] = KindNumber, math.Float64bits(float64(m)/math.Pow10(int(e)))
		case tagNumber:
			kind, v.words[i] = KindNumber, c.uint64()
		case tagString:
			if len(v.strs) == cap(v.strs) {
				return Values{}, errCorrupt
			}
			kind, v.words[i] = KindString, uint64(len(v.strs))
			v.strs = append(v.strs, c.str())
		case tagTrue:
			kind, v.words[i] = KindBool, 1
		case tagFalse:
			kind = KindBool
		case tagList:
			cnt := c.uvarint()
			if c.bad || cnt > uint64(cap(v.strs)-len(v.strs)) {
				return Values{}, errCorrupt
			}
			kind, v.words[i] = KindList, uint64(len(v.strs))<<32|cnt
			for range cnt {
				v.strs = append(v.strs, c.str())
			}
		default:
			return Values{}, errCorrupt
		}
		if c.bad {
			return Values{}, errCorrupt
		}
		if lay == 0 {
			l.names[i], l.kinds[i] = s.names[idx], kind
		} else if l.kinds[i] != kind || l.names[i] != s.names[idx] {
			return Values{}, errCorrupt
		}
	}
	return v, nil
}

// cursor reads the MemoryStore encoding. Reads past the end set bad and
// return zero values, so callers check bad once per step.
type cursor struct {
	s    string
	i    int
	strs []string
	bad  bool
}

func (c *cursor) byte() byte {
	if c.i >= len(c.s) {
		c.bad = true
		return 0
	}
	b := c.s[c.i]
	c.i++
	return b
}

func (c *cursor) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b := c.byte()
		if c.bad {
			return 0
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x
		}
	}
	c.bad = true
	return 0
}

func (c *cursor) varint() int64 {
	ux := c.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (c *cursor) uint64() uint64 {
	if len(c.s)-c.i < 8 {
		c.bad = true
		return 0
	}
	var b [8]byte
	copy(b[:], c.s[c.i:])
	c.i += 8
	return binary.LittleEndian.Uint64(b[:])
}

func (c *cursor) str() string {
	x := c.uvarint()
	if c.bad {
		return ""
	}
	if x&1 == 1 {
		if x>>1 >= uint64(len(c.strs)) {
			c.bad = true
			return ""
		}
		return c.strs[x>>1]
	}
	n := x >> 1
	if n > uint64(len(c.s)-c.i) {
		c.bad = true
		return ""
	}
	s := c.s[c.i : c.i+int(n)]
	c.i += int(n)
	return s
}

// TrimBOM drops a UTF-8 byte order mark, which some tools write at the
// start of a JSON Lines file.
func TrimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// IsBlankLine reports whether a JSON Lines line holds only whitespace;
// such lines are skipped.
func IsBlankLine(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
