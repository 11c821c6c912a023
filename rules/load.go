package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/features"
	"github.com/touchpoint-dev/touchpoint/models"
)

// MaxFileBytes is the largest rule or schema file Load reads. Rule files
// are written by hand; a file past this size is a mistake or an attack,
// and reading it whole would cost its size in memory.
const MaxFileBytes = 1 << 20

// Load reads every *.yaml and *.yml file under dir (recursively, in path
// order) and the schema at schemaPath, and compiles them into a Ruleset. Any
// problem makes it fail with an ErrorList; nothing is half-loaded.
//
// The ruleset's Version is a hash of what was loaded, not of where it was
// found: each file's name relative to dir (with / as separator) and bytes,
// and the schema's bytes. The same rules give the same version on every
// node, wherever they are installed and however the path is written.
func Load(dir, schemaPath string) (*Ruleset, error) {
	return LoadDraft(dir, schemaPath, nil)
}

// LoadDraft is Load with some rule files replaced or added: drafts maps a
// path relative to dir ('/'-separated, as DraftPath accepts) to the
// file's new bytes. Nothing is written; the files on disk stay as they
// are. Errors name a draft file by the path it would have under dir.
func LoadDraft(dir, schemaPath string, drafts map[string][]byte) (*Ruleset, error) {
	var tooLarge ErrorList
	schemaData, err := readFile(schemaPath, &tooLarge)
	if err != nil {
		return nil, fmt.Errorf("cannot read feature schema: %w", err)
	}
	paths, err := ruleFiles(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(paths)+len(drafts))
	for rel, data := range drafts {
		if err := DraftPath(rel); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if len(data) > MaxFileBytes {
			tooLarge = append(tooLarge, &Error{File: p, Line: 1, Col: 1,
				Message: fmt.Sprintf("the file is larger than %d bytes (1 MiB), the most a rule file may be; split it", MaxFileBytes)})
			data = nil
		}
		if _, ok := files[p]; !ok && !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
		files[p] = data
	}
	sort.Strings(paths)
	for _, p := range paths {
		if _, ok := files[p]; ok {
			continue
		}
		data, err := readFile(p, &tooLarge)
		if err != nil {
			return nil, fmt.Errorf("cannot read rule file: %w", err)
		}
		files[p] = data
	}
	if len(tooLarge) > 0 {
		return nil, tooLarge
	}
	schema, err := ParseSchema(schemaPath, schemaData)
	if err != nil {
		return nil, err
	}
	rs, err := compile(schema, paths, files, modelReaderIn(dir))
	if err != nil {
		return nil, err
	}
	rs.Dir = dir
	h := sha256.New()
	fmt.Fprintf(h, "schema\x00%d\x00", len(schemaData))
	h.Write(schemaData)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil, fmt.Errorf("cannot name rule file %s within %s: %w", p, dir, err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", filepath.ToSlash(rel), len(files[p]))
		h.Write(files[p])
	}
	modelPaths := make([]string, 0, len(rs.modelFiles))
	for p := range rs.modelFiles {
		modelPaths = append(modelPaths, p)
	}
	sort.Strings(modelPaths)
	for _, p := range modelPaths {
		fmt.Fprintf(h, "\x00model\x00%s\x00%d\x00", p, len(rs.modelFiles[p]))
		h.Write(rs.modelFiles[p])
	}
	rs.Version = hex.EncodeToString(h.Sum(nil))[:12]
	return rs, nil
}

// readFile reads a rule or schema file of at most MaxFileBytes; a larger
// one is added to tooLarge (unread past the limit) and returns no data.
func readFile(path string, tooLarge *ErrorList) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		*tooLarge = append(*tooLarge, &Error{File: path, Line: 1, Col: 1,
			Message: fmt.Sprintf("the file is larger than %d bytes (1 MiB), the most a rule or schema file may be; split it", MaxFileBytes)})
		return nil, nil
	}
	return data, nil
}

// DraftPath reports whether rel may name a draft rule file: a relative,
// '/'-separated path inside the rules directory that Load would read, so
// so that a draft can neither reach outside the directory nor add a file
// that Load would skip.
func DraftPath(rel string) error {
	bad := func(why string) error { return fmt.Errorf("draft file %q %s", rel, why) }
	switch {
	case rel == "" || len(rel) > 255:
		return bad("must be a path of 1 to 255 bytes")
	case strings.ContainsAny(rel, "\\\x00:"):
		return bad("must use / between folders and hold no \\, : or NUL")
	case path.IsAbs(rel) || path.Clean(rel) != rel:
		return bad("must be a clean relative path, such as cart.yaml or campaigns/winter.yaml")
	case path.Ext(rel) != ".yaml" && path.Ext(rel) != ".yml":
		return bad("must end in .yaml or .yml")
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." || strings.HasPrefix(part, ".") {
			return bad("must not name a hidden file or folder or go up with ..")
		}
	}
	return nil
}

func ruleFiles(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("cannot read rules directory: %s is not a directory", dir)
	}
	var paths []string
	if err := walkRuleFiles(dir, 0, &paths); err != nil {
		return nil, fmt.Errorf("cannot read rules directory: %w", err)
	}
	sort.Strings(paths)
	return paths, nil
}

