package loadtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/internal/yamlalias"
)

// Traffic is a parsed traffic file: what the requests look like and how
// often each kind occurs. See configs/loadtest/traffic.yaml for the format.
type Traffic struct {
	// Path is appended to a target URL that has none.
	Path string
	// ZipfS and ZipfV shape customer popularity: customer number k+1 is
	// drawn with probability proportional to (ZipfV + k)^-ZipfS.
	ZipfS, ZipfV float64
	// Anonymous is the share of requests from visitors not in the store.
	Anonymous float64
	// Views are the weighted kinds of page view.
	Views []View
	// Events mixes event batches (feedback and behavioural) into the
	// traffic; nil when the file has no events section.
	Events *Events
	// Digest identifies the file's content, so compare can tell whether two
	// runs used the same traffic.
	Digest string
}

// View is one kind of page view: which placements it asks for and the
// context it sends.
type View struct {
	Name   string
	Weight float64
	// placements is the pre-encoded JSON array.
	placements []byte
	fields     []contextField
}

// contextField is one context key with its pre-encoded `"key":value`
// choices; cum holds cumulative weights (nil for a single fixed value).
type contextField struct {
	key     string
	choices [][]byte
	cum     []float64
}

// The raw YAML shapes. Nodes are kept where positions or order matter.
type trafficFile struct {
	Version   int           `yaml:"version"`
	Path      string        `yaml:"path"`
	Customers customersFile `yaml:"customers"`
	Views     []viewFile    `yaml:"views"`
	// Events is a node so its errors carry positions; see parseEvents.
	Events yaml.Node `yaml:"events"`
}

type customersFile struct {
	ZipfS     *float64 `yaml:"zipf_s"`
	ZipfV     *float64 `yaml:"zipf_v"`
	Anonymous float64  `yaml:"anonymous"`
}

type viewFile struct {
	Name       string      `yaml:"name"`
	Weight     float64     `yaml:"weight"`
	Placements []yaml.Node `yaml:"placements"`
	Context    yaml.Node   `yaml:"context"`
	line, col  int
}

func (v *viewFile) UnmarshalYAML(n *yaml.Node) error {
	type plain viewFile
	if err := n.Decode((*plain)(v)); err != nil {
		return err
	}
	v.line, v.col = n.Line, n.Column
	return nil
}

// Defaults for the customers section.
const (
	defaultZipfS = 1.1
	defaultZipfV = 100
	maxViews     = 1000
)

// LoadTraffic reads and checks a traffic file.
func LoadTraffic(path string) (*Traffic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read traffic file: %w", err)
	}
	t, err := ParseTraffic(path, data)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ParseTraffic checks a traffic file's content; name prefixes error
// positions (name:line:col).
func ParseTraffic(name string, data []byte) (*Traffic, error) {
	// Aliases first, on the node tree: decoding into structs would expand
	// them, and a few nested ones expand to gigabytes.
	if err := yamlalias.Check(name, data); err != nil {
		return nil, err
	}
	var f trafficFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty traffic file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	at := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%s:%d:%d: %s", name, n.Line, n.Column, fmt.Sprintf(format, args...))
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version must be 1, got %d", name, f.Version)
	}
	t := &Traffic{Path: f.Path, ZipfS: defaultZipfS, ZipfV: defaultZipfV, Anonymous: f.Customers.Anonymous}
	if t.Path == "" {
		t.Path = "/v1/decide"
	}
	if !strings.HasPrefix(t.Path, "/") {
		return nil, fmt.Errorf("%s: path must start with /, got %q", name, t.Path)
	}
	events, err := parseEvents(&f.Events, at)
	if err != nil {
		return nil, err
	}
	t.Events = events
	if f.Customers.ZipfS != nil {
		t.ZipfS = *f.Customers.ZipfS
	}
	if f.Customers.ZipfV != nil {
		t.ZipfV = *f.Customers.ZipfV
	}
	// math/rand's Zipf needs s > 1 and v >= 1.
	if !(t.ZipfS > 1) || t.ZipfS > 10 {
		return nil, fmt.Errorf("%s: customers.zipf_s must be in (1, 10], got %g", name, t.ZipfS)
	}
	if !(t.ZipfV >= 1) || t.ZipfV > 1e9 {
		return nil, fmt.Errorf("%s: customers.zipf_v must be in [1, 1e9], got %g", name, t.ZipfV)
	}
	if !(t.Anonymous >= 0 && t.Anonymous <= 1) {
		return nil, fmt.Errorf("%s: customers.anonymous must be a share between 0 and 1, got %g", name, t.Anonymous)
	}
	if len(f.Views) == 0 {
		return nil, fmt.Errorf("%s: views: at least one view is required", name)
	}
	if len(f.Views) > maxViews {
		return nil, fmt.Errorf("%s: views: %d views is more than the %d allowed", name, len(f.Views), maxViews)
	}
	seen := map[string]bool{}
	for i := range f.Views {
		vf := &f.Views[i]
		pos := &yaml.Node{Line: vf.line, Column: vf.col}
		if vf.Name == "" {
			return nil, at(pos, "view %d has no name", i+1)
		}
		if seen[vf.Name] {
			return nil, at(pos, "view %q is defined twice", vf.Name)
		}
		seen[vf.Name] = true
		if !(vf.Weight > 0) || math.IsInf(vf.Weight, 0) {
			return nil, at(pos, "view %q: weight must be a positive number, got %g", vf.Name, vf.Weight)
		}
		v := View{Name: vf.Name, Weight: vf.Weight}
		p, err := encodePlacements(vf.Placements)
		if err != nil {
			return nil, at(pos, "view %q: %v", vf.Name, err)
		}
		if p == nil {
			return nil, at(pos, "view %q: placements: at least one placement is required", vf.Name)
		}
		v.placements = p
		fields, err := encodeContext(&vf.Context, at)
		if err != nil {
			return nil, err
		}
		v.fields = fields
		t.Views = append(t.Views, v)
	}
	sum := sha256.Sum256(data)
	t.Digest = hex.EncodeToString(sum[:6])
	return t, nil
}

