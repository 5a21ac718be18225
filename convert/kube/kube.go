// Package kube exports a loaded Sandboxfile as Kubernetes manifests, built from the k8s.io/api
// types and written with sigs.k8s.io/yaml: per sandbox a Deployment (or a Pod when it is not
// restarted), a Service for its ports, a NetworkPolicy for its network scope and a Secret for
// its sensitive variables, with a RuntimeClass that runs them in krun microVMs.
//
// What a cluster cannot express (a readiness probe over the console log, rlimits, watch) is
// reported in Notes, never dropped silently.
package kube

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/lang/imageref"
)

// Volume modes for WithVolumes.
const (
	VolumesHostPath = "hostpath"
	VolumesPVC      = "pvc"
)

// Label keys. The app.kubernetes.io set is Kubernetes' recommended one; GroupLabel marks the
// members of a network group, which NetworkPolicies select.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"
	GroupLabel     = "sbx.dev/group"
)

// WaitImage runs the init containers that wait for a dependency.
const WaitImage = "docker.io/library/busybox:1.36"

// Option configures Export.
type Option func(*options) error

type options struct {
	runtimeClass string
	volumes      string
}

// WithRuntimeClass names the RuntimeClass the pods run with (default "krun"); "" leaves
// runtimeClassName out, and no RuntimeClass manifest is written.
func WithRuntimeClass(name string) Option {
	return func(o *options) error {
		if name != "" && name != dnsLabel(name) {
			return fmt.Errorf("runtime class %q: use a DNS label (lower-case letters, digits and '-')", name)
		}
		o.runtimeClass = name
		return nil
	}
}

// WithVolumes chooses how mounts become volumes: VolumesHostPath (the default: the same host
// directory, which only works on a one-node cluster) or VolumesPVC (a PersistentVolumeClaim
// each, what a real cluster wants).
func WithVolumes(mode string) Option {
	return func(o *options) error {
		if mode != VolumesHostPath && mode != VolumesPVC {
			return fmt.Errorf("volumes %q: use %s or %s", mode, VolumesHostPath, VolumesPVC)
		}
		o.volumes = mode
		return nil
	}
}

// Object is one manifest with the comment lines written above it.
type Object struct {
	Comments []string
	Object   any // a k8s.io/api object with its TypeMeta set
}

// File is a group of manifests written together: the RuntimeClass, the named volumes' claims,
// or one sandbox's objects.
type File struct {
	// Name is the file name without ".yaml": the sandbox's DNS name, or 00-runtimeclass and
	// 01-volumes, which no sandbox can be named (they start with a digit) and which sort first.
	Name    string
	Objects []Object
}

// Result is the exported manifests and what could not be carried over.
type Result struct {
	Files []File
	Notes []convert.Note
}