// maxSymlinkedDirs bounds how many symbolic links to directories one walk
// follows inside another, so a link to an enclosing folder ends the walk.
const maxSymlinkedDirs = 8

// walkRuleFiles adds the rule files under root to paths. Hidden files and folders are skipped (editor swap files;
// the timestamped folder of a Kubernetes ConfigMap volume, whose files
// are reached through the links beside it). Links to folders are followed:
// a ConfigMap volume presents each of its folders as one.
func walkRuleFiles(root string, links int, paths *[]string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if info, err := os.Stat(p); err == nil && info.IsDir() {
				if links >= maxSymlinkedDirs {
					return fmt.Errorf("%s: more than %d links to folders inside one another", p, maxSymlinkedDirs)
				}
				// The trailing separator makes WalkDir start inside the
				// link's folder rather than at the link.
				return walkRuleFiles(p+string(filepath.Separator), links+1, paths)
			}
		}
		if ext := filepath.Ext(name); ext == ".yaml" || ext == ".yml" {
			*paths = append(*paths, p)
		}
		return nil
	})
}

// item is a definition found in some file, kept with its source for errors.
type item struct {
	r    *reader
	node *yaml.Node
	id   string
	idAt *yaml.Node
}

// modelReaderIn reads model files named relative to dir.
func modelReaderIn(dir string) modelFile {
	return func(rel string) ([]byte, error) {
		data, err := models.ReadBytes(filepath.Join(dir, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("no such file in the rules directory")
		}
		return data, err
	}
}

// Compile builds a Ruleset from file contents already read; paths gives the
// order and the names used in errors. Model files are looked up in files
// too, by their path relative to the rules directory (models/m.json).
func Compile(schema *Schema, paths []string, files map[string][]byte) (*Ruleset, error) {
	return compile(schema, paths, files, func(rel string) ([]byte, error) {
		data, ok := files[rel]
		if !ok {
			return nil, errors.New("no such file")
		}
		return data, nil
	})
}

func compile(schema *Schema, paths []string, files map[string][]byte, readModel modelFile) (*Ruleset, error) {
	var errs ErrorList
	rs := &Ruleset{
		Files:           paths,
		sources:         files,
		Schema:          schema,
		LoadedAt:        time.Now(),
		placementIndex:  map[string]int{},
		touchpointIndex: map[string]int{},
		modelFiles:      map[string][]byte{},
	}
	segments := map[string]*segmentDef{}
	var placements, touchpoints, ruleItems, modelItems, experimentItems, triggerItems, deliveryItems []item
	policySeen := false
	seen := map[string]map[string]*Error{"placement": {}, "touchpoint": {}, "rule": {}, "model": {}, "experiment": {}, "trigger": {}, "delivery": {}}

	collect := func(r *reader, n *yaml.Node, kind string, into *[]item) {
		for _, el := range r.sequence(n, kind+"s") {
			if el.Kind != yaml.MappingNode {
				r.errf(el, "each %s must be a mapping with an id", kind)
				continue
			}
			it := item{r: r, node: el}
			for i := 0; i+1 < len(el.Content); i += 2 {
				if el.Content[i].Value == "id" {
					it.idAt = el.Content[i+1]
					it.id, _ = r.nonEmptyStr(it.idAt, kind+" id")
				}
			}
			if it.idAt == nil {
				r.errf(el, "%s has no id", kind)
				continue
			}
			if it.id == "" {
				continue
			}
			if first, dup := seen[kind][it.id]; dup {
				r.errf(it.idAt, "duplicate %s id %q (first defined at %s:%d:%d)", kind, it.id, first.File, first.Line, first.Col)
				continue
			}
			seen[kind][it.id] = r.src.errorAt(it.idAt.Line, it.idAt.Column, "")
			*into = append(*into, it)
		}
	}

	parsed := parseFiles(paths, files)
	for i := range paths {
		src, root := parsed[i].src, parsed[i].root
		errs = append(errs, parsed[i].errs...)
		r := &reader{src: src, errs: &errs}
		if root == nil {
			continue
		}
		r.mapping(root, "a rule file", fileKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "policy":
				r.policy(v, &rs.Policy, schema, &policySeen)
			case "placements":
				collect(r, v, "placement", &placements)
			case "touchpoints":
				collect(r, v, "touchpoint", &touchpoints)
			case "rules":
				collect(r, v, "rule", &ruleItems)
			case "models":
				collect(r, v, "model", &modelItems)
			case "experiments":
				collect(r, v, "experiment", &experimentItems)
			case "triggers":
				collect(r, v, "trigger", &triggerItems)
			case "deliveries":
				collect(r, v, "delivery", &deliveryItems)
			case "segments":
				r.mapping(v, "segments", nil, func(name string, k, sv *yaml.Node) {
					if prev, dup := segments[name]; dup {
						r.errf(k, "duplicate segment %q (first defined at %s:%d:%d)", name, prev.src.path, prev.node.Line, prev.node.Column)
						return
					}
					if !isIdentifier(name) {
						r.errf(k, "segment name %q must start with a letter and use only letters, digits and _", name)
						return
					}
					segments[name] = &segmentDef{name: name, source: sv.Value, node: sv, src: src}
				})
			}
		})
	}

	// The expression environment has a field per touchpoint attribute and
	// per model, so both are known before any expression compiles.
	ids := modelIDs(modelItems, &errs)
	experimentIDs := make([]string, len(experimentItems))
	for i, it := range experimentItems {
		experimentIDs[i] = it.id
	}
	rs.layout = newRulesetLayout(schema, attributeRegistry(touchpoints, &errs), ids, experimentIDs)
	comp := newExprCompiler(schema, rs.layout)
	comp.segments, comp.modelIDs, comp.experimentIDs = segments, ids, experimentIDs

	// Segments are checked on their own so that a broken segment is
	// reported once, at its definition.
	names := comp.segmentNames()
	sort.Strings(names)
	for _, name := range names {
		def := comp.segments[name]
		r := &reader{src: def.src, errs: &errs}
		def.valid = comp.compile(r, def.node, exprBool, "segment "+name, 0) != nil
		def.checked = true
	}

	// Models come first: touchpoints, placements and rules name them.
	reading := &recordingReader{read: readModel, files: rs.modelFiles}
	for _, it := range modelItems {
		rs.Models = append(rs.Models, it.r.model(it, rs, comp, reading.Read))
	}
	rs.layout.models = rs.Models
	rs.layout.perCandidate = make([]int, len(rs.Models))
	for i := range rs.Models {
		rs.layout.perCandidate[i] = -1
		if rs.Models[i].PerCandidate {
			rs.layout.perCandidate[i] = rs.layout.perCandidates
			rs.layout.perCandidates++
			rs.layout.perCandidateModels = append(rs.layout.perCandidateModels, i)
		}
	}
	for _, it := range touchpoints {
		tp := it.r.touchpoint(it, rs, comp)
		rs.touchpointIndex[tp.ID] = len(rs.Touchpoints)
		rs.Touchpoints = append(rs.Touchpoints, tp)
	}
	for _, it := range placements {
		pl := it.r.placement(it, rs, comp)
		rs.placementIndex[pl.ID] = len(rs.Placements)
		rs.Placements = append(rs.Placements, pl)
	}
	for _, it := range touchpoints {
		tp := &rs.Touchpoints[rs.touchpointIndex[it.id]]
		it.r.checkTouchpointRefs(it, tp, rs)
	}
	traffic := make([]float64, len(experimentItems))
	for i, it := range experimentItems {
		var x Experiment
		x, traffic[i] = it.r.experiment(it, rs, comp)
		rs.Experiments = append(rs.Experiments, x)
	}
	if len(errs) == 0 && len(rs.Experiments) > 0 {
		prepareExperiments(rs, traffic, experimentItems, &errs)
	}
	for i, it := range modelItems {
		if m := &rs.Models[i]; m.testsNode != nil {
			m.Tests = it.r.fixtures(m.testsNode, rs, fixtureOwner{model: m.ID})
		}
	}
	rs.Rules = compileRules(ruleItems, rs, comp, &errs)
	for _, it := range deliveryItems {
		rs.Deliveries = append(rs.Deliveries, it.r.delivery(it))
	}
	for _, it := range triggerItems {
		rs.Triggers = append(rs.Triggers, it.r.trigger(it, rs, comp))
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	index(rs)
	rs.Warnings = lint(rs, placements)
	rs.termCompiler = newTermCompiler(comp)
	return rs, nil
}

