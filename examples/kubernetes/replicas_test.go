package kubernetes_test

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/threadgate/threadgate/store/redisstore"
)

// The variant with several replicas on Redis: replicas/ (a kustomization
// over this directory) and compose.yaml's replicas profile.

const replicasDir = "replicas"

// loadReplicaObjects decodes every document of every manifest of
// replicas/.
func loadReplicaObjects(t *testing.T) []object {
	t.Helper()
	return loadObjectsIn(t, replicasDir)
}

// statefulSet is the part of a StatefulSet the tests read.
type statefulSet struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

func TestReplicasKustomization(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(replicasDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Patches    []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("replicas/kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || !slices.Contains(k.Resources, "../") {
		t.Errorf("kind %q, resources %q: want a Kustomization over ../", k.Kind, k.Resources)
	}
	var base struct {
		Namespace string `yaml:"namespace"`
	}
	baseData, _ := os.ReadFile("kustomization.yaml")
	if err := yaml.Unmarshal(baseData, &base); err != nil || base.Namespace != k.Namespace {
		t.Errorf("namespace %q, the base's %q (%v)", k.Namespace, base.Namespace, err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(replicasDir, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
		listed[r] = true
	}
	for _, p := range k.Patches {
		if _, err := os.Stat(filepath.Join(replicasDir, p.Path)); err != nil {
			t.Errorf("patch %s: %v", p.Path, err)
		}
		listed[p.Path] = true
	}
	files, _ := filepath.Glob(filepath.Join(replicasDir, "*.yaml"))
	for _, f := range files {
		switch f := filepath.Base(f); {
		case f == "kustomization.yaml":
		case f == "secret.yaml":
			if listed[f] {
				t.Error("replicas/secret.yaml is listed: `kubectl apply -k` would reset Redis's password to the placeholder")
			}
		case !listed[f]:
			t.Errorf("replicas/%s is neither a resource nor a patch", f)
		}
	}
}

func TestReplicasDeploymentJoinsRedis(t *testing.T) {
	t.Parallel()
	objs := loadReplicaObjects(t)
	var base deployment
	baseObj := one(t, loadObjects(t), "Deployment", &base)
	var patch deployment
	patchObj := one(t, objs, "Deployment", &patch)
	if patchObj.name != baseObj.name {
		t.Errorf("the patch names Deployment %q, the base's is %q", patchObj.name, baseObj.name)
	}
	if r := patch.Spec.Replicas; r == nil || *r < 3 {
		t.Errorf("replicas = %v, want 3", r)
	}
	c := threadgateContainer(t, &patch)
	var sec secret
	secObj := one(t, objs, "Secret", &sec)
	pw := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "REDIS_PASSWORD" })
	u := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "THREADGATE_REDIS_URL" })
	if pw < 0 || u < 0 || pw > u {
		t.Fatalf("env: want REDIS_PASSWORD, then THREADGATE_REDIS_URL that expands it")
	}
	ref := c.Env[pw].ValueFrom
	if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secObj.name || ref.SecretKeyRef.Optional {
		t.Errorf("REDIS_PASSWORD is not read from Secret %q", secObj.name)
	} else if v := sec.StringData[ref.SecretKeyRef.Key]; !strings.HasPrefix(v, "REPLACE") {
		t.Errorf("replicas/secret.yaml %s = %q: want a placeholder", ref.SecretKeyRef.Key, v)
	}
	raw := c.Env[u].Value
	if raw == nil || !strings.Contains(*raw, "$(REDIS_PASSWORD)") {
		t.Fatalf("THREADGATE_REDIS_URL = %v, want a URL with $(REDIS_PASSWORD)", raw)
	}
	expanded := strings.ReplaceAll(*raw, "$(REDIS_PASSWORD)", "p4ssw0rd")
	if err := redisstore.CheckURL(expanded); err != nil {
		t.Fatalf("THREADGATE_REDIS_URL: %v", err)
	}
	parsed, _ := url.Parse(expanded)
	var svc service
	svcObj := one(t, objs, "Service", &svc)
	if parsed.Hostname() != svcObj.name || !slices.ContainsFunc(svc.Spec.Ports, func(p struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	}) bool {
		return strconv.Itoa(p.Port) == parsed.Port()
	}) {
		t.Errorf("THREADGATE_REDIS_URL names %s, the Redis Service is %s with ports %+v", parsed.Host, svcObj.name, svc.Spec.Ports)
	}

	var pdb struct {
		Spec struct {
			MinAvailable int `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	one(t, objs, "PodDisruptionBudget", &pdb)
	if pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= *patch.Spec.Replicas {
		t.Errorf("PodDisruptionBudget minAvailable %d, want between 1 and the replicas - 1", pdb.Spec.MinAvailable)
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if base.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%s, not the pods (labels %v)", k, v, base.Spec.Template.Metadata.Labels)
		}
	}
}

func TestReplicasRedis(t *testing.T) {
	t.Parallel()
	objs := loadReplicaObjects(t)
	var ss statefulSet
	one(t, objs, "StatefulSet", &ss)
	var svc service
	one(t, objs, "Service", &svc)
	if r := ss.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("Redis replicas = %v, want 1 (one primary: threadgate does not use Redis replication)", r)
	}
	for k, v := range svc.Spec.Selector {
		if ss.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the Redis Service selects %s=%s, not the Redis pod", k, v)
		}
	}
	if len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want Redis alone", len(ss.Spec.Template.Spec.Containers))
	}
	c := ss.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction", "--requirepass $(REDIS_PASSWORD)"} {
		if !strings.Contains(args, want) {
			t.Errorf("Redis args %q lack %q", args, want)
		}
	}
	if !regexp.MustCompile(`--appendfsync (always|everysec)`).MatchString(args) {
		t.Errorf("Redis args %q: want --appendfsync always or everysec", args)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool { return m.MountPath == "/data" }) ||
		!slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(v struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}) bool {
			return slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool { return m.Name == v.Metadata.Name && m.MountPath == "/data" })
		}) {
		t.Error("Redis's /data is not a persistent volume claim: the append-only file would not survive the pod")
	}
	pod := ss.Spec.Template.Spec.SecurityContext
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
		t.Error("Redis pod securityContext.runAsNonRoot is not true")
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("Redis container: want a read-only root and no privilege escalation")
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("Redis has no memory limit")
	}
}

// TestComposeReplicas checks the replicas profile: Redis with an
// append-only file, three replicas on it, and a proxy in front of each.
func TestComposeReplicas(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
			Hostname    string            `yaml:"hostname"`
			Volumes     []struct {
				Type   string `yaml:"type"`
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	redis, ok := c.Services["redis"]
	if !ok || !slices.Contains(redis.Profiles, "replicas") {
		t.Fatal("no redis service in the replicas profile")
	}
	cmd := strings.Join(redis.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--maxmemory-policy noeviction") {
		t.Errorf("redis command %q: want an append-only file and noeviction", cmd)
	}
	if !slices.ContainsFunc(redis.Volumes, func(v struct {
		Type   string `yaml:"type"`
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	}) bool {
		_, declared := c.Volumes[v.Source]
		return v.Type == "volume" && v.Target == "/data" && declared
	}) {
		t.Error("redis's /data is not a named volume")
	}
	var replicas []string
	for name, svc := range c.Services {
		if svc.Environment["THREADGATE_REDIS_URL"] == "" {
			continue
		}
		replicas = append(replicas, name)
		if !slices.Contains(svc.Profiles, "replicas") {
			t.Errorf("%s: not in the replicas profile", name)
		}
		u, err := url.Parse(svc.Environment["THREADGATE_REDIS_URL"])
		if err != nil || u.Hostname() != "redis" {
			t.Errorf("%s: THREADGATE_REDIS_URL %q does not name the redis service", name, svc.Environment["THREADGATE_REDIS_URL"])
		}
		if svc.Hostname != name {
			t.Errorf("%s: hostname %q, want the service's name (it names the replica in logs)", name, svc.Hostname)
		}
		if _, ok := svc.Environment["PAGE_ACCESS_TOKEN"]; !ok {
			t.Errorf("%s: no PAGE_ACCESS_TOKEN: replicas on Redis cannot run the sandbox", name)
		}
	}
	if len(replicas) != 3 {
		t.Fatalf("replicas on Redis: %q, want 3", replicas)
	}
	proxy, ok := c.Services["proxy"]
	if !ok {
		t.Fatal("no proxy service")
	}
	var conf []byte
	for _, v := range proxy.Volumes {
		files, _ := filepath.Glob(filepath.Join(repoRoot, v.Source, "*.conf"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			conf = append(conf, b...)
		}
	}
	for _, r := range replicas {
		if !regexp.MustCompile(`(?m)^\s*server\s+` + regexp.QuoteMeta(r) + `:` + strconv.Itoa(listenPort) + `\b`).Match(conf) {
			t.Errorf("the proxy's configuration has no upstream server %s:%d", r, listenPort)
		}
	}
	if !bytes.Contains(conf, []byte("http_503")) {
		t.Error("the proxy does not try the next replica on 503 (a replica stopping or without Redis)")
	}
}

// TestReplicasDropTheDataDir checks that the overlay removes what the base
// has of a data dir (its variable, mount, volume and claim) and its
// Recreate strategy: --redis-url and --data-dir exclude each other, and a
// ReadWriteOnce claim cannot serve three replicas.
func TestReplicasDropTheDataDir(t *testing.T) {
	t.Parallel()
	var base deployment
	baseObj := one(t, loadObjects(t), "Deployment", &base)
	bc := threadgateContainer(t, &base)
	var baseVolumes struct {
		Spec struct {
			Template struct {
				Spec struct {
					Volumes []struct {
						Name                  string `yaml:"name"`
						PersistentVolumeClaim *struct {
							ClaimName string `yaml:"claimName"`
						} `yaml:"persistentVolumeClaim"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := baseObj.node.Decode(&baseVolumes); err != nil {
		t.Fatal(err)
	}
	objs := loadReplicaObjects(t)
	var patch struct {
		Spec struct {
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template struct {
				Spec struct {
					Containers []struct {
						Name         string           `yaml:"name"`
						Env          []map[string]any `yaml:"env"`
						VolumeMounts []map[string]any `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []map[string]any `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	one(t, objs, "Deployment", &patch)
	if patch.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("strategy %q, want RollingUpdate: replicas on Redis hand their partitions over one at a time", patch.Spec.Strategy.Type)
	}
	deleted := func(list []map[string]any, key, value string) bool {
		return slices.ContainsFunc(list, func(m map[string]any) bool { return m[key] == value && m["$patch"] == "delete" })
	}
	var pc *struct {
		Name         string           `yaml:"name"`
		Env          []map[string]any `yaml:"env"`
		VolumeMounts []map[string]any `yaml:"volumeMounts"`
	}
	for i := range patch.Spec.Template.Spec.Containers {
		if patch.Spec.Template.Spec.Containers[i].Name == "threadgate" {
			pc = &patch.Spec.Template.Spec.Containers[i]
		}
	}
	if pc == nil {
		t.Fatal("the patch has no threadgate container")
	}
	if envValue(bc, "THREADGATE_DATA_DIR") != "" && !deleted(pc.Env, "name", "THREADGATE_DATA_DIR") {
		t.Error("the base sets THREADGATE_DATA_DIR and the patch does not delete it: serve would refuse --redis-url with --data-dir")
	}
	claims := map[string]bool{}
	for _, v := range baseVolumes.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.PersistentVolumeClaim.ClaimName] = true
			if !deleted(patch.Spec.Template.Spec.Volumes, "name", v.Name) {
				t.Errorf("the base's volume %s (claim %s) is not deleted", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
			for _, m := range bc.VolumeMounts {
				if m.Name == v.Name && !deleted(pc.VolumeMounts, "mountPath", m.MountPath) {
					t.Errorf("the base's mount of %s at %s is not deleted", v.Name, m.MountPath)
				}
			}
		}
	}
	for claim := range claims {
		if !slices.ContainsFunc(objs, func(o object) bool {
			var m map[string]any
			return o.kind == "PersistentVolumeClaim" && o.name == claim && o.node.Decode(&m) == nil && m["$patch"] == "delete"
		}) {
			t.Errorf("the base's claim %s is not deleted", claim)
		}
	}
}