// Bytes writes a file as YAML documents separated by "---", comments above each.
func (f File) Bytes() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range f.Objects {
		if i > 0 {
			b.WriteString("---\n")
		}
		for _, c := range o.Comments {
			b.WriteString(strings.TrimRight("# "+c, " ") + "\n")
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", f.Name, err)
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Bytes writes every file as one stream of YAML documents.
func (r *Result) Bytes() ([]byte, error) {
	var b bytes.Buffer
	for i, f := range r.Files {
		if i > 0 {
			b.WriteString("---\n")
		}
		data, err := f.Bytes()
		if err != nil {
			return nil, err
		}
		b.Write(data)
	}
	return b.Bytes(), nil
}

type exporter struct {
	cfg     *lang.Config
	opts    options
	notes   []convert.Note
	project string            // label value
	names   map[string]string // sandbox → DNS name
	service map[string]bool   // sandboxes that get a Service
	ips     map[string]string // group IP → DNS name of its sandbox's Service
}

func (e *exporter) note(subject, key, format string, args ...any) {
	e.notes = append(e.notes, convert.Note{Subject: subject, Key: key, Message: fmt.Sprintf(format, args...)})
}

// Export converts cfg, a Sandboxfile loaded without errors.
func Export(cfg *lang.Config, opts ...Option) (*Result, error) {
	o := options{runtimeClass: "krun", volumes: VolumesHostPath}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if cfg == nil || len(cfg.Sandboxes) == 0 {
		return nil, errors.New("export: the Sandboxfile declares no sandboxes")
	}
	e := &exporter{cfg: cfg, opts: o, names: map[string]string{}, service: map[string]bool{}, ips: map[string]string{}}
	e.project = labelValue(cfg.Project.Name)
	if e.project != cfg.Project.Name {
		e.note("", "project.name", "%q is written as the label value %q", cfg.Project.Name, e.project)
	}
	used := map[string]bool{}
	for _, sb := range cfg.Sandboxes {
		n := dnsLabel(sb.Name)
		for i := 2; used[n]; i++ {
			n = dnsLabel(fmt.Sprintf("%s-%d", sb.Name, i))
		}
		used[n] = true
		e.names[sb.Name] = n
		if n != sb.Name {
			e.note(sb.Name, "name", "named %q in the cluster: Kubernetes names are DNS labels (lower-case letters, digits and '-', starting with a letter)", n)
		}
		if len(sb.Ports) > 0 {
			e.service[sb.Name] = true
		}
	}
	for _, edge := range cfg.Edges {
		e.service[edge.To] = true
	}
	for _, sb := range cfg.Sandboxes {
		if e.service[sb.Name] && sb.Network.IP.IsValid() {
			e.ips[sb.Network.IP.String()] = e.names[sb.Name]
		}
	}
	res := &Result{}
	if o.runtimeClass != "" {
		res.Files = append(res.Files, File{Name: "00-runtimeclass", Objects: []Object{{
			Comments: []string{
				"A cluster-admin step, once per cluster: pods with runtimeClassName: " + o.runtimeClass + " run in",
				"libkrun microVMs through crun's krun handler, which every node must have (crun built",
				"with libkrun, and a " + "\"krun\" runtime handler in the CRI-O or containerd configuration).",
				"Export with --runtime-class=\"\" to run the pods without it.",
			},
			Object: &nodev1.RuntimeClass{
				TypeMeta:   metav1.TypeMeta{APIVersion: "node.k8s.io/v1", Kind: "RuntimeClass"},
				ObjectMeta: metav1.ObjectMeta{Name: o.runtimeClass, Labels: map[string]string{LabelManagedBy: "sbx"}},
				Handler:    "krun",
			},
		}}})
	}
	if len(cfg.Volumes) > 0 {
		vf := File{Name: "01-volumes"}
		for _, v := range cfg.Volumes {
			users := 0
			for _, sb := range cfg.Sandboxes {
				for _, m := range sb.Mounts {
					if m.Volume == v.Name {
						users++
						break
					}
				}
			}
			comments := []string{fmt.Sprintf("Named volume %s: a claim that outlives the pods, as the volume outlives sbx down.", v.Name)}
			if users > 1 {
				comments = append(comments, fmt.Sprintf("%d sandboxes mount it: with ReadWriteOnce their pods must share a node; use a ReadWriteMany storage class otherwise.", users))
			}
			vf.Objects = append(vf.Objects, Object{Comments: comments, Object: &corev1.PersistentVolumeClaim{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: volumeClaim(v.Name), Labels: map[string]string{LabelPartOf: e.project, LabelManagedBy: "sbx"}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}})
			if n := volumeClaim(v.Name); n != v.Name {
				e.note("", "volume."+v.Name, "its claim is named %q: Kubernetes names are DNS labels", n)
			}
		}
		res.Files = append(res.Files, vf)
	}
	for _, sb := range cfg.Sandboxes {
		res.Files = append(res.Files, e.sandbox(sb))
	}
	convert.SortNotes(e.notes)
	res.Notes = e.notes
	return res, nil
}

func (e *exporter) labels(sb *lang.Sandbox) map[string]string {
	n := e.names[sb.Name]
	l := map[string]string{
		LabelName:      n,
		LabelInstance:  labelValue(e.project + "-" + n),
		LabelPartOf:    e.project,
		LabelManagedBy: "sbx",
		LabelComponent: "sandbox",
	}
	if sb.Network.Group != "" {
		l[GroupLabel] = labelValue(sb.Network.Group)
	}
	return l
}

func (e *exporter) selector(sb *lang.Sandbox) map[string]string {
	return map[string]string{LabelName: e.names[sb.Name], LabelPartOf: e.project}
}

func (e *exporter) meta(sb *lang.Sandbox, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: e.labels(sb)}
}

// sandboxExport is the export of one sandbox under way: its file, and the values that go to
// its Secret.
type sandboxExport struct {
	*exporter
	sb     *lang.Sandbox
	name   string
	file   File
	secret map[string]string
}

// sensitive reports whether the field derives from a sensitive variable.
func (x *sandboxExport) sensitive(field string) bool {
	for _, s := range x.sb.Sensitive {
		if s == field {
			return true
		}
	}
	return false
}

func (e *exporter) sandbox(sb *lang.Sandbox) File {
	x := &sandboxExport{exporter: e, sb: sb, name: e.names[sb.Name], secret: map[string]string{}}
	x.file.Name = x.name
	c := x.container()
	x.env(&c)
	x.secretObject(&c)
	x.unmappable()
	pod := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr(int64(math.Ceil(sb.StopTimeout.Seconds()))),
		EnableServiceLinks:            ptr(false),
	}
	if e.opts.runtimeClass != "" {
		pod.RuntimeClassName = ptr(e.opts.runtimeClass)
	}
	x.volumes(&c, &pod)
	pod.InitContainers = e.waits(sb)
	pod.Containers = []corev1.Container{c}
	x.file.Objects = append(x.file.Objects, x.workload(pod))
	if e.service[sb.Name] {
		x.file.Objects = append(x.file.Objects, e.serviceFor(sb))
	}
	if np := e.policy(sb); np != nil {
		x.file.Objects = append(x.file.Objects, *np)
	}
	return x.file
}