// index precomputes what lets the engine skip work per request: which
// placements each touchpoint and rule can fill, the channels a rule can
// reach, and the guards on its condition.
func index(rs *Ruleset) {
	rs.channelIndex = map[string]int{}
	addChannel := func(c string) {
		if _, ok := rs.channelIndex[c]; !ok && len(rs.channelIndex) < 63 {
			rs.channelIndex[c] = len(rs.channelIndex)
		}
	}
	if f := rs.Schema.ContextField("channel"); f >= 0 {
		for _, c := range rs.Schema.Context[f].Values {
			addChannel(c)
		}
	}
	for ti := range rs.Touchpoints {
		for _, c := range rs.Touchpoints[ti].Channels {
			addChannel(c)
		}
	}
	for ti := range rs.Touchpoints {
		t := &rs.Touchpoints[ti]
		t.channelMask = ^uint64(0)
		if len(t.Channels) > 0 {
			t.channelMask = 0
			for _, c := range t.Channels {
				// Channels past the 63rd share the last bit: a superset,
				// so channel checks stay correct, only less selective.
				t.channelMask |= rs.ChannelBit(c)
			}
		}
		for pi, p := range rs.Placements {
			if t.FitsPlacement(p.ID) && pi < 64 {
				t.placementMask |= 1 << uint(pi)
			}
		}
		if len(rs.Placements) > 64 {
			t.placementMask = ^uint64(0)
		}
	}
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		r.Guards = guardsOf(r.When, rs.Schema)
		for _, p := range []*vm.Program{r.When, r.Score} {
			if p != nil {
				r.Loops = max(r.Loops, loopDepth(p.Node()))
			}
		}
		ids := rs.modelIDs()
		r.WhenNative = nativeBool(r.When, rs.Schema, rs.layout, ids...)
		r.ScoreNative = nativeNumber(r.Score, rs.Schema, rs.layout, ids...)
		anyChannel := false
		var channels []string
		for _, ti := range r.Offer {
			t := &rs.Touchpoints[ti]
			r.PlacementMask |= t.placementMask
			r.channelMask |= t.channelMask
			if len(t.Channels) == 0 {
				anyChannel = true
			}
			for _, c := range t.Channels {
				if !contains(channels, c) {
					channels = append(channels, c)
				}
			}
		}
		if !anyChannel {
			r.Channels = channels
		}
	}
	buildIndex(rs)
	counts := func(c *Cap) bool { return c != nil && c.Event == features.EventDecision }
	for i := range rs.Touchpoints {
		rs.CountsDecisions = rs.CountsDecisions || counts(rs.Touchpoints[i].Cap)
	}
	for i := range rs.Rules {
		rs.CountsDecisions = rs.CountsDecisions || counts(rs.Rules[i].Cap)
	}
	for i := range rs.Policy.Caps {
		rs.CountsDecisions = rs.CountsDecisions || counts(&rs.Policy.Caps[i])
	}
}

