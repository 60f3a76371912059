// Package kubernetes_test checks the deployment files: the Kubernetes
// manifests next to it, compose.yaml, the Dockerfile and .dockerignore. No
// cluster and no Docker engine are needed: the files are parsed and their
// probes, mounts, security settings and secrets are checked against what
// threadgate serves, so that the examples never rot.
package kubernetes_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite configmap.yaml from examples/rules.yaml")

// Paths, from this directory.
const (
	repoRoot     = "../.."
	exampleRules = "../rules.yaml"
	rulesDir     = "/etc/threadgate"
	rulesPath    = "/etc/threadgate/rules.yaml"
	listenPort   = 8080
)

// secretEnv are the variables that must come from a Secret, never a literal.
var secretEnv = []string{"PAGE_ACCESS_TOKEN", "APP_SECRET", "VERIFY_TOKEN"}

// object is a Kubernetes object with its node, for decoding into types.
type object struct {
	file string
	kind string
	name string
	node *yaml.Node
}

// loadObjects decodes every document of every manifest of this directory.
func loadObjects(t *testing.T) []object {
	t.Helper()
	return loadObjectsIn(t, ".")
}

// loadObjectsIn decodes every document of every manifest of dir but its
// kustomization.yaml.
func loadObjectsIn(t *testing.T, dir string) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
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
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			if err := n.Decode(&head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
				t.Errorf("%s:%d: a document without apiVersion, kind or metadata.name", f, n.Line)
				continue
			}
			objs = append(objs, object{file: filepath.Base(f), kind: head.Kind, name: head.Metadata.Name, node: &n})
		}
	}
	return objs
}

// one decodes the only object of a kind into v.
func one(t *testing.T, objs []object, kind string, v any) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	if err := found[0].node.Decode(v); err != nil {
		t.Fatalf("%s: %s: %v", found[0].file, kind, err)
	}
	return found[0]
}