// container maps the process: image, command, working directory, ports, resources, user and
// readiness probe.
func (x *sandboxExport) container() corev1.Container {
	sb := x.sb
	c := corev1.Container{Name: x.name, Image: sb.Image, WorkingDir: sb.Workdir}
	switch {
	case x.sensitive("image"):
		c.Image = ""
		x.note(sb.Name, "image", "derives from a sensitive variable: left out; set it by hand")
	case imageref.IsLocal(sb.Image):
		x.note(sb.Name, "image", "%s is a local image a cluster cannot pull: push it to a registry and set image", sb.Image)
	}
	if x.sensitive("workdir") {
		c.WorkingDir = ""
		x.note(sb.Name, "workdir", "derives from a sensitive variable: left out; set it by hand")
	}
	c.Command = x.argv("entrypoint", sb.Entrypoint)
	c.Args = x.argv("command", sb.Command)
	seenPort := map[corev1.ContainerPort]bool{}
	for _, p := range sb.Ports {
		cp := corev1.ContainerPort{ContainerPort: int32(p.Guest), Protocol: protocol(p.Protocol)}
		if !seenPort[cp] {
			seenPort[cp] = true
			c.Ports = append(c.Ports, cp)
		}
	}
	cpu := resource.MustParse(strconv.Itoa(max(1, sb.CPUs)))
	mem := resource.MustParse(fmt.Sprintf("%dMi", max(1, sb.MemoryMiB)))
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem},
	}
	if sb.User != "" {
		if x.sensitive("user") {
			x.note(sb.Name, "user", "derives from a sensitive variable: left out; set runAsUser by hand")
		} else if uid, gid, ok := numericUser(sb.User); ok {
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: &uid}
			if gid >= 0 {
				c.SecurityContext.RunAsGroup = &gid
			}
		} else {
			x.note(sb.Name, "user", "%q is a name; runAsUser needs a number: set it by hand (id -u %s in the image)", sb.User, sb.User)
		}
	}
	if r := sb.Ready; r != nil {
		c.ReadinessProbe = readinessProbe(r)
		if r.Log != "" {
			x.note(sb.Name, "ready.log", "a probe over the console log has no Kubernetes equivalent: no readinessProbe; add an exec or http probe by hand")
		}
	}
	return c
}