type parsedFile struct {
	src  *source
	root *yaml.Node
	errs ErrorList
}

// parseFiles parses the rule files on every core; YAML parsing is a large
// part of loading a big ruleset and the files are independent.
func parseFiles(paths []string, files map[string][]byte) []parsedFile {
	out := make([]parsedFile, len(paths))
	parallel(len(paths), func(_, i int) {
		p := paths[i]
		out[i].src = newSource(p, files[p])
		out[i].root = parseYAML(out[i].src, files[p], &out[i].errs)
	})
	return out
}

// parallel runs fn(worker, i) for i in 0 … n-1 on up to GOMAXPROCS
// goroutines, worker numbering the goroutine, and waits. A panic in fn
// stops the remaining work and is raised again on the caller's goroutine
// (as a *WorkerPanic carrying the worker's stack): a panic on a worker
// goroutine would end the process, out of reach of the caller's recover.
func parallel(n int, fn func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[WorkerPanic]
	for w := min(runtime.GOMAXPROCS(0), n) - 1; w >= 0; w-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					failed.CompareAndSwap(nil, &WorkerPanic{Value: v, Stack: debug.Stack()})
					next.Store(int64(n)) // the others stop at their next item
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		panic(p)
	}
}

// WorkerPanic is a panic raised while compiling on a worker goroutine,
// raised again on the goroutine that called Load or Compile.
type WorkerPanic struct {
	Value any
	Stack []byte // the worker's stack where it panicked
}

func (p *WorkerPanic) Error() string { return fmt.Sprintf("panic while compiling rules: %v", p.Value) }

// compileRules compiles rules on every core: type-checking and compiling
// expressions is most of a large ruleset's load time, and rules are
// independent once touchpoints and segments are known. Each rule collects
// its own errors, merged in rule order afterwards.
func compileRules(items []item, rs *Ruleset, comp *exprCompiler, errs *ErrorList) []Rule {
	out := make([]Rule, len(items))
	perRule := make([]ErrorList, len(items))
	parallel(len(items), func(worker, i int) {
		it := items[i]
		r := &reader{src: it.r.src, errs: &perRule[i]}
		out[i] = r.rule(it, rs, comp, worker)
	})
	for _, e := range perRule {
		*errs = append(*errs, e...)
	}
	return out
}

func (r *reader) touchpoint(it item, rs *Ruleset, comp *exprCompiler) Touchpoint {
	schema := rs.Schema
	tp := Touchpoint{ID: it.id, Value: 1, Lever: 1, Propensity: -1, File: r.src.path, Line: it.node.Line, Col: it.node.Column, Content: emptyContent, KindIndex: -1}
	what := "touchpoint " + it.id
	keys := touchpointKeys
	hasKind := false
	var valueNode *yaml.Node
	r.mapping(it.node, what, keys, func(key string, _, v *yaml.Node) {
		switch key {
		case "kind":
			hasKind = true
			tp.Kind, _ = r.str(v, what+".kind")
			tp.KindIndex = kindIndex(tp.Kind)
			if tp.Kind != "" && tp.KindIndex < 0 {
				r.errf(v, "%s: unknown kind %q%s (use offer, coupon, message or content)", what, tp.Kind, suggest(tp.Kind, KindNames()))
			}
		case "description":
			tp.Description, _ = r.str(v, what+".description")
		case "channels":
			tp.Channels, _ = r.strList(v, what+".channels")
		case "placements":
			tp.Placements, _ = r.strList(v, what+".placements")
		case "value":
			valueNode = v
		case "content":
			if c := r.compileContent(v, schema, what+".content"); c != nil {
				tp.Content = c
			}
		case "cap":
			tp.Cap = r.cap(v, what+".cap", "tp:"+it.id, nil, nil)
		case "budget":
			tp.Budget = r.budget(v, what+".budget")
		case "attributes":
			r.attributes(v, &tp, comp.layout)
		case "propensity":
			tp.Propensity = r.modelRef(v, rs, what+".propensity")
		case "lever":
			tp.Lever = r.lever(v, what+".lever")
		}
	})
	if valueNode != nil {
		// A number is the value; anything else is an expression, so that
		// a coupon's value can follow the cart.
		if valueNode.Kind == yaml.ScalarNode && (valueNode.Tag == "!!int" || valueNode.Tag == "!!float") {
			tp.Value, _ = r.number(valueNode, what+".value")
			if tp.Value < 0 {
				r.errf(valueNode, "%s: value must not be negative", what)
			}
		} else if prog := comp.compile(r, valueNode, exprNumber, what+".value", 0); prog != nil {
			tp.ValueExpr = prog
			tp.ValueModels = modelsRead(prog.Node(), comp.modelIDs)
			tp.ValueNative = nativeNumber(prog, schema, comp.layout, comp.modelIDs...)
		}
	}
	if !hasKind {
		r.errf(it.idAt, "%s needs a kind (offer, coupon, message or content)", what)
	}
	return tp
}

