package kubernetes_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dataDir is where the image, compose.yaml and the Deployment keep
// threadgate's data dir.
const dataDir = "/var/lib/threadgate"

// claimVolume is a pod volume that may come from a PersistentVolumeClaim.
type claimVolume struct {
	Name                  string `yaml:"name"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

// TestDeploymentDataDirOnAVolumeClaim checks that the Deployment runs with a
// data dir on a PersistentVolumeClaim that only one pod uses at a time: one
// replica, strategy Recreate (a rolling update would start a second pod
// while the first holds the file's lock), a ReadWriteOnce claim, and a pod
// group that may write the volume.
func TestDeploymentDataDirOnAVolumeClaim(t *testing.T) {
	objs := loadObjects(t)
	var d struct {
		Spec struct {
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template struct {
				Spec struct {
					SecurityContext struct {
						FSGroup *int `yaml:"fsGroup"`
					} `yaml:"securityContext"`
					Volumes []claimVolume `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	one(t, objs, "Deployment", &d)
	var full deployment
	one(t, objs, "Deployment", &full)
	c := threadgateContainer(t, &full)

	if d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("strategy %q, want Recreate: the data file is locked by the pod that has it open", d.Spec.Strategy.Type)
	}
	if r := d.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("replicas = %v, want 1", r)
	}
	if g := d.Spec.Template.Spec.SecurityContext.FSGroup; g == nil || *g == 0 {
		t.Error("no non-zero fsGroup: the non-root user could not write the volume")
	}
	i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "THREADGATE_DATA_DIR" })
	if i < 0 || c.Env[i].Value == nil {
		t.Fatal("THREADGATE_DATA_DIR is not set to a value")
	}
	dir := *c.Env[i].Value
	j := slices.IndexFunc(c.VolumeMounts, func(m volumeMount) bool { return m.MountPath == dir })
	if j < 0 {
		t.Fatalf("nothing is mounted at THREADGATE_DATA_DIR %s", dir)
	}
	if c.VolumeMounts[j].ReadOnly || c.VolumeMounts[j].SubPath != "" {
		t.Errorf("the data volume is mounted read-only or with a subPath: %+v", c.VolumeMounts[j])
	}
	k := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v claimVolume) bool { return v.Name == c.VolumeMounts[j].Name })
	if k < 0 || d.Spec.Template.Spec.Volumes[k].PersistentVolumeClaim == nil {
		t.Fatalf("volume %q is not a persistentVolumeClaim", c.VolumeMounts[j].Name)
	}
	claim := d.Spec.Template.Spec.Volumes[k].PersistentVolumeClaim.ClaimName

	var pvc struct {
		Spec struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	}
	obj := one(t, objs, "PersistentVolumeClaim", &pvc)
	if obj.name != claim {
		t.Errorf("the Deployment claims %q, the claim is %q", claim, obj.name)
	}
	if !slices.Equal(pvc.Spec.AccessModes, []string{"ReadWriteOnce"}) {
		t.Errorf("accessModes %q, want [ReadWriteOnce]", pvc.Spec.AccessModes)
	}
	if pvc.Spec.Resources.Requests["storage"] == "" {
		t.Error("the claim requests no storage")
	}
}

// TestComposeDataDirOnANamedVolume checks that compose.yaml keeps the data
// dir on a named volume, declared at the top level.
func TestComposeDataDirOnANamedVolume(t *testing.T) {
	svc := loadCompose(t).Services["threadgate"]
	dir := svc.Environment["THREADGATE_DATA_DIR"]
	if dir == "" {
		dir = dataDir // the image's default
	}
	i := -1
	for n, v := range svc.Volumes {
		if v.Target == dir {
			i = n
		}
	}
	if i < 0 {
		t.Fatalf("nothing is mounted at the data dir %s", dir)
	}
	v := svc.Volumes[i]
	if v.Type != "volume" || v.ReadOnly {
		t.Errorf("the data dir is a %s mount (read-only %v), want a writable named volume", v.Type, v.ReadOnly)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if _, ok := top.Volumes[v.Source]; !ok {
		t.Errorf("the volume %q is not declared under the top-level volumes:", v.Source)
	}
}

// TestDockerfileDataDir checks that the image sets THREADGATE_DATA_DIR, makes
// it a volume, and gives it to the user the image runs as.
func TestDockerfileDataDir(t *testing.T) {
	ins := parseDockerfile(t)
	last := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	final := ins[last:]
	var env, vol, cp, user string
	for _, in := range final {
		switch in.cmd {
		case "ENV":
			env += in.args + "\n"
		case "VOLUME":
			vol += in.args + "\n"
		case "COPY":
			cp += in.args + "\n"
		case "USER":
			user = in.args
		}
	}
	if !regexp.MustCompile(`(^|\s)THREADGATE_DATA_DIR=` + regexp.QuoteMeta(dataDir) + `(\s|$)`).MatchString(env) {
		t.Errorf("ENV does not set THREADGATE_DATA_DIR=%s: %q", dataDir, env)
	}
	if !strings.Contains(vol, dataDir) {
		t.Errorf("VOLUME %q does not name %s", vol, dataDir)
	}
	owner := regexp.MustCompile(`--chown=(\S+)\s.*\s` + regexp.QuoteMeta(dataDir) + `\s*$`)
	found := false
	for line := range strings.SplitSeq(cp, "\n") {
		if m := owner.FindStringSubmatch(line); m != nil {
			found = true
			if m[1] != user {
				t.Errorf("%s is owned by %s, the image runs as %s", dataDir, m[1], user)
			}
		}
	}
	if !found {
		t.Errorf("no COPY --chown creates %s for the image's user: %q", dataDir, cp)
	}
}