// argv maps a command line. Kubernetes expands $(VAR) in command and args: what the
// Sandboxfile meant literally is escaped, and sensitive arguments come from the Secret through
// such references.
func (x *sandboxExport) argv(field string, list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, a := range list {
		if x.sensitive(field) {
			key := fmt.Sprintf("SBX_%s_%d", strings.ToUpper(field), i)
			x.secret[key] = x.rewriteIPs(a)
			out[i] = "$(" + key + ")"
			continue
		}
		out[i] = strings.ReplaceAll(x.rewriteIPs(a), "$(", "$$(")
	}
	return out
}

// env maps the environment; sensitive values, and those whose names say they are secrets, go
// to the Secret.
func (x *sandboxExport) env(c *corev1.Container) {
	names := make([]string, 0, len(x.sb.Env))
	for k := range x.sb.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if msgs := validation.IsEnvVarName(k); len(msgs) > 0 {
			x.note(x.sb.Name, "env."+k, "not a Kubernetes variable name (%s): left out", msgs[0])
			continue
		}
		if x.sensitive("env."+k) || looksSecret(k) {
			x.secret[k] = x.rewriteIPs(x.sb.Env[k])
			continue
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: x.rewriteIPs(x.sb.Env[k])})
	}
}

// secretObject writes the Secret, when there is anything for it, and the container's
// references to it.
func (x *sandboxExport) secretObject(c *corev1.Container) {
	if len(x.secret) == 0 {
		return
	}
	secretName := x.name + "-env"
	keys := make([]string, 0, len(x.secret))
	for k := range x.secret {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if validSecretKey(k) {
			c.Env = append(c.Env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: k}}})
		}
	}
	// Arguments reference variables defined before them: the Secret's come first.
	sort.SliceStable(c.Env, func(i, j int) bool { return c.Env[i].ValueFrom != nil && c.Env[j].ValueFrom == nil })
	x.file.Objects = append(x.file.Objects, Object{
		Comments: []string{"Sensitive values of sandbox " + x.sb.Name + ": kept out of the workload. Keep this file out of version control,", "or create the Secret by other means (kubectl create secret, an external secrets operator)."},
		Object: &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: x.meta(x.sb, secretName),
			Type:       corev1.SecretTypeOpaque,
			StringData: x.secret,
		},
	})
}

// readinessProbe maps a tcp or http ready block; a log probe has no equivalent (nil).
func readinessProbe(r *lang.Ready) *corev1.Probe {
	period := int32(max(1, math.Ceil(r.Interval.Seconds())))
	switch {
	case r.TCP != 0:
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(r.TCP))}}, PeriodSeconds: period}
	case r.HTTP != "":
		u, err := url.Parse(r.HTTP)
		if err != nil {
			return nil
		}
		port, scheme := 80, corev1.URISchemeHTTP
		if u.Scheme == "https" {
			port, scheme = 443, corev1.URISchemeHTTPS
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			port = p
		}
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: u.RequestURI(), Port: intstr.FromInt32(int32(port)), Scheme: scheme}}, PeriodSeconds: period}
	}
	return nil
}