// modelRef resolves a model id written in a rule file, or reports it.
func (r *reader) modelRef(v *yaml.Node, rs *Ruleset, what string) int {
	id, ok := r.nonEmptyStr(v, what)
	if !ok {
		return -1
	}
	i := rs.Model(id)
	if i < 0 {
		ids := make([]string, len(rs.Models))
		for k := range rs.Models {
			ids[k] = rs.Models[k].ID
		}
		r.errf(v, "%s names unknown model %q%s", what, id, suggest(id, ids))
	}
	return i
}

func (r *reader) lever(v *yaml.Node, what string) float64 {
	f, ok := r.number(v, what)
	if ok && f < 0 {
		r.errf(v, "%s must not be negative", what)
	}
	if !ok {
		return 1
	}
	return f
}

// checkTouchpointRefs runs once placements are known.
func (r *reader) checkTouchpointRefs(it item, tp *Touchpoint, rs *Ruleset) {
	what := "touchpoint " + tp.ID
	for i := 0; i+1 < len(it.node.Content); i += 2 {
		key, v := it.node.Content[i].Value, it.node.Content[i+1]
		switch key {
		case "placements":
			for j, p := range tp.Placements {
				if rs.Placement(p) < 0 && j < len(v.Content) {
					r.errf(v.Content[j], "%s: unknown placement %q%s", what, p, suggest(p, placementIDs(rs)))
				}
			}
		case "channels":
			f := rs.Schema.ContextField("channel")
			if f < 0 {
				continue
			}
			allowed := rs.Schema.Context[f].Values
			for j, c := range tp.Channels {
				if len(allowed) > 0 && !contains(allowed, c) && j < len(v.Content) {
					r.errf(v.Content[j], "%s: unknown channel %q%s (the schema allows %s)", what, c, suggest(c, allowed), strings.Join(allowed, ", "))
				}
			}
		}
	}
}

func placementIDs(rs *Ruleset) []string {
	out := make([]string, len(rs.Placements))
	for i, p := range rs.Placements {
		out[i] = p.ID
	}
	return out
}

func touchpointIDs(rs *Ruleset) []string {
	out := make([]string, len(rs.Touchpoints))
	for i, t := range rs.Touchpoints {
		out[i] = t.ID
	}
	return out
}

func (r *reader) placement(it item, rs *Ruleset, comp *exprCompiler) Placement {
	pl := Placement{ID: it.id, Count: 1, Fallback: -1}
	what := "placement " + it.id
	maxSet := false
	var countNode *yaml.Node
	r.mapping(it.node, what, placementKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "arbitration":
			if modeIs(v, "thompson") {
				pl.Bandit = r.bandit(v, what+".arbitration", rs.Schema)
				return
			}
			r.mapping(v, what+".arbitration", arbitrationKeys, func(key string, _, sv *yaml.Node) {
				if key == "mode" {
					if m, _ := r.str(sv, what+".arbitration.mode"); m != "score" {
						r.errf(sv, "%s.arbitration.mode must be score (the default) or thompson, got %q", what, m)
					}
					return
				}
				prog := comp.compileScoped(r, sv, exprNumber, what+".arbitration.score", 0, scopePlacement)
				if prog == nil {
					return
				}
				pl.Arbitration, pl.ArbitrationSource = prog, sv.Value
				pl.ArbitrationNative = nativeNumber(prog, rs.Schema, comp.layout, comp.modelIDs...)
				pl.ArbitrationModels = modelsRead(prog.Node(), comp.modelIDs)
			})
		case "description":
			pl.Description, _ = r.str(v, what+".description")
		case "count":
			countNode = v
			pl.Count, _ = r.integer(v, what+".count")
		case "max_count":
			maxSet = true
			pl.MaxCount, _ = r.integer(v, what+".max_count")
		case "fallback":
			id, ok := r.nonEmptyStr(v, what+".fallback")
			if !ok {
				return
			}
			pl.Fallback = rs.Touchpoint(id)
			if pl.Fallback < 0 {
				r.errf(v, "%s: fallback names unknown touchpoint %q%s", what, id, suggest(id, touchpointIDs(rs)))
				return
			}
			if tp := &rs.Touchpoints[pl.Fallback]; !tp.FitsPlacement(pl.ID) {
				r.errf(v, "%s: fallback %q does not list this placement in its placements", what, id)
			}
		}
	})
	if pl.Count < 1 && countNode != nil {
		r.errf(countNode, "%s: count must be at least 1", what)
	}
	if !maxSet {
		pl.MaxCount = pl.Count
	} else if pl.MaxCount < pl.Count {
		r.errf(it.node, "%s: max_count (%d) must be at least count (%d)", what, pl.MaxCount, pl.Count)
	}
	return pl
}