// encodePlacements turns [id, {id, count}] into the request's JSON array.
func encodePlacements(nodes []yaml.Node) ([]byte, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range nodes {
		n := &nodes[i]
		if i > 0 {
			b.WriteByte(',')
		}
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Value == "" {
				return nil, errors.New("placements: empty placement id")
			}
			b.Write(jsonString(n.Value))
		case yaml.MappingNode:
			var p struct {
				ID    string `yaml:"id"`
				Count int    `yaml:"count"`
			}
			if err := decodeStrict(n, &p); err != nil {
				return nil, fmt.Errorf("placements: %w", err)
			}
			if p.ID == "" {
				return nil, errors.New("placements: a placement needs an id")
			}
			if p.Count < 0 {
				return nil, fmt.Errorf("placements: %s: count must not be negative", p.ID)
			}
			b.WriteString(`{"id":`)
			b.Write(jsonString(p.ID))
			if p.Count > 0 {
				b.WriteString(`,"count":`)
				b.WriteString(strconv.Itoa(p.Count))
			}
			b.WriteByte('}')
		default:
			return nil, errors.New("placements: each item is an id or {id, count}")
		}
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// decodeStrict decodes a mapping node refusing unknown keys, which
// yaml.Node.Decode alone does not do.
func decodeStrict(n *yaml.Node, out any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// encodeContext pre-encodes each context key's choices: a scalar is fixed,
// a list is a uniform choice and a map of value: weight a weighted one.
func encodeContext(n *yaml.Node, at func(*yaml.Node, string, ...any) error) ([]contextField, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, at(n, "context must be a map of field: value")
	}
	var fields []contextField
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := contextField{key: k.Value}
		prefix := append(jsonString(k.Value), ':')
		choice := func(val []byte) []byte { return append(append([]byte(nil), prefix...), val...) }
		switch v.Kind {
		case yaml.ScalarNode:
			val, err := scalarJSON(v)
			if err != nil {
				return nil, at(v, "context.%s: %v", k.Value, err)
			}
			f.choices = [][]byte{choice(val)}
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return nil, at(v, "context.%s: an empty list has nothing to choose from", k.Value)
			}
			total := 0.0
			for _, item := range v.Content {
				val, err := scalarJSON(item)
				if err != nil {
					return nil, at(item, "context.%s: %v", k.Value, err)
				}
				total++
				f.choices = append(f.choices, choice(val))
				f.cum = append(f.cum, total)
			}
		case yaml.MappingNode:
			total := 0.0
			for j := 0; j+1 < len(v.Content); j += 2 {
				val, wn := v.Content[j], v.Content[j+1]
				w, err := strconv.ParseFloat(wn.Value, 64)
				if err != nil || !(w > 0) || math.IsInf(w, 0) {
					return nil, at(wn, "context.%s: weight of %q must be a positive number, got %q", k.Value, val.Value, wn.Value)
				}
				total += w
				f.choices = append(f.choices, choice(jsonString(val.Value)))
				f.cum = append(f.cum, total)
			}
			if len(f.choices) == 0 {
				return nil, at(v, "context.%s: an empty map has nothing to choose from", k.Value)
			}
		default:
			return nil, at(v, "context.%s: use a value, a list (uniform choice) or a map of value: weight", k.Value)
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// scalarJSON keeps YAML's types: numbers and booleans stay unquoted.
func scalarJSON(n *yaml.Node) ([]byte, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, errors.New("expected a plain value")
	}
	switch n.Tag {
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a finite number", n.Value)
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, err
		}
		return strconv.AppendBool(nil, b), nil
	case "!!null":
		return nil, errors.New("null is not a context value")
	}
	return jsonString(n.Value), nil
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// Generator turns request sequence numbers into request bodies. It is
// immutable and shared; each worker draws through its own Source.
type Generator struct {
	t          *Traffic
	customers  int
	seed       uint64
	viewCum    []float64
	eventShare float64
	kindKey    uint64
	idPrefix   string
}

// NewGenerator prepares t for customers ids and a seed. Event ids start
// with the seed alone; a run names itself with NewRunGenerator.
func NewGenerator(t *Traffic, customers int, seed uint64) *Generator {
	return NewRunGenerator(t, customers, seed, "")
}

// NewRunGenerator is NewGenerator whose event ids also carry runID, so two
// runs with the same seed send different event ids.
func NewRunGenerator(t *Traffic, customers int, seed uint64, runID string) *Generator {
	g := &Generator{t: t, customers: customers, seed: seed, kindKey: mix64(seed ^ kindSalt), idPrefix: eventIDPrefix(seed, runID)}
	if t.HasEvents() {
		g.eventShare = t.Events.Share
	}
	total := 0.0
	for _, v := range t.Views {
		total += v.Weight
		g.viewCum = append(g.viewCum, total)
	}
	return g
}

// Source builds bodies for one worker. Request n's body depends only on
// the seed and n, never on which worker builds it or when, so a run's
// requests are reproducible even though workers interleave.
type Source struct {
	g    *Generator
	pcg  *rand.PCG
	rng  *rand.Rand
	zipf *rand.Zipf
	// ts is the `"ts":"…"` member for second tsSec.
	ts    []byte
	tsSec int64
}

// NewSource returns a Source; it allocates once, Body never does.
func (g *Generator) NewSource() *Source {
	pcg := rand.NewPCG(0, 0)
	rng := rand.New(pcg)
	return &Source{g: g, pcg: pcg, rng: rng, zipf: rand.NewZipf(rng, g.t.ZipfS, g.t.ZipfV, uint64(g.customers-1)),
		ts: make([]byte, 0, 40)}
}

// anonymousSpace is how many distinct visitor ids anonymous traffic uses:
// large, so they behave like one-off visitors the store has never seen.
const anonymousSpace = 1_000_000_000

// Body appends request n's JSON body to dst and returns it with its kind
// and, for a decide, the index of the view it drew (-1 for event batches).
// now timestamps events.
func (s *Source) Body(dst []byte, n uint64, now time.Time) ([]byte, RequestKind, int) {
	if s.g.Kind(n) == EventsRequest {
		return s.Events(dst, n, now), EventsRequest, -1
	}
	dst, vi := s.Decide(dst, n)
	return dst, DecideRequest, vi
}

// Decide appends the decide body request n has, or would have if it were
// a decide, and returns it with the index of the view it drew.
func (s *Source) Decide(dst []byte, n uint64) ([]byte, int) {
	return s.decide(dst, n, 0)
}

// DecideAs is Decide for customer c-<customer> (as the demo data names
// customers), whatever the draw would have been; preflight uses it to ask
// the target about the ids a run will send.
func (s *Source) DecideAs(dst []byte, n uint64, customer int) []byte {
	dst, _ = s.decide(dst, n, customer)
	return dst
}

// decide builds request n; customer > 0 fixes the customer id.
func (s *Source) decide(dst []byte, n uint64, customer int) ([]byte, int) {
	// Reseeding per request (cheap: it only sets the state) is what makes
	// request n independent of the order requests are built in. The
	// sequence number is mixed so neighbouring requests do not start from
	// neighbouring states.
	s.pcg.Seed(mix64(s.g.seed), mix64(n^0x9e3779b97f4a7c15))
	t := s.g.t
	vi := pick(s.g.viewCum, s.rng.Float64())
	v := &t.Views[vi]
	dst = append(dst, `{"customer_id":"`...)
	if customer > 0 {
		dst = appendCustomerID(dst, customer)
	} else if t.Anonymous > 0 && s.rng.Float64() < t.Anonymous {
		dst = append(dst, "visitor-"...)
		dst = strconv.AppendUint(dst, 1+s.rng.Uint64N(anonymousSpace), 10)
	} else {
		dst = appendCustomerID(dst, int(s.zipf.Uint64())+1)
	}
	dst = append(dst, `","placements":`...)
	dst = append(dst, v.placements...)
	if len(v.fields) > 0 {
		dst = append(dst, `,"context":{`...)
		for i := range v.fields {
			f := &v.fields[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			c := 0
			if f.cum != nil {
				c = pick(f.cum, s.rng.Float64())
			}
			dst = append(dst, f.choices[c]...)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), vi
}

// appendCustomerID writes c-%06d: six digits zero-padded, wider past
// 999,999, as the demo data generator names customers.
func appendCustomerID(dst []byte, n int) []byte {
	dst = append(dst, 'c', '-')
	for w := 100000; w > 1 && n < w; w /= 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(n), 10)
}

// pick returns the index whose cumulative weight first exceeds u×total.
func pick(cum []float64, u float64) int {
	x := u * cum[len(cum)-1]
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

// mix64 is SplitMix64's finalizer: a cheap bijective scramble.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