// unmappable notes what a pod spec cannot say.
func (x *sandboxExport) unmappable() {
	sb := x.sb
	if len(sb.Rlimits) > 0 {
		x.note(sb.Name, "rlimits", "no equivalent in a pod spec: set them in the image's entrypoint (ulimit) or the node's runtime")
	}
	if sb.Pids != 0 && sb.Pids != lang.DefaultPids {
		x.note(sb.Name, "pids", "no equivalent in a pod spec: the kubelet's podPidsLimit applies")
	}
	if sb.Watch != nil {
		x.note(sb.Name, "watch", "no equivalent: a cluster does not watch host paths")
	}
}

// volumes maps the mounts: a named volume's claim, a hostPath, or (--volumes pvc) a claim of
// the sandbox's own.
func (x *sandboxExport) volumes(c *corev1.Container, pod *corev1.PodSpec) {
	for i, m := range x.sb.Mounts {
		vol := fmt.Sprintf("mount-%d", i)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: m.Target, ReadOnly: m.ReadOnly})
		var src corev1.VolumeSource
		switch {
		case m.Volume != "":
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: volumeClaim(m.Volume), ReadOnly: m.ReadOnly}
		case x.sensitive(fmt.Sprintf("mounts[%d].source", i)):
			x.note(x.sb.Name, fmt.Sprintf("mounts[%d]", i), "its source derives from a sensitive variable: an emptyDir stands in; set the volume by hand")
			src.EmptyDir = &corev1.EmptyDirVolumeSource{}
		case x.opts.volumes == VolumesPVC:
			claim := fmt.Sprintf("%s-%d", x.name, i)
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: m.ReadOnly}
			x.file.Objects = append(x.file.Objects, Object{
				Comments: []string{fmt.Sprintf("Mounted at %s in %s; on this machine it was %s. Copy its content in after the claim is bound.", m.Target, x.sb.Name, m.Source)},
				Object: &corev1.PersistentVolumeClaim{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
					ObjectMeta: x.meta(x.sb, claim),
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					},
				},
			})
		default:
			src.HostPath = &corev1.HostPathVolumeSource{Path: m.Source}
		}
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: vol, VolumeSource: src})
	}
}

// workload is a Deployment of one replica, or a bare Pod for restart = "no".
func (x *sandboxExport) workload(pod corev1.PodSpec) Object {
	sb := x.sb
	comments := []string{fmt.Sprintf("Sandbox %s (%s).", sb.Name, scopeText(sb.Network))}
	hostPaths := false
	for _, m := range sb.Mounts {
		hostPaths = hostPaths || m.Volume == ""
	}
	if hostPaths && x.opts.volumes == VolumesHostPath {
		comments = append(comments, "Its mounts are hostPath volumes: they only work where the node is this machine. A",
			"PersistentVolumeClaim is what a cluster wants: export with --volumes pvc.")
	}
	if sb.Restart == lang.RestartNo {
		pod.RestartPolicy = corev1.RestartPolicyNever
		return Object{Comments: append(comments, "restart = \"no\": a bare Pod, run once."), Object: &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: x.meta(sb, x.name),
			Spec:       pod,
		}}
	}
	pod.RestartPolicy = corev1.RestartPolicyAlways
	if sb.Restart == lang.RestartOnFailure {
		comments = append(comments, "restart = \"on-failure\": a Deployment restarts it after any exit.")
	}
	return Object{Comments: comments, Object: &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: x.meta(sb, x.name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: x.selector(sb)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: x.labels(sb)}, Spec: pod},
		},
	}}
}