func (r *reader) rule(it item, rs *Ruleset, comp *exprCompiler, worker int) Rule {
	rule := Rule{ID: it.id, File: r.src.path, Line: it.node.Line, Col: it.node.Column, Propensity: -1, Lever: 1}
	what := "rule " + it.id
	keys := ruleKeys
	var whenNode, offerNode, suppressNode, testsNode *yaml.Node
	r.mapping(it.node, what, keys, func(key string, _, v *yaml.Node) {
		switch key {
		case "description":
			rule.Description, _ = r.str(v, what+".description")
		case "when":
			whenNode = v
			rule.When = comp.compile(r, v, exprBool, what+".when", worker)
			rule.WhenSource = v.Value
		case "score":
			rule.Score = comp.compile(r, v, exprNumber, what+".score", worker)
		case "priority":
			rule.Priority, _ = r.integer(v, what+".priority")
		case "offer":
			offerNode = v
		case "suppress":
			suppressNode = v
		case "active":
			rule.Active = r.schedule(v, what+".active")
		case "cap":
			rule.Cap = r.cap(v, what+".cap", "rule:"+it.id, nil, nil)
		case "tests":
			testsNode = v
		case "propensity":
			rule.Propensity = r.modelRef(v, rs, what+".propensity")
		case "lever":
			rule.Lever = r.lever(v, what+".lever")
		}
	})
	for _, p := range []*vm.Program{rule.When, rule.Score} {
		if p == nil {
			continue
		}
		for _, m := range modelsRead(p.Node(), comp.modelIDs) {
			if !containsInt(rule.Models, m) {
				rule.Models = append(rule.Models, m)
			}
			rule.PerCandidate = rule.PerCandidate || rs.Models[m].PerCandidate
		}
		rule.PerCandidate = rule.PerCandidate || readsName(p.Node(), touchpointIdent)
		for _, x := range namedReads(p.Node(), variantsIdent, comp.experimentIDs) {
			if !containsInt(rule.Experiments, x) {
				rule.Experiments = append(rule.Experiments, x)
			}
		}
	}
	if whenNode == nil {
		r.errf(it.idAt, "%s needs a when condition", what)
	}
	switch {
	case offerNode != nil && suppressNode != nil:
		r.errf(suppressNode, "%s has both offer and suppress; a rule does one or the other", what)
	case offerNode == nil && suppressNode == nil:
		r.errf(it.idAt, "%s needs offer (touchpoints to offer) or suppress (touchpoints to hold back)", what)
	case offerNode != nil:
		ids, _ := r.strList(offerNode, what+".offer")
		rule.Offer = make([]int, 0, len(ids))
		for j, id := range ids {
			tp := rs.Touchpoint(id)
			if tp < 0 {
				r.errf(offerNode.Content[j], "%s offers unknown touchpoint %q%s", what, id, suggest(id, touchpointIDs(rs)))
				continue
			}
			rule.Offer = append(rule.Offer, tp)
		}
		if len(ids) == 0 {
			r.errf(offerNode, "%s.offer lists no touchpoints", what)
		}
	default:
		r.suppressList(suppressNode, rs, &rule, what)
	}
	if testsNode != nil {
		rule.Tests = r.fixtures(testsNode, rs, fixtureOwner{rule: rule.ID})
	}
	if rule.IsSuppress() && (rule.Propensity >= 0 || rule.Lever != 1) {
		r.errf(it.idAt, "%s suppresses; propensity and lever weigh what a rule offers", what)
	}
	return rule
}

func (r *reader) history(n *yaml.Node, rs *Ruleset, what string) []HistoryEntry {
	var out []HistoryEntry
	for i, el := range r.sequence(n, what) {
		w := fmt.Sprintf("%s[%d]", what, i)
		h := HistoryEntry{Event: features.EventImpression, Count: 1}
		r.mapping(el, w, historyKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "touchpoint":
				h.Touchpoint, _ = r.nonEmptyStr(v, w+".touchpoint")
				if h.Touchpoint != "" && rs.Touchpoint(h.Touchpoint) < 0 {
					r.errf(v, "%s: unknown touchpoint %q%s", w, h.Touchpoint, suggest(h.Touchpoint, touchpointIDs(rs)))
				}
			case "event":
				h.Event, _ = r.nonEmptyStr(v, w+".event")
				if !contains([]string{features.EventImpression, features.EventClick, features.EventConversion, features.EventDismiss, features.EventDecision}, h.Event) {
					r.errf(v, "%s.event must be impression, click, conversion, dismiss or decision, got %q", w, h.Event)
				}
			case "count":
				c, _ := r.integer(v, w+".count")
				h.Count = int64(c)
			case "days_ago":
				h.DaysAgo, _ = r.integer(v, w+".days_ago")
			case "channel":
				h.Channel, _ = r.nonEmptyStr(v, w+".channel")
				r.checkChannel(v, rs.Schema, h.Channel, w)
			case "rule":
				h.Rule, _ = r.nonEmptyStr(v, w+".rule")
			}
		})
		if h.Touchpoint == "" {
			r.errf(el, "%s needs a touchpoint", w)
			continue
		}
		out = append(out, h)
	}
	return out
}

