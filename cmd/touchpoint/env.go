package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/touchpoint-dev/touchpoint/decisionlog"
)

// envPrefix starts the name of every environment variable that sets a
// configuration key: TOUCHPOINT_ and the key's YAML path, upper-cased, with
// dots as underscores (server.addr is TOUCHPOINT_SERVER_ADDR).
const envPrefix = "TOUCHPOINT_"

// redisPasswordEnv is redis.password's variable, which the commands that
// take --redis read too.
const redisPasswordEnv = envPrefix + "REDIS_PASSWORD"

// envAliases are older names kept working: each sets the key it names, and
// giving it together with that key's own variable, with another value, is an
// error.
func envAliases() map[string]string {
	return map[string]string{"TOUCHPOINT_ADMIN_KEY": "server.admin_key"}
}

// Value types an environment variable may carry.
const (
	envString   = "string"
	envInt      = "int"
	envUint     = "uint"
	envFloat    = "float"
	envBool     = "bool"
	envDuration = "duration"
	envList     = "list"
	// envMap is a map of strings written name=value,name=value (the form
	// of OpenTelemetry's own OTEL_EXPORTER_OTLP_HEADERS).
	envMap = "map"
	// envFileOnly marks a key whose value is a map or a list of
	// structures: it has no environment variable and is set in the file.
	envFileOnly = "file only"
)

// envVar is one configuration key and the variable that sets it.
type envVar struct {
	Name  string // TOUCHPOINT_SERVER_ADDR
	Key   string // server.addr
	Type  string // one of the env* types
	index []int  // the field's index path in config
}

// envVars lists every configuration key in the order the structs declare
// them. Reflection runs at start only.
func envVars() []envVar {
	var out []envVar
	var walk func(t reflect.Type, key string, index []int)
	walk = func(t reflect.Type, key string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if !f.IsExported() || tag == "-" || tag == "" {
				continue
			}
			k := tag
			if key != "" {
				k = key + "." + tag
			}
			idx := append(append([]int(nil), index...), i)
			typ := envType(f.Type)
			if typ == "" {
				walk(f.Type, k, idx)
				continue
			}
			out = append(out, envVar{Name: envName(k), Key: k, Type: typ, index: idx})
		}
	}
	walk(reflect.TypeFor[config](), "", nil)
	return out
}

// envName is the variable for a YAML path.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envType is how a variable of type t is parsed; "" for a structure whose
// fields have variables of their own.
func envType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return envDuration
	}
	switch t.Kind() {
	case reflect.String:
		return envString
	case reflect.Bool:
		return envBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return envInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return envUint
	case reflect.Float32, reflect.Float64:
		return envFloat
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return envList
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
			return envMap
		}
	case reflect.Struct:
		return ""
	}
	return envFileOnly
}

// applyEnv sets every key whose variable lookup finds with a non-empty
// value. An empty variable counts as unset, so a deployment that passes
// through a variable nobody filled in keeps the file's value. Every bad
// value is reported, naming its variable.
func applyEnv(cfg *config, lookup func(string) (string, bool)) error {
	var errs []error
	root := reflect.ValueOf(cfg).Elem()
	byKey := map[string]envVar{}
	for _, v := range envVars() {
		byKey[v.Key] = v
		s, ok := lookup(v.Name)
		if !ok || s == "" {
			continue
		}
		if v.Type == envFileOnly {
			errs = append(errs, fmt.Errorf("%s: %s cannot be set from the environment; set it in the config file", v.Name, v.Key))
			continue
		}
		if err := setEnvValue(root.FieldByIndex(v.index), v.Type, s); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", v.Name, v.Key, err))
		}
	}
	aliasOf := envAliases()
	aliases := make([]string, 0, len(aliasOf))
	for a := range aliasOf {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, alias := range aliases {
		v := byKey[aliasOf[alias]]
		s, ok := lookup(alias)
		if !ok || s == "" {
			continue
		}
		if own, ok := lookup(v.Name); ok && own != "" && own != s {
			errs = append(errs, fmt.Errorf("%s and %s both set %s, to different values; give one", alias, v.Name, v.Key))
			continue
		}
		if err := setEnvValue(root.FieldByIndex(v.index), v.Type, s); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", alias, v.Key, err))
		}
	}
	return errors.Join(errs...)
}