func (e *exporter) serviceFor(sb *lang.Sandbox) Object {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: e.meta(sb, e.names[sb.Name]),
		Spec:       corev1.ServiceSpec{Selector: e.selector(sb)},
	}
	comment := "The ports it publishes, by their numbers inside the sandbox: what other sandboxes connect to."
	if len(sb.Ports) == 0 {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		comment = "Headless: it publishes no port, but other sandboxes refer to it or wait for it; its name resolves once it is ready."
	}
	seen := map[string]bool{}
	for _, p := range sb.Ports {
		name := fmt.Sprintf("%s-%d", strings.ToLower(string(protocol(p.Protocol))), p.Guest)
		if seen[name] {
			continue
		}
		seen[name] = true
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name:       name,
			Port:       int32(p.Guest),
			TargetPort: intstr.FromInt32(int32(p.Guest)),
			Protocol:   protocol(p.Protocol),
		})
	}
	for _, p := range sb.Ports {
		if p.HostIP != "127.0.0.1" && p.HostIP != "::1" {
			comment += " A port published beyond this machine (" + p.HostIP + ") would want a LoadBalancer or an Ingress."
			break
		}
	}
	return Object{Comments: []string{comment}, Object: svc}
}

// waits are the init containers that hold a pod until each dependency's Service answers, as
// sbx up holds a sandbox until its dependencies are ready.
func (e *exporter) waits(sb *lang.Sandbox) []corev1.Container {
	var out []corev1.Container
	for _, dep := range e.cfg.Dependencies(sb.Name) {
		d := e.cfg.Sandbox(dep)
		if d == nil {
			continue
		}
		if !reachable(sb, d) {
			e.note(sb.Name, "depends_on."+dep, "no init container waits for %s: with network scope %s it cannot reach %s under the NetworkPolicies written here", dep, sb.Network.Scope, dep)
			continue
		}
		svc := e.names[dep]
		var script string
		if len(d.Ports) == 0 {
			script = fmt.Sprintf("until nslookup %s >/dev/null 2>&1; do echo waiting for %s; sleep 2; done", svc, svc)
		} else {
			port := d.Ports[0].Guest
			if d.Ready != nil && d.Ready.TCP != 0 {
				for _, p := range d.Ports {
					if p.Guest == d.Ready.TCP {
						port = p.Guest
					}
				}
			}
			script = fmt.Sprintf("until nc -z -w 2 %s %d; do echo waiting for %s; sleep 2; done", svc, port, svc)
		}
		out = append(out, corev1.Container{
			Name:    dnsLabel("wait-for-" + svc),
			Image:   WaitImage,
			Command: []string{"sh", "-c", script},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
		})
	}
	return out
}

// reachable reports whether src may connect to dst under the policies policy writes: dst
// accepts its group's members on every port and anyone on its published ports; src may reach
// everything with scope any, and its group's members otherwise.
func reachable(src, dst *lang.Sandbox) bool {
	if src.Network.Scope == lang.ScopeNone || dst.Network.Scope == lang.ScopeNone {
		return false
	}
	if src.Network.Group != "" && src.Network.Group == dst.Network.Group {
		return true
	}
	return src.Network.Scope == lang.ScopeAny && (len(dst.Ports) > 0 || dst.Network.Scope == lang.ScopeAny)
}

// privateRanges are what scope public keeps a sandbox from: private, loopback, link-local and
// CGNAT ranges, and their IPv6 counterparts.
var privateRanges4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8"}
var privateRanges6 = []string{"fc00::/7", "fe80::/10", "::1/128"}

// dnsPeer is the cluster's DNS service, which every scope but none may ask: sandboxes find
// each other's Services by name.
func dnsPeer() networkingv1.NetworkPolicyEgressRule {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	port := intstr.FromInt32(53)
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
	}
}