// suppressList resolves suppress patterns ("*", "kind:coupon", an id) once,
// at load, into the form the engine checks per candidate.
func (r *reader) suppressList(n *yaml.Node, rs *Ruleset, rule *Rule, what string) {
	patterns, _ := r.strList(n, what+".suppress")
	if len(patterns) == 0 {
		r.errf(n, "%s.suppress lists nothing; use \"*\", \"kind:<kind>\" or touchpoint ids", what)
	}
	for j, p := range patterns {
		at := n.Content[j]
		switch {
		case p == "*":
			rule.SuppressAll = true
		case strings.HasPrefix(p, "kind:"):
			kind := strings.TrimPrefix(p, "kind:")
			k := kindIndex(kind)
			if k < 0 {
				r.errf(at, "%s suppresses unknown kind %q%s (use offer, coupon, message or content)", what, kind, suggest(kind, KindNames()))
				continue
			}
			rule.SuppressKinds |= 1 << uint(k)
		default:
			i := rs.Touchpoint(p)
			if i < 0 {
				r.errf(at, "%s suppresses unknown touchpoint %q%s", what, p, suggest(p, touchpointIDs(rs)))
				continue
			}
			if !containsInt(rule.SuppressIDs, i) {
				rule.SuppressIDs = append(rule.SuppressIDs, i)
			}
		}
	}
}

