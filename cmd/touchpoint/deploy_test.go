package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/touchpoint-dev/touchpoint/rules"
	"github.com/touchpoint-dev/touchpoint/server"
)

// These tests read Dockerfile, deploy/compose.yaml and deploy/k8s as the
// tools would and check them against the code: the Go version, the port,
// the probe paths, the variables and their values, the files they name.
// Nothing here builds or runs a container.

// defaultPort is the port serve listens on unless told otherwise.
func defaultPort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(server.DefaultConfig().Addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("../../configs/touchpoint.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, demo, _ := net.SplitHostPort(cfg.Server.Addr); demo != p {
		t.Errorf("configs/touchpoint.yaml listens on %s, the default is %s", cfg.Server.Addr, p)
	}
	return n
}

// knownEnv is every variable serve reads: configuration keys, the other
// names, and the webhook secrets the demo rules name.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, v := range envVars() {
		known[v.Name] = true
	}
	for _, n := range otherEnvNames() {
		known[n] = true
	}
	rs, err := rules.Load("../../configs/rules", "../../configs/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rs.Deliveries {
		if d.Webhook != nil {
			known[d.Webhook.SecretEnv] = true
		}
	}
	return known
}

var substitution = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}`)

// checkEnv checks a container's environment: every TOUCHPOINT_ name is
// read by serve, and the values given in the file, over the image's
// config, make a valid configuration. Values substituted at deploy time
// (${VAR}, secrets) stand in as a 32-character placeholder.
func checkEnv(t *testing.T, where string, env map[string]string) config {
	t.Helper()
	known := knownEnv(t)
	values := map[string]string{}
	for name, v := range env {
		if !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if !known[name] {
			t.Errorf("%s: %s is not a variable serve reads", where, name)
		}
		values[name] = substitution.ReplaceAllString(v, "placeholder-0123456789-abcdefghi")
	}
	cfg, err := loadConfig("../../configs/touchpoint.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(&cfg, mapLookup(values)); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("%s: the configuration is not valid: %v", where, err)
	}
	return cfg
}

func TestDockerfile(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, with continuation lines joined and comments dropped.
	var lines []string
	var cur string
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		lines = append(lines, cur+line)
		cur = ""
	}
	var froms, users, exposes, envs, copies []string
	var cmd, run string
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, strings.Fields(rest)[0])
		case "USER":
			users = append(users, rest)
		case "EXPOSE":
			exposes = append(exposes, rest)
		case "ENV":
			envs = append(envs, rest)
		case "COPY":
			copies = append(copies, rest)
		case "CMD":
			cmd = rest
		case "RUN":
			if strings.Contains(rest, "go build") {
				run = rest
			}
		}
	}
	if len(froms) != 2 {
		t.Fatalf("want a builder and a final stage, got FROM %v", froms)
	}
	builder := froms[0]
	tag, ok := strings.CutPrefix(builder, "golang:")
	if !ok || (tag != string(goVersion[1]) && !strings.HasPrefix(tag, string(goVersion[1])+"-")) {
		t.Errorf("the builder is %s; go.mod says go %s", builder, goVersion[1])
	}
	if !strings.HasPrefix(froms[1], "gcr.io/distroless/static") || !strings.HasSuffix(froms[1], ":nonroot") {
		t.Errorf("the final stage is %s, want distroless static, nonroot", froms[1])
	}
	if !strings.Contains(run, "CGO_ENABLED=0") || !strings.Contains(run, "./cmd/touchpoint") {
		t.Errorf("the build is not a static build of ./cmd/touchpoint: %s", run)
	}
	if len(users) != 1 || users[0] == "0" || strings.HasPrefix(users[0], "root") || strings.HasPrefix(users[0], "0:") {
		t.Errorf("USER %v; want one non-root user", users)
	}
	if want := strconv.Itoa(defaultPort(t)); !slices.Equal(exposes, []string{want}) {
		t.Errorf("EXPOSE %v, want %s", exposes, want)
	}
	if !slices.ContainsFunc(copies, func(c string) bool { return strings.HasPrefix(c, "configs/ ") }) {
		t.Error("configs/ is not copied into the image, so the demo cannot run")
	}
	env := map[string]string{}
	for _, e := range envs {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	checkEnv(t, "Dockerfile", env)
	// CMD serves the config file copied with configs/.
	if !strings.Contains(cmd, `"serve", "--config", "configs/touchpoint.yaml"`) {
		t.Errorf("CMD %s", cmd)
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(ignore), "\n") {
		line = strings.TrimSpace(line)
		for _, needed := range []string{"go.mod", "go.sum", "configs", "cmd", "ui", "api", "schemas"} {
			if strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/") == needed {
				t.Errorf(".dockerignore leaves out %s, which the build needs", needed)
			}
		}
	}
}

// composeFile is the part of deploy/compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		ReadOnly    bool              `yaml:"read_only"`
	} `yaml:"services"`
}

func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	port := strconv.Itoa(defaultPort(t))
	redis, ok := c.Services["redis"]
	if !ok || !strings.Contains(strings.Join(redis.Command, " "), "--requirepass") {
		t.Errorf("no redis service that requires a password: %+v", redis)
	}
	var nodes []string
	for name, s := range c.Services {
		if s.Build.Dockerfile == "" {
			continue
		}
		where := "deploy/compose.yaml: " + name
		if got := filepath.Join("../../deploy", s.Build.Context, s.Build.Dockerfile); filepath.Clean(got) != filepath.Clean("../../Dockerfile") {
			t.Errorf("%s builds %s, not the repository's Dockerfile", where, got)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", where, dep)
			}
		}
		cfg := checkEnv(t, where, s.Environment)
		if len(s.Command) == 0 {
			t.Errorf("%s has no command", where)
			continue
		}
		switch s.Command[0] {
		case "serve":
			nodes = append(nodes, name)
			if !s.ReadOnly {
				t.Errorf("%s: the node's file system is not read-only", where)
			}
			if len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+port) {
				t.Errorf("%s publishes %v; the server listens on %s", where, s.Ports, port)
			}
			if i := slices.Index(s.Command, "--config"); i < 0 || i+1 >= len(s.Command) {
				t.Errorf("%s: serve without --config", where)
			} else if _, err := os.Stat(filepath.Join("../..", s.Command[i+1])); err != nil {
				t.Errorf("%s: --config %s is not in the image: %v", where, s.Command[i+1], err)
			}
			host := strings.TrimPrefix(cfg.Redis.URL, "redis://")
			host, _, _ = strings.Cut(host, ":")
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s: redis.url %s names no service", where, cfg.Redis.URL)
			}
			if s.Environment["TOUCHPOINT_REDIS_PASSWORD"] == "" {
				t.Errorf("%s: no Redis password", where)
			}
		case "features":
			file := s.Command[len(s.Command)-1]
			if _, err := os.Stat(filepath.Join("../..", file)); err != nil {
				t.Errorf("%s imports %s, which is not in the image: %v", where, file, err)
			}
		default:
			t.Errorf("%s runs %v", where, s.Command)
		}
	}
	if len(nodes) != 2 {
		t.Errorf("Touchpoint nodes %v, want two", nodes)
	}
}

// k8sObject holds the fields of the manifests that the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// Deployment
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		ServiceSelector map[string]string `yaml:"-"`
		Ports           []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// HorizontalPodAutoscaler
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Metrics []struct {
			Resource struct {
				Name string `yaml:"name"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
	raw map[string]any
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		Projected *struct {
			Sources []struct {
				ConfigMap struct {
					Name  string      `yaml:"name"`
					Items []volumeKey `yaml:"items"`
				} `yaml:"configMap"`
			} `yaml:"sources"`
		} `yaml:"projected"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string      `yaml:"secretName"`
			Items      []volumeKey `yaml:"items"`
		} `yaml:"secret"`
		EmptyDir any `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type volumeKey struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type kustomization struct {
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

// readManifests decodes every document of every manifest in deploy/k8s
// but the kustomization.
func readManifests(t *testing.T) map[string]*k8sObject {
	t.Helper()
	files, err := filepath.Glob("../../deploy/k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	objs := map[string]*k8sObject{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o := &k8sObject{}
			if err := node.Decode(o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := node.Decode(&o.raw); err != nil {
				t.Fatal(err)
			}
			if o.Kind == "Service" {
				spec, _ := o.raw["spec"].(map[string]any)
				sel, _ := spec["selector"].(map[string]any)
				o.Spec.ServiceSelector = map[string]string{}
				for k, v := range sel {
					o.Spec.ServiceSelector[k], _ = v.(string)
				}
			}
			objs[o.Kind] = o
		}
	}
	return objs
}

func subset(sub, of map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	objs := readManifests(t)
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if objs[kind] == nil {
			t.Fatalf("deploy/k8s has no %s", kind)
		}
	}
	dep := objs["Deployment"]
	pod := dep.Spec.Template.Spec
	labels := dep.Spec.Template.Metadata.Labels
	if !subset(dep.Spec.Selector.MatchLabels, labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", dep.Spec.Selector.MatchLabels, labels)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	port := defaultPort(t)
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Errorf("container ports %+v; serve listens on %d", c.Ports, port)
	}
	portName := c.Ports[0].Name
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness probe %q, liveness %q", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	for _, p := range []string{c.ReadinessProbe.HTTPGet.Port, c.LivenessProbe.HTTPGet.Port} {
		if p != portName && p != strconv.Itoa(port) {
			t.Errorf("a probe asks port %q; the container's is %s (%d)", p, portName, port)
		}
	}
	// The probe paths answer 200 on a real server.
	s := startServer(t, workspace(t))
	for _, p := range []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path} {
		resp, err := client.Get(s.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod security context %+v", pod.SecurityContext)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", c.SecurityContext)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v", c.Resources)
	}

	// Environment: names serve reads, values that make a valid config.
	env := map[string]string{}
	secrets := map[string]bool{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "${SECRET}"
			secrets[e.ValueFrom.SecretKeyRef.Name] = true
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "${FIELD}"
		}
	}
	cfg := checkEnv(t, "deploy/k8s/deployment.yaml", env)
	grace := int((cfg.Server.DrainDelay + cfg.Server.ShutdownGrace).Seconds())
	if pod.TerminationGracePeriodSeconds <= grace {
		t.Errorf("terminationGracePeriodSeconds %d; drain_delay and shutdown_grace take %ds", pod.TerminationGracePeriodSeconds, grace)
	}

	// Volumes: every mount has its volume; the paths the environment
	// names are where the volumes are.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
		if _, ok := mounts[v.Name]; !ok {
			t.Errorf("volume %s is not mounted", v.Name)
		}
		if v.Secret != nil {
			secrets[v.Secret.SecretName] = true
			for _, it := range v.Secret.Items {
				if filepath.Join(mounts[v.Name], it.Path) == cfg.Redis.PasswordFile {
					cfg.Redis.PasswordFile = ""
				}
			}
		}
	}
	for name := range mounts {
		if !volumes[name] {
			t.Errorf("mount %s has no volume", name)
		}
	}
	if cfg.Redis.PasswordFile != "" {
		t.Errorf("redis.password_file %s is in no secret volume", cfg.Redis.PasswordFile)
	}
	if cfg.Rules.RulesDir != mounts["rules"] || filepath.Dir(cfg.Rules.SchemaPath) != mounts["schema"] {
		t.Errorf("rules.dir %s and rules.schema %s are not where the volumes are (%v)", cfg.Rules.RulesDir, cfg.Rules.SchemaPath, mounts)
	}
	if filepath.Dir(cfg.DecisionLog.File.Path) != mounts["data"] {
		t.Errorf("the decision log %s is not on the writable volume", cfg.DecisionLog.File.Path)
	}
	if len(secrets) != 1 {
		t.Errorf("secrets %v; want the one named in README", secrets)
	}

	svc := objs["Service"]
	if !subset(svc.Spec.ServiceSelector, labels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != portName {
		t.Errorf("the Service selects %v, targets %+v", svc.Spec.ServiceSelector, svc.Spec.Ports)
	}
	pdb := objs["PodDisruptionBudget"]
	if !subset(pdb.Spec.Selector.MatchLabels, labels) {
		t.Errorf("the PodDisruptionBudget selects %v", pdb.Spec.Selector.MatchLabels)
	}
	hpa := objs["HorizontalPodAutoscaler"]
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name ||
		len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource.Name != "cpu" {
		t.Errorf("the autoscaler scales %+v on %+v", hpa.Spec.ScaleTargetRef, hpa.Spec.Metrics)
	}
}

