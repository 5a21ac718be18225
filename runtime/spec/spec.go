// Package spec is the resolved run spec of one sandbox: what a driver is given to start it.
//
// Every value is resolved: the Sandboxfile's declaration merged with the image's config,
// defaults applied, paths absolute, enumerations typed. Nothing here refers to the
// Sandboxfile's language (no lang import) and nothing is decided by a driver: both drivers
// receive the same RunSpec. The runtime writes it to .sbx/sandboxes/NAME/run.json (mode
// 0600: the environment may hold sensitive values) for the sandbox's supervisor.
package spec

import (
	"fmt"
	"net/netip"
	"time"
)

// Version is the version of the run.json document. A supervisor refuses a newer one.
const Version = 2

// Scope is a sandbox's network scope: what it may reach.
type Scope string

// The network scopes, the same words as the Sandboxfile's.
const (
	ScopeNone   Scope = "none"   // loopback only
	ScopeGroup  Scope = "group"  // the members of its network group and nothing else
	ScopePublic Scope = "public" // the internet, never private, loopback or link-local ranges (plus its group)
	ScopeAny    Scope = "any"    // no restriction
)

// ParseScope checks a scope word.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(s); sc {
	case ScopeNone, ScopeGroup, ScopePublic, ScopeAny:
		return sc, nil
	}
	return "", fmt.Errorf("unknown network scope %q: use none, group, public or any", s)
}

// Protocol is a published port's transport protocol.
type Protocol string

// The protocols of a published port.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// ParseProtocol checks a protocol word; "" is TCP.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case "", TCP:
		return TCP, nil
	case UDP:
		return UDP, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use tcp or udp", s)
}

// Restart is a restart policy.
type Restart string

// The restart policies.
const (
	RestartNo        Restart = "no"
	RestartOnFailure Restart = "on-failure"
	RestartAlways    Restart = "always"
)

// RunSpec is everything a driver needs to start one sandbox.
type RunSpec struct {
	Version int `json:"version"`
	// Project identifies the project on this machine: its name and a short hash of its
	// directory ("shop-3f9c2a1b"). Every host-side name (cgroup, network namespace, link, rule)
	// derives from it, so two projects with the same name never share anything.
	Project string `json:"project"`
	// Name is the sandbox's name.
	Name string `json:"name"`
	// Dir is the sandbox's directory, .sbx/sandboxes/<name>: writable layer, console log,
	// supervisor record. It is absolute.
	Dir string `json:"dir"`
	// Driver names the driver that runs the sandbox.
	Driver string `json:"driver"`
	// Generation counts the creates and replacements of the sandbox; 1 for the first.
	Generation int `json:"generation"`

	Image     Image     `json:"image"`
	Process   Process   `json:"process"`
	Resources Resources `json:"resources"`
	Mounts    []Mount   `json:"mounts,omitempty"`
	Ports     []Port    `json:"ports,omitempty"`
	Network   Network   `json:"network"`

	Restart     Restart       `json:"restart"`
	StopTimeout time.Duration `json:"stop_timeout"`
	Ready       *Ready        `json:"ready,omitempty"`
}

// Image is the sandbox's image on disk.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	// Layers are the unpacked layer directories, bottom first, used read-only. A dir: image
	// has one, its directory.
	Layers []string `json:"layers"`
}

// Process is the payload: the declared process merged with the image's config.
type Process struct {
	Argv    []string `json:"argv"`
	Env     []string `json:"env"` // KEY=VALUE, PATH always set
	Workdir string   `json:"workdir"`
	// User is "", "name", "uid", "uid:gid" or "name:group", resolved inside the sandbox.
	User     string `json:"user,omitempty"`
	Hostname string `json:"hostname"`
}

// Resources are the sandbox's limits.
type Resources struct {
	CPUs      int      `json:"cpus"`
	MemoryMiB int      `json:"memory_mib"`
	Pids      int      `json:"pids,omitempty"` // 0: no limit
	Rlimits   []Rlimit `json:"rlimits,omitempty"`
}

// Rlimit is one resource limit: Resource is the Linux RLIMIT_* number.
type Rlimit struct {
	Name     string `json:"name"` // "NOFILE", for messages
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// Mount is a host directory or file made visible in the sandbox.
type Mount struct {
	Source   string `json:"source"` // absolute host path (a named volume's directory for volumes)
	Target   string `json:"target"` // absolute path in the sandbox
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Port publishes a guest port on the host.
type Port struct {
	HostIP   string   `json:"host_ip"`
	Host     int      `json:"host"`
	Guest    int      `json:"guest"`
	Protocol Protocol `json:"protocol"`
}

// Network is the sandbox's network.
type Network struct {
	Scope Scope `json:"scope"`
	// Group is the network block the sandbox is in ("" for none, or a public/any sandbox
	// without one); Subnet is its subnet and IP the sandbox's address in it.
	Group  string       `json:"group,omitempty"`
	Subnet netip.Prefix `json:"subnet,omitzero"`
	IP     netip.Addr   `json:"ip,omitzero"`
	// Peers are the other sandboxes of the group with their addresses, for /etc/hosts.
	Peers map[string]netip.Addr `json:"peers,omitempty"`
}

// Ready is the readiness probe. Exactly one of TCP, HTTP and Log is set. Ports are the
// sandbox's own (guest) ports: probes reach the guest, never a published host port.
type Ready struct {
	TCP  int        `json:"tcp,omitempty"`
	HTTP *HTTPProbe `json:"http,omitempty"`
	Log  string     `json:"log,omitempty"` // a regular expression over the console log

	Timeout  time.Duration `json:"timeout"`
	Interval time.Duration `json:"interval"`
}

// HTTPProbe is a GET of Path on the guest's Port that must answer 2xx.
type HTTPProbe struct {
	Port int    `json:"port"`
	Path string `json:"path"` // with the query, "/" at least
	// Host is the Host header to send (the URL's host as written).
	Host string `json:"host,omitempty"`
}

// String is "tcp 8080", "http :8080/health" or "log /ready/", as messages name a probe.
func (r *Ready) String() string {
	switch {
	case r == nil:
		return "none"
	case r.TCP != 0:
		return fmt.Sprintf("tcp %d", r.TCP)
	case r.HTTP != nil:
		return fmt.Sprintf("http :%d%s", r.HTTP.Port, r.HTTP.Path)
	default:
		return "log /" + r.Log + "/"
	}
}

// Validate checks what a driver relies on; the runtime builds valid specs, so a failure is a
// bug or a hand-edited run.json.
func (s *RunSpec) Validate() error {
	switch {
	case s.Version != Version:
		return fmt.Errorf("run spec version %d, this sbx reads version %d: start the sandbox again with 'sbx up'", s.Version, Version)
	case s.Name == "" || s.Project == "" || s.Dir == "":
		return fmt.Errorf("run spec: name, project and dir are required")
	case len(s.Process.Argv) == 0 || s.Process.Argv[0] == "":
		return fmt.Errorf("sandbox %s: no command to run: set command (or entrypoint) in the Sandboxfile, or use an image with an ENTRYPOINT or CMD", s.Name)
	case len(s.Image.Layers) == 0:
		return fmt.Errorf("sandbox %s: no root file system", s.Name)
	}
	if _, err := ParseScope(string(s.Network.Scope)); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Name, err)
	}
	for _, p := range s.Ports {
		if _, err := ParseProtocol(string(p.Protocol)); err != nil {
			return fmt.Errorf("sandbox %s: port %d: %w", s.Name, p.Host, err)
		}
	}
	return nil
}