// policy writes the NetworkPolicy of a sandbox's scope: none denies everything; group allows
// its group's members, both ways; public adds egress to the internet without the private
// ranges; any has no policy. Every scope but none accepts connections to its published ports.
func (e *exporter) policy(sb *lang.Sandbox) *Object {
	scope := sb.Network.Scope
	if scope == lang.ScopeAny {
		return nil
	}
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: e.meta(sb, e.names[sb.Name]),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: e.selector(sb)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	comments := []string{"Network scope " + scope + ": " + scopeText(sb.Network) + "."}
	if scope == lang.ScopeNone {
		if len(sb.Ports) > 0 {
			e.note(sb.Name, "ports", "scope none denies all traffic in the cluster: its Service will not answer")
		}
		return &Object{Comments: comments, Object: np}
	}
	if g := sb.Network.Group; g != "" {
		peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelPartOf: e.project, GroupLabel: labelValue(g)}}}
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{peer}})
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{peer}})
	}
	if len(sb.Ports) > 0 {
		var ports []networkingv1.NetworkPolicyPort
		for _, p := range sb.Ports {
			proto := protocol(p.Protocol)
			port := intstr.FromInt32(int32(p.Guest))
			ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
		}
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: ports})
	}
	np.Spec.Egress = append(np.Spec.Egress, dnsPeer())
	if scope == lang.ScopePublic {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: privateRanges4}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: privateRanges6}},
		}})
	}
	return &Object{Comments: comments, Object: np}
}

func scopeText(n lang.NetworkSpec) string {
	switch n.Scope {
	case lang.ScopeNone:
		return "no network at all"
	case lang.ScopeGroup:
		return "only the members of group " + n.Group
	case lang.ScopePublic:
		if n.Group != "" {
			return "the internet but no private network, and the members of group " + n.Group
		}
		return "the internet but no private network"
	}
	return "unrestricted"
}

// rewriteIPs replaces the group addresses of sandboxes that have a Service with the Service's
// name: sandbox.NAME.ip in the Sandboxfile means "that sandbox", and in a cluster its name does.
func (e *exporter) rewriteIPs(s string) string {
	for ip, name := range e.ips {
		s = replaceWord(s, ip, name)
	}
	return s
}

// replaceWord replaces old where it is not part of a longer address or name.
func replaceWord(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		if (i == 0 || !addrChar(s[i-1])) && (end == len(s) || !addrChar(s[end])) {
			b.WriteString(s[:i] + repl)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

func addrChar(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// looksSecret reports whether an environment variable's name says it holds a secret.
func looksSecret(name string) bool {
	u := strings.ToUpper(name)
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return false
}

// validSecretKey: a Secret's keys are [-._a-zA-Z0-9]+.
func validSecretKey(k string) bool {
	if k == "" || len(k) > 253 {
		return false
	}
	for _, c := range k {
		if !(c == '-' || c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func numericUser(u string) (int64, int64, bool) {
	us, gs, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.ParseInt(us, 10, 64)
	if err != nil || uid < 0 {
		return 0, 0, false
	}
	gid := int64(-1)
	if hasGroup {
		if gid, err = strconv.ParseInt(gs, 10, 64); err != nil || gid < 0 {
			return 0, 0, false
		}
	}
	return uid, gid, true
}

func protocol(p string) corev1.Protocol {
	if p == "udp" {
		return corev1.ProtocolUDP
	}
	return corev1.ProtocolTCP
}

// dnsLabel turns s into a DNS-1035 label (a subset of DNS-1123 that Services also accept):
// lower case, [a-z0-9-], starting with a letter, ending with a letter or digit, at most 63
// characters; a long name keeps a hash of the whole so that two never meet.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "s-" + out
	}
	if len(out) > 50 {
		sum := sha256.Sum256([]byte(s))
		out = strings.TrimRight(out[:44], "-") + "-" + hex.EncodeToString(sum[:])[:5]
	}
	return strings.TrimRight(out, "-")
}

// labelValue turns s into a valid label value: [A-Za-z0-9._-], alphanumeric at both ends, at
// most 63 characters.
func labelValue(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c == '-' || c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 63 {
		out = out[:63]
	}
	out = strings.Trim(out, "-_.")
	if out == "" {
		out = "sbx"
	}
	return out
}

// volumeClaim names the PersistentVolumeClaim of a named volume.
func volumeClaim(name string) string { return dnsLabel(name) }

func ptr[T any](v T) *T { return &v }