// The ConfigMaps hold exactly the files of configs/rules and the schema,
// and the rules load when laid out as the kubelet mounts them: each key a
// link into a hidden, timestamped folder, the models folder projected from
// its own ConfigMap.
func TestKubernetesRulesConfigMaps(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("../../deploy/k8s", r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
	generated := map[string][]string{}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			rel, err := filepath.Rel("../../configs", filepath.Join("../../deploy/k8s", f))
			if err != nil {
				t.Fatal(err)
			}
			generated[g.Name] = append(generated[g.Name], filepath.ToSlash(rel))
		}
	}
	var top, models []string
	err = filepath.WalkDir("../../configs/rules", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../../configs", p)
		rel = filepath.ToSlash(rel)
		if path.Dir(rel) == "rules" {
			top = append(top, rel)
		} else {
			models = append(models, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"touchpoint-rules": top, "touchpoint-rule-models": models, "touchpoint-schema": {"features.yaml"}} {
		got := slices.Clone(generated[name])
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("deploy/k8s/kustomization.yaml: %s has %v; configs has %v", name, got, want)
		}
	}

	// The Deployment projects every model back into models/.
	dep := readManifests(t)["Deployment"]
	projected := map[string]string{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ConfigMap.Name == "touchpoint-rule-models" {
				for _, it := range src.ConfigMap.Items {
					projected[it.Key] = it.Path
				}
			}
		}
	}
	for _, m := range models {
		key := path.Base(m)
		if want := strings.TrimPrefix(m, "rules/"); projected[key] != want {
			t.Errorf("the Deployment projects %s to %q, want %q", key, projected[key], want)
		}
	}

	// Lay the volumes out as the kubelet does and check the rules there.
	volume := func(files map[string]string) string {
		dir := t.TempDir()
		stamp := "..2026_11_30_12_00_00.000000001"
		for dst, src := range files {
			data, err := os.ReadFile(filepath.Join("../../configs", src))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, stamp, dst)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Join(dir, stamp))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.Symlink(filepath.Join("..data", e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	ruleFiles := map[string]string{}
	for _, f := range generated["touchpoint-rules"] {
		ruleFiles[path.Base(f)] = f
	}
	for _, f := range generated["touchpoint-rule-models"] {
		ruleFiles[projected[path.Base(f)]] = f
	}
	rulesDir := volume(ruleFiles)
	schemaDir := volume(map[string]string{"features.yaml": "features.yaml"})
	out, errOut, code := runCLI("rules", "check", "--schema", filepath.Join(schemaDir, "features.yaml"), rulesDir)
	if code != 0 {
		t.Fatalf("the rules do not load from the ConfigMap volumes:\n%s%s", out, errOut)
	}
	want, _, _ := runCLI("rules", "check", "../../configs/rules")
	version := regexp.MustCompile(`\(ruleset \w+\)`)
	if got, want := version.FindString(out), version.FindString(want); got == "" || got != want {
		t.Errorf("from the volumes the ruleset is %s, from configs/rules %s", got, want)
	}

	// kubectl, where installed, builds the manifests the README applies.
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl is not installed; kubectl kustomize not tried")
		return
	}
	built, err := exec.Command(kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", "../../deploy/k8s").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/k8s: %v", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(built))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := regexp.MustCompile(`^\s+name: (touchpoint-(rules|rule-models|schema)-\w+)$`).FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	// Each generated ConfigMap is named once by itself and once by the
	// Deployment's volumes.
	for _, base := range []string{"touchpoint-rules-", "touchpoint-rule-models-", "touchpoint-schema-"} {
		n := 0
		for _, name := range names {
			if strings.HasPrefix(name, base) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("kubectl kustomize: %s… named %d times in %v", base, n, names)
		}
	}
}