// kindIndex is the named kind as an int, or -1 for a name that is not a kind.
func kindIndex(kind string) int {
	if k, ok := ParseKind(kind); ok {
		return int(k)
	}
	return -1
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// fixtureOwner is what a list of fixtures is written under: a rule, or a
// model (whose fixtures all check that model).
type fixtureOwner struct {
	rule  string
	model string
}

func (o fixtureOwner) String() string {
	if o.rule != "" {
		return "rule " + o.rule
	}
	return "model " + o.model
}

// fixtureCustomer reads a fixture's customer: features by name.
func (r *reader) fixtureCustomer(v *yaml.Node, rs *Ruleset, what string) *features.Record {
	values := map[string]features.Value{}
	r.mapping(v, what+".customer", nil, func(name string, k, fv *yaml.Node) {
		idx := rs.Schema.CustomerField(name)
		if idx < 0 {
			r.errf(k, "%s: unknown feature customer.%s%s", what, name, suggest(name, fieldNames(rs.Schema.Customer)))
			return
		}
		field := rs.Schema.Customer[idx]
		if val, ok := r.value(fv, field.Type, what+".customer."+name); ok {
			values[name] = val
		}
	})
	return &features.Record{ID: "fixture", Values: features.NewValues(values)}
}

func (r *reader) fixtures(n *yaml.Node, rs *Ruleset, owner fixtureOwner) []Fixture {
	var out []Fixture
	for i, el := range r.sequence(n, owner.String()+".tests") {
		what := fmt.Sprintf("%s.tests[%d]", owner, i)
		f := Fixture{Rule: owner.rule, Model: owner.model, File: r.src.path, Line: el.Line, Col: el.Column, Expect: map[string][]string{}, Tolerance: 1e-6}
		var expectNode, scoreNode, modelNode, touchpointNode *yaml.Node
		counts := map[string]int{}
		keys := fixtureKeys
		if owner.rule == "" {
			keys = modelFixtureKeys
		}
		// Whether this is a test of a model's output decides how the rest
		// reads, so its keys come first; unknown and duplicate keys are
		// reported once, by the mapping below.
		for c := 0; el.Kind == yaml.MappingNode && c+1 < len(el.Content); c += 2 {
			key, v := el.Content[c].Value, el.Content[c+1]
			if !contains(keys, key) {
				continue
			}
			switch key {
			case "model":
				modelNode = v
				if m := r.modelRef(v, rs, what+".model"); m >= 0 {
					f.Model = rs.Models[m].ID
				}
			case "touchpoint":
				touchpointNode = v
				f.Touchpoint, _ = r.nonEmptyStr(v, what+".touchpoint")
				if f.Touchpoint != "" && rs.Touchpoint(f.Touchpoint) < 0 {
					r.errf(v, "%s: unknown touchpoint %q%s", what, f.Touchpoint, suggest(f.Touchpoint, touchpointIDs(rs)))
				}
			case "expect_score":
				scoreNode = v
				f.ExpectScore, _ = r.number(v, what+".expect_score")
			case "tolerance":
				f.Tolerance, _ = r.number(v, what+".tolerance")
				if f.Tolerance < 0 {
					r.errf(v, "%s.tolerance must not be negative", what)
				}
			}
		}
		if f.Model != "" || modelNode != nil || scoreNode != nil {
			if f.Name == "" {
				f.Name = fmt.Sprintf("test %d", i+1)
			}
			switch {
			case owner.rule != "" && modelNode == nil:
				r.errf(el, "%s has expect_score but no model: name the model whose output it checks", what)
			case scoreNode == nil:
				r.errf(el, "%s needs expect_score: the model output it expects", what)
			}
			for _, k := range []string{"expect", "placements", "history", "consent", "variants"} {
				for c := 0; owner.rule != "" && c+1 < len(el.Content); c += 2 {
					if el.Content[c].Value == k {
						r.errf(el.Content[c], "%s checks a model's output; %s belongs to tests of a decision", what, k)
					}
				}
			}
		} else if touchpointNode != nil {
			r.errf(touchpointNode, "%s: touchpoint belongs to tests of a model's output (model: and expect_score:)", what)
		}
		r.mapping(el, what, keys, func(key string, _, v *yaml.Node) {
			switch key {
			case "history":
				f.History = r.history(v, rs, what+".history")
			case "variants":
				f.Variants = map[string]string{}
				r.mapping(v, what+".variants", nil, func(id string, k, vv *yaml.Node) {
					xi := rs.Experiment(id)
					if xi < 0 {
						r.errf(k, "%s: unknown experiment %q%s", what, id, suggest(id, rs.ExperimentIDs()))
						return
					}
					name, _ := r.nonEmptyStr(vv, what+".variants."+id)
					names := []string{"holdout", "none"}
					for _, v := range rs.Experiments[xi].Variants {
						names = append(names, v.Name)
					}
					if name != "" && !contains(names, name) {
						r.errf(vv, "%s: experiment %s has no variant %q%s (use %s)", what, id, name, suggest(name, names), strings.Join(names, ", "))
						return
					}
					f.Variants[id] = name
				})
			case "consent":
				f.Consent = map[string]bool{}
				r.mapping(v, what+".consent", nil, func(channel string, k, cv *yaml.Node) {
					r.checkChannel(k, rs.Schema, channel, what+".consent")
					f.Consent[channel], _ = r.boolean(cv, what+".consent."+channel)
				})
			case "name":
				f.Name, _ = r.nonEmptyStr(v, what+".name")
			case "customer":
				f.Customer = r.fixtureCustomer(v, rs, what)
			case "context":
				r.mapping(v, what+".context", nil, func(name string, k, fv *yaml.Node) {
					idx := rs.Schema.ContextField(name)
					if idx < 0 {
						r.errf(k, "%s: unknown context field %s%s", what, name, suggest(name, fieldNames(rs.Schema.Context)))
						return
					}
					field := rs.Schema.Context[idx]
					val, ok := r.value(fv, field.Type, what+".context."+name)
					if ok && !field.Allows(val) {
						r.errf(fv, "%s: context.%s must be one of %s, got %q", what, name, strings.Join(field.Values, ", "), val.Str)
						return
					}
					f.Context = append(f.Context, NamedValue{Name: name, Value: val})
				})
			case "now":
				f.Now, _ = r.timestamp(v, what+".now")
			case "placements":
				r.mapping(v, what+".placements", nil, func(id string, k, cv *yaml.Node) {
					pi := rs.Placement(id)
					if pi < 0 {
						r.errf(k, "%s: unknown placement %q%s", what, id, suggest(id, placementIDs(rs)))
						return
					}
					c, ok := r.integer(cv, what+".placements."+id)
					if ok && (c < 1 || c > rs.Placements[pi].MaxCount) {
						r.errf(cv, "%s: count for %s must be between 1 and %d", what, id, rs.Placements[pi].MaxCount)
						return
					}
					counts[id] = c
				})
			case "expect":
				expectNode = v
			}
		})
		if f.Name == "" {
			f.Name = fmt.Sprintf("test %d", i+1)
		}
		if f.Model != "" || modelNode != nil || scoreNode != nil {
			out = append(out, f)
			continue
		}
		if expectNode == nil {
			r.errf(el, "%s needs expect: the touchpoints each placement should show", what)
			continue
		}
		r.mapping(expectNode, what+".expect", nil, func(id string, k, ev *yaml.Node) {
			pi := rs.Placement(id)
			if pi < 0 {
				r.errf(k, "%s: unknown placement %q%s", what, id, suggest(id, placementIDs(rs)))
				return
			}
			ids, _ := r.strList(ev, what+".expect."+id)
			for j, tp := range ids {
				if rs.Touchpoint(tp) < 0 {
					r.errf(ev.Content[j], "%s expects unknown touchpoint %q%s", what, tp, suggest(tp, touchpointIDs(rs)))
				}
			}
			if ids == nil {
				ids = []string{}
			}
			f.Expect[id] = ids
			count := rs.Placements[pi].Count
			if c, ok := counts[id]; ok {
				count = c
			}
			f.Placements = append(f.Placements, PlacementCount{ID: id, Count: count})
		})
		for id := range counts {
			if _, ok := f.Expect[id]; !ok {
				r.errf(el, "%s: placements names %s but expect does not", what, id)
			}
		}
		out = append(out, f)
	}
	return out
}
