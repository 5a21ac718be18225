package kube

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/lang"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t testing.TB, path string) *lang.Config {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	abs = stageLocalImages(t, abs)
	cfg, diags := lang.Load(abs, lang.WithCwd(filepath.Dir(abs)), lang.WithEnviron(nil))
	if diags.HasErrors() {
		t.Fatalf("%s: %s", path, diags.Error())
	}
	return cfg
}

// goldenExports are every example and the feature fixture, with the options they run with.
func goldenExports() []struct {
	name, path string
	opts       []Option
} {
	var out []struct {
		name, path string
		opts       []Option
	}
	examples, _ := filepath.Glob("../../examples/*/Sandboxfile")
	for _, p := range examples {
		out = append(out, struct {
			name, path string
			opts       []Option
		}{filepath.Base(filepath.Dir(p)), p, nil})
	}
	out = append(out, struct {
		name, path string
		opts       []Option
	}{"features", "testdata/features/Sandboxfile", nil}, struct {
		name, path string
		opts       []Option
	}{"features-pvc-noruntimeclass", "testdata/features/Sandboxfile", []Option{WithVolumes(VolumesPVC), WithRuntimeClass("")}})
	return out
}

// TestExportGolden exports every example and checks the manifests against golden files, then
// decodes each document strictly into its k8s.io/api type and validates names and labels.
func TestExportGolden(t *testing.T) {
	cases := goldenExports()
	if len(cases) < 5 {
		t.Fatalf("found %d cases; the examples are missing", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, copyProject(t, tc.path))
			res, err := Export(cfg, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			data, err := res.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			var notes bytes.Buffer
			for _, n := range res.Notes {
				fmt.Fprintf(&notes, "# note: %s\n", n)
			}
			// Host paths are this checkout's: the golden files say $PROJECT.
			got := bytes.ReplaceAll(append(notes.Bytes(), data...), []byte(cfg.Dir), []byte("$PROJECT"))
			golden := filepath.Join("testdata", tc.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := os.ReadFile(golden)
			if !bytes.Equal(got, want) {
				t.Errorf("differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			checkManifests(t, data)
		})
	}
}

// checkManifests decodes each document strictly and validates what the API server would.
func checkManifests(t *testing.T, data []byte) {
	t.Helper()
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Pod":
			obj = &corev1.Pod{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		case "v1/PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "networking.k8s.io/v1/NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "node.k8s.io/v1/RuntimeClass":
			obj = &nodev1.RuntimeClass{}
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("document %d (%s) does not decode strictly: %v", i, tm.Kind, err)
			continue
		}
		validate(t, obj)
	}
}

func validate(t *testing.T, obj any) {
	t.Helper()
	var errs field.ErrorList
	name := func(p *field.Path, n string, f func(string) []string) {
		for _, m := range f(n) {
			errs = append(errs, field.Invalid(p, n, m))
		}
	}
	meta := func(m metav1.ObjectMeta) {
		name(field.NewPath("metadata", "name"), m.Name, validation.IsDNS1123Label)
		errs = append(errs, metav1validation.ValidateLabels(m.Labels, field.NewPath("metadata", "labels"))...)
	}
	pod := func(p *field.Path, spec corev1.PodSpec, labels map[string]string) {
		errs = append(errs, metav1validation.ValidateLabels(labels, p.Child("labels"))...)
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			name(p.Child("containers", "name"), c.Name, validation.IsDNS1123Label)
			for _, e := range c.Env {
				name(p.Child("env"), e.Name, validation.IsEnvVarName)
			}
		}
		for _, v := range spec.Volumes {
			name(p.Child("volumes"), v.Name, validation.IsDNS1123Label)
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		meta(o.ObjectMeta)
		pod(field.NewPath("spec"), o.Spec, o.Labels)
	case *appsv1.Deployment:
		meta(o.ObjectMeta)
		errs = append(errs, metav1validation.ValidateLabels(o.Spec.Selector.MatchLabels, field.NewPath("spec", "selector"))...)
		pod(field.NewPath("spec", "template"), o.Spec.Template.Spec, o.Spec.Template.Labels)
		for k, v := range o.Spec.Selector.MatchLabels {
			if o.Spec.Template.Labels[k] != v {
				t.Errorf("deployment %s: selector %s=%s does not select its template", o.Name, k, v)
			}
		}
	case *corev1.Service:
		meta(o.ObjectMeta)
		name(field.NewPath("metadata", "name"), o.Name, validation.IsDNS1035Label)
		for _, p := range o.Spec.Ports {
			name(field.NewPath("spec", "ports", "name"), p.Name, validation.IsValidPortName)
		}
	case *corev1.Secret:
		meta(o.ObjectMeta)
		for k := range o.StringData {
			name(field.NewPath("stringData"), k, validation.IsConfigMapKey)
		}
	case *networkingv1.NetworkPolicy:
		meta(o.ObjectMeta)
		errs = append(errs, metav1validation.ValidateLabels(o.Spec.PodSelector.MatchLabels, field.NewPath("spec", "podSelector"))...)
	case *corev1.PersistentVolumeClaim:
		meta(o.ObjectMeta)
	case *nodev1.RuntimeClass:
		meta(o.ObjectMeta)
		name(field.NewPath("handler"), o.Handler, validation.IsDNS1123Label)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// copyProject copies the Sandboxfile's directory (files only, one level) into a temporary
// directory of the same name and returns the copy's Sandboxfile. The hello example's image is
// built by its Makefile: an empty OCI layout stands in for it, as export never reads it.
func copyProject(t *testing.T, path string) string {
	t.Helper()
	src := filepath.Dir(path)
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(filepath.Join(dst, "image"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := os.MkdirAll(filepath.Join(dst, e.Name()), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	layout := map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`}
	for name, content := range layout {
		p := filepath.Join(dst, "image", name)
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Join(dst, filepath.Base(path))
}

func hasNote(notes []convert.Note, subject, key, text string) bool {
	for _, n := range notes {
		if n.Subject == subject && n.Key == key && strings.Contains(n.Message, text) {
			return true
		}
	}
	return false
}

// TestExportFeatures checks the mappings one by one on the feature fixture.
func TestExportFeatures(t *testing.T) {
	cfg := load(t, "testdata/features/Sandboxfile")
	res, err := Export(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]any{}
	for _, f := range res.Files {
		for _, o := range f.Objects {
			data, _ := yaml.Marshal(o.Object)
			var tm metav1.TypeMeta
			var m metav1.ObjectMeta
			_ = yaml.Unmarshal(data, &tm)
			var wrap struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			_ = yaml.Unmarshal(data, &wrap)
			m = wrap.Metadata
			objs[tm.Kind+"/"+m.Name] = o.Object
		}
	}
	db, ok := objs["Deployment/my-db"].(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment my-db: %v", keys(objs))
	}
	c := db.Spec.Template.Spec.Containers[0]
	if *db.Spec.Replicas != 1 || *db.Spec.Template.Spec.RuntimeClassName != "krun" {
		t.Errorf("replicas/runtimeClass: %+v", db.Spec)
	}
	if c.Resources.Limits.Memory().String() != "768Mi" || c.Resources.Requests.Cpu().String() != "1" {
		t.Errorf("resources = %+v", c.Resources)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != 5432 || c.ReadinessProbe.PeriodSeconds != 2 {
		t.Errorf("readiness = %+v", c.ReadinessProbe)
	}
	if v := db.Spec.Template.Spec.Volumes[0]; v.HostPath == nil || !strings.HasSuffix(v.HostPath.Path, "/data") {
		t.Errorf("volume = %+v", v)
	}
	for _, e := range c.Env {
		if e.Name == "POSTGRES_PASSWORD" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "my-db-env") {
			t.Errorf("POSTGRES_PASSWORD is not from the Secret: %+v", e)
		}
	}
	if s, ok := objs["Secret/my-db-env"].(*corev1.Secret); !ok || s.StringData["POSTGRES_PASSWORD"] != "dev" {
		t.Errorf("secret = %+v", objs["Secret/my-db-env"])
	}
	if !hasNote(res.Notes, "My_DB", "name", `"my-db"`) || !hasNote(res.Notes, "My_DB", "user", "runAsUser") {
		t.Errorf("notes = %v", res.Notes)
	}
	svc := objs["Service/my-db"].(*corev1.Service)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5432 || svc.Spec.Ports[0].TargetPort.IntValue() != 5432 {
		t.Errorf("service = %+v", svc.Spec)
	}

	w := objs["Deployment/worker"].(*appsv1.Deployment)
	wc := w.Spec.Template.Spec.Containers[0]
	if strings.Join(wc.Command, " ") != "/bin/worker" || strings.Join(wc.Args, " ") != "$(SBX_COMMAND_0) $(SBX_COMMAND_1) $(SBX_COMMAND_2) $(SBX_COMMAND_3) $(SBX_COMMAND_4) $(SBX_COMMAND_5)" {
		t.Errorf("sensitive command not through the Secret: %q %q", wc.Command, wc.Args)
	}
	ws := objs["Secret/worker-env"].(*corev1.Secret)
	if ws.StringData["SBX_COMMAND_1"] != "s3cr3t" || ws.StringData["SBX_COMMAND_3"] != "my-db:5432" || ws.StringData["SBX_COMMAND_5"] != "$(HOME)" {
		t.Errorf("worker secret = %v", ws.StringData)
	}
	if sc := wc.SecurityContext; sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || wc.WorkingDir != "/srv" {
		t.Errorf("securityContext %+v workdir %q", sc, wc.WorkingDir)
	}
	if p := wc.ReadinessProbe; p == nil || p.HTTPGet.Path != "/ready?full=1" || p.HTTPGet.Port.IntValue() != 8443 || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("http probe = %+v", p)
	}
	if !hasNote(res.Notes, "worker", "rlimits", "") {
		t.Errorf("no rlimits note: %v", res.Notes)
	}

	lg, ok := objs["Pod/logger"].(*corev1.Pod)
	if !ok || lg.Spec.RestartPolicy != corev1.RestartPolicyNever || len(lg.Spec.InitContainers) != 0 {
		t.Fatalf("logger = %+v", objs["Pod/logger"])
	}
	if !hasNote(res.Notes, "logger", "ready.log", "no Kubernetes equivalent") || !hasNote(res.Notes, "logger", "depends_on.My_DB", "cannot reach") {
		t.Errorf("notes = %v", res.Notes)
	}
	if np := objs["NetworkPolicy/logger"].(*networkingv1.NetworkPolicy); len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("none policy = %+v", np.Spec)
	}

	edge := objs["Pod/edge"].(*corev1.Pod)
	if len(edge.Spec.InitContainers) != 1 || edge.Spec.InitContainers[0].Name != "wait-for-my-db" || !strings.Contains(edge.Spec.InitContainers[0].Command[2], "nc -z -w 2 my-db 5432") {
		t.Errorf("edge init containers = %+v", edge.Spec.InitContainers)
	}
	if !hasNote(res.Notes, "edge", "depends_on.worker", "cannot reach") || !hasNote(res.Notes, "edge", "watch", "") {
		t.Errorf("notes = %v", res.Notes)
	}
	if _, ok := objs["NetworkPolicy/edge"]; ok {
		t.Error("scope any got a NetworkPolicy")
	}
	if _, ok := objs["RuntimeClass/krun"].(*nodev1.RuntimeClass); !ok {
		t.Error("no RuntimeClass")
	}
	if got := res.Files[0].Name; got != "00-runtimeclass" {
		t.Errorf("first file %q", got)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDNSLabel(t *testing.T) {
	for in, want := range map[string]string{
		"web": "web", "My_DB": "my-db", "1st": "s-1st", "a--b": "a-b", "-x-": "x",
		strings.Repeat("a", 70): strings.Repeat("a", 44) + "-" + dnsLabel(strings.Repeat("a", 70))[45:],
	} {
		got := dnsLabel(in)
		if got != want || len(validation.IsDNS1035Label(got)) > 0 {
			t.Errorf("dnsLabel(%q) = %q, want %q", in, got, want)
		}
	}
	if dnsLabel(strings.Repeat("a", 70)) == dnsLabel(strings.Repeat("a", 71)) {
		t.Error("long names collide")
	}
}

func TestOptions(t *testing.T) {
	if _, err := Export(&lang.Config{}, WithRuntimeClass("Bad Name")); err == nil {
		t.Error("bad runtime class accepted")
	}
	if _, err := Export(&lang.Config{}, WithVolumes("nfs")); err == nil {
		t.Error("bad volume mode accepted")
	}
	if _, err := Export(&lang.Config{}); err == nil || !strings.Contains(err.Error(), "no sandboxes") {
		t.Errorf("err = %v", err)
	}
}

var layoutRE = regexp.MustCompile(`"oci-layout:(\./[^":@]+)`)

// stageLocalImages copies the project of a Sandboxfile whose oci-layout: images are not built
// (examples/hello's ./image comes from make) to a temporary directory, with an empty OCI layout
// standing in for each, since lang checks local image sources exist. Other files are used as
// they are.
func stageLocalImages(t testing.TB, sandboxfile string) string {
	t.Helper()
	text, err := os.ReadFile(sandboxfile)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Dir(sandboxfile)
	missing := false
	for _, m := range layoutRE.FindAllStringSubmatch(string(text), -1) {
		if _, err := os.Stat(filepath.Join(src, m[1], "oci-layout")); err != nil {
			missing = true
		}
	}
	if !missing {
		return sandboxfile
	}
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	for _, m := range layoutRE.FindAllStringSubmatch(string(text), -1) {
		dir := filepath.Join(dst, m[1])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, content := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Join(dst, filepath.Base(sandboxfile))
}