// setEnvValue parses s as typ into dst. Messages quote the value only for
// types that cannot hold a secret.
func setEnvValue(dst reflect.Value, typ, s string) error {
	switch typ {
	case envString:
		dst.SetString(s)
	case envBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a bool (true or false)", s)
		}
		dst.SetBool(b)
	case envInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, dst.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer of %d bits", s, dst.Type().Bits())
		}
		dst.SetInt(n)
	case envUint:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, dst.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer of %d bits", s, dst.Type().Bits())
		}
		dst.SetUint(n)
	case envFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), dst.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a finite number", s)
		}
		dst.SetFloat(f)
	case envDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (such as 250ms, 5s or 1h30m)", s)
		}
		dst.SetInt(int64(d))
	case envList:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		dst.Set(reflect.ValueOf(items))
	case envMap:
		// The values may be credentials, so messages name the entry only.
		m := reflect.MakeMap(dst.Type())
		for i, item := range strings.Split(s, ",") {
			if strings.TrimSpace(item) == "" {
				continue
			}
			name, value, ok := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return fmt.Errorf("entry %d is not name=value (entries are separated by commas)", i+1)
			}
			m.SetMapIndex(reflect.ValueOf(name).Convert(dst.Type().Key()), reflect.ValueOf(strings.TrimSpace(value)).Convert(dst.Type().Elem()))
		}
		dst.Set(m)
	default:
		return fmt.Errorf("values of type %s cannot be set from the environment", typ)
	}
	return nil
}

// envLookup is os.LookupEnv; tests pass their own.
func envLookup(name string) (string, bool) { return os.LookupEnv(name) }

// otherEnvNames are TOUCHPOINT_ variables that are not configuration keys
// but are read elsewhere.
func otherEnvNames() []string {
	names := []string{decisionlog.KeyEnv}
	for a := range envAliases() {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

// unknownEnv returns the TOUCHPOINT_ variables in environ that set
// nothing: neither a configuration key nor a name in known. Serve logs
// them, since a mistyped variable is otherwise silently ignored.
func unknownEnv(environ []string, known map[string]bool) []string {
	keys := map[string]bool{}
	for _, v := range envVars() {
		keys[v.Name] = true
	}
	for _, n := range otherEnvNames() {
		keys[n] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !keys[name] && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// envDefault renders the built-in default of v for listings.
func envDefault(v envVar) string {
	f := reflect.ValueOf(defaultConfig()).FieldByIndex(v.index)
	switch v.Type {
	case envDuration:
		return shortDuration(time.Duration(f.Int()))
	case envList:
		return strings.Join(f.Interface().([]string), ",")
	case envMap:
		var pairs []string
		for it := f.MapRange(); it.Next(); {
			pairs = append(pairs, it.Key().String()+"="+it.Value().String())
		}
		sort.Strings(pairs)
		return strings.Join(pairs, ",")
	case envFileOnly:
		return ""
	}
	return fmt.Sprint(f.Interface())
}

// shortDuration writes 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// writeEnvTable writes the variables as the Markdown table in README.md
// (Configuration), which a test keeps equal to this output.
func writeEnvTable(w io.Writer) {
	fmt.Fprintln(w, "| variable | key | type | default |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, v := range envVars() {
		def := envDefault(v)
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(w, "| `%s` | `%s` | %s | %s |\n", v.Name, v.Key, v.Type, def)
	}
}

// configCommand is "touchpoint config env": every variable with its key,
// type and default.
func configCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "env" {
		if len(args) > 0 && isHelp(args[0]) {
			args = []string{"env", "--help"}
		} else {
			return errors.New(`unknown config command; use "touchpoint config env"`)
		}
	}
	fs := flag.NewFlagSet("config env", flag.ContinueOnError)
	fs.SetOutput(stderr)
	markdown := fs.Bool("markdown", false, "write a Markdown table (the one in README.md)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: touchpoint config env [--markdown]\n\nLists the environment variables that set configuration keys, with their\ntypes and built-in defaults. Flags override variables, variables override\nthe config file, and the file overrides the defaults. Lists are\ncomma-separated; an empty variable counts as unset.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config env takes no arguments, got %q", fs.Arg(0))
	}
	if *markdown {
		writeEnvTable(stdout)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tKEY\tTYPE\tDEFAULT")
	for _, v := range envVars() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Key, v.Type, envDefault(v))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nAlso read: %s (alias of TOUCHPOINT_SERVER_ADMIN_KEY), %s (decision log hashing key), and the webhook secrets the rules name (secret_env).\n",
		"TOUCHPOINT_ADMIN_KEY", decisionlog.KeyEnv)
	return nil
}
