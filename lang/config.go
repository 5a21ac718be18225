package lang

// The types in this file are the contract between lang and the packages below it (planner,
// runtime): they carry no HCL evaluation state, only resolved values, plus the source range of
// each definition so later stages can point diagnostics at the file.

import (
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultFilename is the name sbx looks for in the working directory.
const DefaultFilename = "Sandboxfile"

// Config is a loaded, evaluated and validated Sandboxfile.
type Config struct {
	// File is the absolute path of the Sandboxfile; Dir is its directory (path.root).
	File string
	Dir  string

	Project   Project
	Networks  []*Network // sorted by name
	Volumes   []*Volume  // sorted by name
	Sandboxes []*Sandbox // sorted by name
	// Edges are the dependency edges between sandboxes, sorted by (From, To, Origin).
	Edges []Edge

	// VarFiles are the variable files that were read (auto files and --var-file), absolute.
	// ReadFiles are the files read through file() and env_file, absolute. Watch mode uses both.
	VarFiles  []string
	ReadFiles []string

	// Sources holds every parsed HCL file by name, for rendering diagnostics with source lines.
	Sources map[string]*hcl.File
}

// Project is the optional project block.
type Project struct {
	Name   string // defaults to the base name of Dir
	Driver string // "" when not declared (krun is then the default); "krun" or "ns"
	// AllowHostPaths are the host paths (absolute, as declared) that mounts, dir: images and
	// env_file may use although they are sensitive or, for env_file, outside the project.
	AllowHostPaths []string
	Range          hcl.Range
}

// Network is a network group: sandboxes in it reach each other by IP.
type Network struct {
	Name   string
	Subnet netip.Prefix
	Range  hcl.Range
}

// Volume is a named volume: storage that sbx keeps for the project (down keeps it, down
// --volumes removes it), mounted into sandboxes with mount { volume = volume.NAME }. Where it
// lives on the host is the runtime's business; lang only names it.
type Volume struct {
	Name  string
	Range hcl.Range
}

// Scope values for NetworkSpec.Scope.
const (
	ScopeNone   = "none"
	ScopeGroup  = "group"
	ScopePublic = "public"
	ScopeAny    = "any"
)

// Process limits for Sandbox.Pids: enough for any dev server by default, small enough that a
// fork bomb stays inside; at most Linux's PID_MAX_LIMIT.
const (
	DefaultPids = 4096
	MaxPids     = 1 << 22
)

// Restart policies for Sandbox.Restart.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Sandbox is the fully resolved spec of one sandbox. Every value is what the user declared
// after evaluation, with defaults applied; nothing here comes from the image or the run time.
// Slices are nil when the attribute was not declared, so "use the image's value" (Entrypoint,
// Command) stays distinguishable from an explicit empty list.
type Sandbox struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	CPUs       int               `json:"cpus"`       // 1..255, default 1
	MemoryMiB  int               `json:"memory_mib"` // default 512
	Pids       int               `json:"pids"`       // process limit, 1..MaxPids, default DefaultPids
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Workdir    string            `json:"workdir,omitempty"`
	Env        map[string]string `json:"env,omitempty"` // env_file values merged under env
	EnvFiles   []string          `json:"env_files,omitempty"`
	User       string            `json:"user,omitempty"`
	Rlimits    []Rlimit          `json:"rlimits,omitempty"` // sorted by Resource
	Mounts     []Mount           `json:"mounts,omitempty"`  // in declaration order
	Ports      []Port            `json:"ports,omitempty"`   // in declaration order
	Network    NetworkSpec       `json:"network"`
	Restart    string            `json:"restart"` // RestartNo by default
	// StopTimeout defaults to 10s.
	StopTimeout time.Duration `json:"stop_timeout"`
	Ready       *Ready        `json:"ready,omitempty"`
	// DependsOn lists the sandboxes named in depends_on, sorted.
	DependsOn []string `json:"depends_on,omitempty"`
	Watch     *Watch   `json:"watch,omitempty"`

	// Sensitive lists the fields whose value derives from a variable marked sensitive, as
	// field paths: "env.NAME", "command", "entrypoint", "image", "workdir", "user",
	// "mounts[0].source"... Renderers print "(sensitive)" instead of their values.
	Sensitive []string `json:"sensitive,omitempty"`

	// Range is the range of the sandbox block's header.
	Range hcl.Range `json:"-"`
}

// Rlimit is one resource limit. Resource is the canonical upper-case name without the
// RLIMIT_ prefix ("NOFILE"); Number is its Linux resource number.
type Rlimit struct {
	Resource string `json:"resource"`
	Number   int    `json:"number"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// Mount makes a host path or a named volume visible in the sandbox. Exactly one of Source and
// Volume is set.
type Mount struct {
	Source   string `json:"source,omitempty"` // absolute host path
	Volume   string `json:"volume,omitempty"` // name of a volume in Config.Volumes
	Target   string `json:"target"`           // absolute guest path
	ReadOnly bool   `json:"read_only,omitempty"`
	// OutsideProject is true for a host path outside the project directory (after following
	// symlinks): plans show such mounts, since the sandbox reaches beyond the project.
	OutsideProject bool `json:"outside_project,omitempty"`
}

// Port publishes a guest port on the host.
type Port struct {
	HostIP   string `json:"host_ip"` // default "127.0.0.1"
	Host     int    `json:"host"`
	Guest    int    `json:"guest"`
	Protocol string `json:"protocol"` // "tcp" (default) or "udp"
}

// NetworkSpec is the resolved network block of a sandbox.
type NetworkSpec struct {
	Scope string `json:"scope"`           // ScopePublic by default
	Group string `json:"group,omitempty"` // network name; required for ScopeGroup
	// IP is the sandbox's address in Group; set (declared or allocated) whenever Group is.
	IP netip.Addr `json:"ip,omitzero"`
	// IPAllocated is true when IP was not declared but allocated from the group's subnet.
	IPAllocated bool `json:"ip_allocated,omitempty"`
}

// Ready is the readiness probe of a sandbox. Exactly one of TCP, HTTP or Log is set.
type Ready struct {
	TCP      int           `json:"tcp,omitempty"`  // guest port
	HTTP     string        `json:"http,omitempty"` // URL answered with 2xx
	Log      string        `json:"log,omitempty"`  // regexp over the console log
	Timeout  time.Duration `json:"timeout"`        // default 60s
	Interval time.Duration `json:"interval"`       // default 500ms
}

// Watch lists host paths whose changes restart the sandbox in watch mode.
type Watch struct {
	Paths  []string `json:"paths"` // absolute
	Ignore []string `json:"ignore,omitempty"`
}

// Edge origins.
const (
	OriginDependsOn = "depends_on"
	OriginReference = "reference"
)

// Edge says that sandbox From depends on sandbox To.
type Edge struct {
	From   string
	To     string
	Origin string    // OriginDependsOn or OriginReference
	Range  hcl.Range // where the edge was declared or the reference made
}

// Volume returns the volume named name, or nil.
func (c *Config) Volume(name string) *Volume {
	for _, v := range c.Volumes {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Sandbox returns the sandbox named name, or nil.
func (c *Config) Sandbox(name string) *Sandbox {
	for _, s := range c.Sandboxes {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Dependencies returns the names of the sandboxes that name depends on directly, sorted and
// without duplicates (a sandbox may both reference and depend_on another).
func (c *Config) Dependencies(name string) []string {
	var out []string
	for _, e := range c.Edges {
		if e.From == name && (len(out) == 0 || out[len(out)-1] != e.To) {
			out = append(out, e.To)
		}
	}
	return out
}