// The parts of the Kubernetes types the tests read.
type (
	deployment struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		SecurityContext               securityContext `yaml:"securityContext"`
		TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
		Containers                    []container     `yaml:"containers"`
		Volumes                       []volume        `yaml:"volumes"`
	}
	securityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	}
	container struct {
		Name            string          `yaml:"name"`
		Image           string          `yaml:"image"`
		Args            []string        `yaml:"args"`
		Ports           []containerPort `yaml:"ports"`
		Env             []envVar        `yaml:"env"`
		VolumeMounts    []volumeMount   `yaml:"volumeMounts"`
		LivenessProbe   *probe          `yaml:"livenessProbe"`
		ReadinessProbe  *probe          `yaml:"readinessProbe"`
		Resources       resources       `yaml:"resources"`
		SecurityContext securityContext `yaml:"securityContext"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	envVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []any  `yaml:"items"`
		} `yaml:"configMap"`
	}
	probe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
	resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	secret struct {
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string `yaml:"data"`
	}
)

// portNumber resolves a probe's or Service's port (a number or a port name)
// against the container's ports.
func portNumber(n yaml.Node, ports []containerPort) (int, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("port is not a scalar")
	}
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p, nil
	}
	for _, p := range ports {
		if p.Name == n.Value {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", n.Value)
}

func threadgateContainer(t *testing.T, d *deployment) *container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "threadgate" {
			return c
		}
	}
	t.Fatal("no container named threadgate")
	return nil
}

func TestDeploymentProbesAndPorts(t *testing.T) {
	t.Parallel()
	var d deployment
	one(t, loadObjects(t), "Deployment", &d)
	c := threadgateContainer(t, &d)
	for _, p := range []struct {
		name  string
		probe *probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no httpGet probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path = %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if port, err := portNumber(p.probe.HTTPGet.Port, c.Ports); err != nil || port != listenPort {
			t.Errorf("%s port = %d (%v), want %d", p.name, port, err, listenPort)
		}
	}
	if !slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.ContainerPort == listenPort }) {
		t.Errorf("container ports %v do not include %d", c.Ports, listenPort)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args = %q, want serve", c.Args)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources = %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 10 {
		t.Errorf("terminationGracePeriodSeconds must exceed serve's 10 s grace, got %v", g)
	}
	if r := d.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("replicas = %v, want 1 (state is in memory)", r)
	}
	ann := d.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(listenPort) {
		t.Errorf("prometheus annotations = %v", ann)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, d.Spec.Template.Metadata.Labels)
		}
	}
}

func TestDeploymentSecurityContext(t *testing.T) {
	t.Parallel()
	var d deployment
	one(t, loadObjects(t), "Deployment", &d)
	pod := d.Spec.Template.Spec.SecurityContext
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if pod.RunAsUser == nil || *pod.RunAsUser == 0 {
		t.Errorf("pod securityContext.runAsUser = %v, want a non-root UID", pod.RunAsUser)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: capabilities.drop = %q, want ALL", c.Name, sc.Capabilities.Drop)
		}
	}
}

func TestDeploymentRulesMount(t *testing.T) {
	t.Parallel()
	objs := loadObjects(t)
	var d deployment
	one(t, objs, "Deployment", &d)
	var cm configMap
	cmObj := one(t, objs, "ConfigMap", &cm)
	c := threadgateContainer(t, &d)

	for _, ct := range d.Spec.Template.Spec.Containers {
		for _, m := range ct.VolumeMounts {
			if m.SubPath != "" {
				t.Errorf("%s: volume %s is mounted with subPath %q: such a mount never sees updates", ct.Name, m.Name, m.SubPath)
			}
		}
	}
	var mount *volumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == rulesDir {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("no volume mounted at %s", rulesDir)
	}
	if !mount.ReadOnly {
		t.Errorf("%s is not mounted readOnly", rulesDir)
	}
	var vol *volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name {
			vol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil {
		t.Fatalf("volume %q is not a configMap volume", mount.Name)
	}
	if vol.ConfigMap.Name != cmObj.name {
		t.Errorf("volume %q mounts ConfigMap %q, the ConfigMap is %q", vol.Name, vol.ConfigMap.Name, cmObj.name)
	}
	if len(vol.ConfigMap.Items) > 0 {
		t.Errorf("volume %q lists items: mount the whole ConfigMap", vol.Name)
	}
	rules := envValue(c, "THREADGATE_RULES")
	if rules != rulesPath {
		t.Errorf("THREADGATE_RULES = %q, want %q", rules, rulesPath)
	}
	if _, ok := cm.Data[path.Base(rulesPath)]; !ok {
		t.Errorf("ConfigMap %s has no key %s", cmObj.name, path.Base(rulesPath))
	}
}

func envValue(c *container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.Value != nil {
			return *e.Value
		}
	}
	return ""
}

func TestDeploymentSecrets(t *testing.T) {
	t.Parallel()
	objs := loadObjects(t)
	var d deployment
	one(t, objs, "Deployment", &d)
	var s secret
	sObj := one(t, objs, "Secret", &s)
	c := threadgateContainer(t, &d)
	for _, name := range secretEnv {
		i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == name })
		if i < 0 {
			t.Errorf("no env %s", name)
			continue
		}
		e := c.Env[i]
		if e.Value != nil {
			t.Errorf("env %s has a literal value: secrets come from a Secret", name)
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not from a secretKeyRef", name)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref.Name != sObj.name {
			t.Errorf("env %s reads Secret %q, the Secret is %q", name, ref.Name, sObj.name)
		}
		if ref.Optional {
			t.Errorf("env %s is optional: without it threadgate would start in sandbox mode", name)
		}
		if _, ok := s.StringData[ref.Key]; !ok {
			t.Errorf("env %s reads key %q, which secret.yaml does not list", name, ref.Key)
		}
	}
	for k, v := range s.StringData {
		if !strings.HasPrefix(v, "REPLACE") {
			t.Errorf("secret.yaml %s = %q: only placeholders belong in the example", k, v)
		}
	}
	if len(s.Data) > 0 {
		t.Error("secret.yaml has data: only placeholders in stringData belong in the example")
	}
}

func TestService(t *testing.T) {
	t.Parallel()
	objs := loadObjects(t)
	var d deployment
	one(t, objs, "Deployment", &d)
	var s service
	one(t, objs, "Service", &s)
	c := threadgateContainer(t, &d)
	if len(s.Spec.Selector) == 0 {
		t.Fatal("the Service has no selector")
	}
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the pods (labels %v)", k, v, d.Spec.Template.Metadata.Labels)
		}
	}
	if len(s.Spec.Ports) == 0 {
		t.Fatal("the Service has no ports")
	}
	for _, p := range s.Spec.Ports {
		if port, err := portNumber(p.TargetPort, c.Ports); err != nil || port != listenPort {
			t.Errorf("Service port %s targets %d (%v), want %d", p.Name, port, err, listenPort)
		}
	}
}

// image is one entry of a kustomization's images.
type image struct {
	Name    string `yaml:"name"`
	NewName string `yaml:"newName"`
	NewTag  string `yaml:"newTag"`
}

func TestKustomization(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []image  `yaml:"images"`
		Labels     []any    `yaml:"labels"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" {
		t.Errorf("kind = %q", k.Kind)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		listed := slices.Contains(k.Resources, f)
		switch f {
		case "kustomization.yaml":
		case "secret.yaml":
			if listed {
				t.Error("secret.yaml is listed: `kubectl apply -k` would reset the real tokens to placeholders")
			}
		default:
			if !listed {
				t.Errorf("%s is not listed in resources", f)
			}
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
	var d deployment
	objs := loadObjects(t)
	one(t, objs, "Deployment", &d)
	c := threadgateContainer(t, &d)
	if !slices.ContainsFunc(k.Images, func(i image) bool { return i.Name == c.Image && i.NewName != "" }) {
		t.Errorf("images: does not set the Deployment's image %q", c.Image)
	}
	if k.Namespace == "" {
		t.Error("no namespace")
	}
	var ns struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	}
	one(t, objs, "Namespace", &ns)
	if ns.Metadata.Name != k.Namespace {
		t.Errorf("Namespace object %q, kustomization namespace %q", ns.Metadata.Name, k.Namespace)
	}
	var s struct {
		Metadata struct {
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
	}
	one(t, objs, "Secret", &s)
	if s.Metadata.Namespace != k.Namespace {
		t.Errorf("secret.yaml is applied by hand: its namespace %q must be %q", s.Metadata.Namespace, k.Namespace)
	}
}

// configMapYAML renders configmap.yaml around the example rules.
func configMapYAML(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# The rules, mounted by the Deployment as a directory at /etc/threadgate.
# GENERATED from examples/rules.yaml: go test ./examples/kubernetes -update
#
# Change the rules of a running bot with
#   kubectl -n threadgate edit configmap threadgate-rules
# The kubelet updates the mounted file within about a minute and threadgate
# reloads it; a file with a mistake is refused and the previous rules stay
# in force (threadgate_rules_last_reload_successful drops to 0).
apiVersion: v1
kind: ConfigMap
metadata:
  name: threadgate-rules
  labels:
    app.kubernetes.io/name: threadgate
data:
  rules.yaml: |
`)
	for _, line := range strings.SplitAfter(string(rules), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(strings.TrimLeft(line, " \t"))
			continue
		}
		b.WriteString("    " + line)
	}
	return b.Bytes()
}

func TestConfigMapHoldsExampleRules(t *testing.T) {
	if !*update {
		t.Parallel() // with -update it writes configmap.yaml, which the others read
	}
	rules, err := os.ReadFile(exampleRules)
	if err != nil {
		t.Fatal(err)
	}
	want := configMapYAML(rules)
	if *update {
		if err := os.WriteFile("configmap.yaml", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("configmap.yaml is not examples/rules.yaml: run go test ./examples/kubernetes -update")
	}
	var cm configMap
	if err := yaml.Unmarshal(got, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["rules.yaml"] != string(rules) {
		t.Errorf("configmap.yaml's rules.yaml does not decode to examples/rules.yaml byte for byte")
	}
}

// compose is the part of compose.yaml the tests read.
type compose struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Profiles    []string          `yaml:"profiles"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		ReadOnly    bool              `yaml:"read_only"`
		Volumes     []struct {
			Type     string `yaml:"type"`
			Source   string `yaml:"source"`
			Target   string `yaml:"target"`
			ReadOnly bool   `yaml:"read_only"`
		} `yaml:"volumes"`
	} `yaml:"services"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestComposeSandbox(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	svc, ok := c.Services["threadgate"]
	if !ok {
		t.Fatal("no threadgate service")
	}
	if svc.Build == nil {
		t.Error("the threadgate service is not built from the Dockerfile")
	}
	if tok, set := svc.Environment["PAGE_ACCESS_TOKEN"]; set && tok != "" {
		t.Error("PAGE_ACCESS_TOKEN is set: compose must run the sandbox")
	}
	if len(svc.Profiles) > 0 {
		t.Errorf("the threadgate service has profiles %q: it must start with a plain `docker compose up`", svc.Profiles)
	}
	rules := svc.Environment["THREADGATE_RULES"]
	if rules == "" {
		rules = rulesPath // the image's default
	}
	found := false
	for _, v := range svc.Volumes {
		if v.Target != rulesDir {
			continue
		}
		found = true
		if v.Type != "bind" {
			t.Errorf("%s is a %s volume, want a bind mount of ./examples", rulesDir, v.Type)
		}
		src := filepath.Join(repoRoot, v.Source)
		st, err := os.Stat(src)
		if err != nil || !st.IsDir() {
			t.Fatalf("%s is mounted from %s, which is not a directory (%v): a single-file mount never sees editors' saves", rulesDir, v.Source, err)
		}
		abs, _ := filepath.Abs(src)
		want, _ := filepath.Abs(filepath.Join(repoRoot, "examples"))
		if abs != want {
			t.Errorf("%s is mounted from %s, want ./examples", rulesDir, v.Source)
		}
		rel, ok := strings.CutPrefix(rules, rulesDir+"/")
		if !ok {
			t.Fatalf("THREADGATE_RULES %s is not under the mount %s", rules, rulesDir)
		}
		if _, err := os.Stat(filepath.Join(src, rel)); err != nil {
			t.Errorf("THREADGATE_RULES %s: %v", rules, err)
		}
	}
	if !found {
		t.Errorf("nothing is mounted at %s", rulesDir)
	}
	if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+strconv.Itoa(listenPort)) }) {
		t.Errorf("ports %q do not publish %d", svc.Ports, listenPort)
	}
}

// TestComposeMonitoring checks that the monitoring profile mounts existing
// directories and that Prometheus loads the alerting rules it is given.
func TestComposeMonitoring(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			if v.Type != "bind" {
				continue
			}
			st, err := os.Stat(filepath.Join(repoRoot, v.Source))
			if err != nil || !st.IsDir() {
				t.Errorf("%s: %s is not a directory (%v)", name, v.Source, err)
			}
		}
	}
	prom, ok := c.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	var cfgHost, cfgTarget string
	for _, v := range prom.Volumes {
		cfgHost, cfgTarget = filepath.Join(repoRoot, v.Source), v.Target
	}
	data, err := os.ReadFile(filepath.Join(cfgHost, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatal(err)
	}
	if len(pc.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule files")
	}
	for _, rf := range pc.RuleFiles {
		rel, ok := strings.CutPrefix(rf, cfgTarget+"/")
		if !ok {
			t.Errorf("rule file %s is outside the mount %s", rf, cfgTarget)
			continue
		}
		if _, err := os.Stat(filepath.Join(cfgHost, rel)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
	want := "threadgate:" + strconv.Itoa(listenPort)
	if len(pc.ScrapeConfigs) == 0 || len(pc.ScrapeConfigs[0].StaticConfigs) == 0 || !slices.Contains(pc.ScrapeConfigs[0].StaticConfigs[0].Targets, want) {
		t.Errorf("prometheus.yml does not scrape %s", want)
	}
}

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd  string
	args string
	line int
}

var dockerfileParser = regexp.MustCompile(`^(\w+)\s+(.*)$`)

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		m := dockerfileParser.FindStringSubmatch(cur.String())
		if m == nil {
			t.Fatalf("Dockerfile:%d: cannot parse %q", start, cur.String())
		}
		out = append(out, instruction{cmd: strings.ToUpper(m[1]), args: strings.Join(strings.Fields(m[2]), " "), line: start})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := parseDockerfile(t)
	// The last stage is what runs.
	last := 0
	stages := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last, stages = i, stages+1
		}
	}
	if stages < 2 {
		t.Errorf("%d stages, want a multi-stage build", stages)
	}
	var build, final []instruction = ins[:last], ins[last:]
	join := func(list []instruction, cmd string) string {
		var parts []string
		for _, in := range list {
			if in.cmd == cmd {
				parts = append(parts, in.args)
			}
		}
		return strings.Join(parts, "\n")
	}
	if run := join(build, "RUN"); !strings.Contains(run, "CGO_ENABLED=0") || !strings.Contains(run, "-trimpath") || !strings.Contains(run, "./cmd/threadgate") {
		t.Errorf("the build stage does not build a static ./cmd/threadgate with -trimpath: %q", run)
	}
	user := join(final, "USER")
	if user == "" {
		t.Fatal("the final stage sets no USER")
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root UID (Kubernetes' runAsNonRoot can only verify numbers)", user)
	}
	var d deployment
	one(t, loadObjects(t), "Deployment", &d)
	if u := d.Spec.Template.Spec.SecurityContext.RunAsUser; u != nil && strconv.Itoa(*u) != uid {
		t.Errorf("the image runs as %s, the Deployment as %d", uid, *u)
	}
	if env := join(final, "ENV"); !regexp.MustCompile(`(^|\s)THREADGATE_RULES=` + regexp.QuoteMeta(rulesPath) + `(\s|$)`).MatchString(env) {
		t.Errorf("ENV does not set THREADGATE_RULES=%s: %q", rulesPath, env)
	}
	if cp := join(final, "COPY"); !strings.Contains(cp, "examples/rules.yaml "+rulesPath) {
		t.Errorf("the final stage does not copy examples/rules.yaml to %s: %q", rulesPath, cp)
	}
	hc := join(final, "HEALTHCHECK")
	if !strings.Contains(hc, "CMD") || !(strings.Contains(hc, "/healthz") || strings.Contains(hc, `"healthcheck"`)) {
		t.Errorf("HEALTHCHECK does not check /healthz: %q", hc)
	}
	if strings.Contains(join(final, "FROM"), "distroless") && (strings.Contains(hc, "curl") || strings.Contains(hc, "wget")) {
		t.Errorf("HEALTHCHECK uses curl or wget, which distroless does not have: %q", hc)
	}
	if expose := join(final, "EXPOSE"); !strings.Contains(expose, strconv.Itoa(listenPort)) {
		t.Errorf("EXPOSE %q, want %d", expose, listenPort)
	}
	if ep := join(final, "ENTRYPOINT") + join(final, "CMD"); !strings.Contains(ep, "threadgate") || !strings.Contains(ep, "serve") {
		t.Errorf("ENTRYPOINT/CMD %q do not run threadgate serve", ep)
	}
}
