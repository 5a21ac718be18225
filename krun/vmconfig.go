package krun

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"strings"
)

// VMConfig is everything needed to configure one VM. It is what [Spawn] sends
// to the VMM child as JSON and what [Configure] applies to a context.
//
// Slices keep the nil/empty distinction through JSON (null vs []): see
// PortMap and Env.
type VMConfig struct {
	// LogLevel is libkrun's log level.
	LogLevel LogLevel `json:"log_level"`
	// CPUs is the number of vCPUs (at least 1).
	CPUs uint8 `json:"cpus"`
	// MemoryMiB is the guest RAM in MiB (at least 1).
	MemoryMiB uint32 `json:"memory_mib"`
	// Root is a host directory used as the guest's root. Exactly one of Root
	// and Layers is set.
	Root string `json:"root,omitempty"`
	// Layers are host directories overlaid as the guest's root, lowest first,
	// the last one writable (needs krun_set_overlayfs_root).
	Layers []string `json:"layers,omitempty"`
	// Mounts are host directories shared over virtio-fs.
	Mounts []Mount `json:"mounts,omitempty"`
	// PortMap maps host to guest TCP ports. nil (JSON null) leaves libkrun's
	// default, which exposes every listening guest port; an empty list
	// exposes none.
	PortMap []PortMapping `json:"port_map"`
	// Network is the network scope to enforce.
	Network Network `json:"network"`
	// Rlimits are applied in the guest before the workload starts.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// Workdir is the workload's working directory in the guest ("" = libkrun's default).
	Workdir string `json:"workdir,omitempty"`
	// ExecPath is the workload executable, a path in the guest.
	ExecPath string `json:"exec_path"`
	// Argv are the workload's arguments after the executable name, as
	// krun_set_exec takes them.
	Argv []string `json:"argv"`
	// Env is the workload's environment as KEY=VALUE. nil (JSON null) makes
	// libkrun pass on the VMM process's own environment; an empty list passes
	// none.
	Env []string `json:"env"`
	// ConsoleOutput is a host file receiving the guest console ("" = the VMM's
	// stdout).
	ConsoleOutput string `json:"console_output,omitempty"`
	// UID and GID, if set, are switched to right before the VM starts (need
	// krun_setuid / krun_setgid).
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
}

// Mount is one virtio-fs share.
type Mount struct {
	// Tag identifies the share in the guest. It may not contain ':' or ','.
	Tag string `json:"tag"`
	// HostPath is the shared host directory.
	HostPath string `json:"host_path"`
	// Target is the absolute guest path it is mounted at.
	Target string `json:"target"`
	// ReadOnly asks the guest to mount it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Network is the VM's network scope and TSI address.
type Network struct {
	// Scope is none, group, public or any.
	Scope Scope `json:"scope"`
	// IP is the guest's static IPv4 address ("" = none).
	IP string `json:"ip,omitempty"`
	// Subnet is the group's subnet in CIDR notation ("" = none).
	Subnet string `json:"subnet,omitempty"`
}

// MountsEnv is the environment variable through which the guest learns where
// to mount the virtio-fs shares. libkrun only attaches the devices; mounting
// them is the guest's job. [Configure] appends
//
//	KRUN_VIRTIOFS_MOUNTS=tag:/target:ro,tag2:/target2:rw
//
// to the workload's environment (in config order), and the guest init (or a
// shell prelude such as [MountScript]) runs, for each entry,
// mount -t virtiofs [-o ro] tag /target.
const MountsEnv = "KRUN_VIRTIOFS_MOUNTS"

// MountsEnvValue returns the value of [MountsEnv] for mounts.
func MountsEnvValue(mounts []Mount) string {
	parts := make([]string, 0, len(mounts))
	for _, m := range mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		parts = append(parts, m.Tag+":"+m.Target+":"+mode)
	}
	return strings.Join(parts, ",")
}

// MountScript is a POSIX sh prelude that mounts every share listed in
// $KRUN_VIRTIOFS_MOUNTS, for guests whose init does not. Use it as
// ExecPath "/bin/sh", Argv ["-c", MountScript + `exec "$@"`, "sh", cmd...].
const MountScript = `IFS=,; for m in $KRUN_VIRTIOFS_MOUNTS; do ` +
	`t=${m%%:*}; r=${m#*:}; d=${r%:*}; o=${r##*:}; ` +
	`mkdir -p "$d" && mount -t virtiofs -o "$o" "$t" "$d" || exit 125; done; unset IFS; `

// Validate checks the config without libkrun: everything that can be known
// wrong before a VMM child is started. Errors wrap [ErrInvalidArgument].
func (c *VMConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrInvalidArgument)...))
	}
	nul := func(what, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			bad("%s %q contains a NUL byte", what, s)
		}
	}
	if c.LogLevel > LogTrace {
		bad("log level %d out of range 0-5", c.LogLevel)
	}
	if c.CPUs == 0 {
		bad("cpus must be at least 1")
	}
	if c.MemoryMiB == 0 {
		bad("memory must be at least 1 MiB")
	}
	switch {
	case c.Root != "" && len(c.Layers) > 0:
		bad("root and layers are mutually exclusive")
	case c.Root == "" && len(c.Layers) == 0:
		bad("one of root or layers is required")
	}
	nul("root", c.Root)
	for _, l := range c.Layers {
		nul("layer", l)
		if l == "" {
			bad("empty layer path")
		}
	}
	tags := map[string]bool{}
	for _, m := range c.Mounts {
		nul("mount tag", m.Tag)
		nul("mount host path", m.HostPath)
		nul("mount target", m.Target)
		if m.Tag == "" || strings.ContainsAny(m.Tag, ":,") {
			bad("mount tag %q must be non-empty without ':' or ','", m.Tag)
		}
		if tags[m.Tag] {
			bad("duplicate mount tag %q", m.Tag)
		}
		tags[m.Tag] = true
		if m.HostPath == "" {
			bad("mount %q has no host path", m.Tag)
		}
		if !path.IsAbs(m.Target) || strings.ContainsAny(m.Target, ":,") {
			bad("mount %q target %q must be an absolute guest path without ':' or ','", m.Tag, m.Target)
		}
	}
	for _, p := range c.PortMap {
		if p.Host == 0 || p.Guest == 0 {
			bad("port mapping %s: ports must be 1-65535", p)
		}
	}
	if c.Network.Scope > ScopeAny {
		bad("network scope %d out of range", c.Network.Scope)
	}
	if c.Network.IP != "" {
		if a, err := netip.ParseAddr(c.Network.IP); err != nil || !a.Is4() {
			bad("network ip %q is not an IPv4 address", c.Network.IP)
		}
	}
	if c.Network.Subnet != "" {
		if p, err := netip.ParsePrefix(c.Network.Subnet); err != nil || !p.Addr().Is4() {
			bad("network subnet %q is not an IPv4 CIDR", c.Network.Subnet)
		} else if c.Network.IP != "" {
			if a, err := netip.ParseAddr(c.Network.IP); err == nil && !p.Contains(a) {
				bad("network ip %s is outside subnet %s", c.Network.IP, c.Network.Subnet)
			}
		}
	}
	for _, r := range c.Rlimits {
		if r.Resource < 0 || r.Cur > r.Max {
			bad("rlimit %s: resource must be >= 0 and cur <= max", r)
		}
	}
	nul("workdir", c.Workdir)
	if c.ExecPath == "" {
		bad("exec path is required")
	}
	nul("exec path", c.ExecPath)
	for _, a := range c.Argv {
		nul("argument", a)
	}
	for _, e := range c.Env {
		nul("environment entry", e)
		if strings.HasPrefix(e, MountsEnv+"=") && len(c.Mounts) > 0 {
			bad("environment sets %s, which is reserved for the mounts", MountsEnv)
		}
	}
	nul("console output", c.ConsoleOutput)
	return errors.Join(errs...)
}

// Check reports what in cfg the loaded libkrun cannot do: functions it lacks
// (errors wrap [ErrMissing]) and network scopes it cannot enforce (errors wrap
// [ErrUnsupported]). A scope is never silently widened.
//
// Scope enforcement without krun_set_tsi_scope (upstream libkrun):
//   - any: TSI's default behaviour already allows every address.
//   - none: krun_disable_implicit_vsock removes the vsock device and with it
//     TSI, the only network path the guest has (no virtio-net is added), so
//     the guest has no network at all. Port mappings then cannot work either
//     and are refused.
//   - group, public, or a static IP: cannot be enforced; refused.
func (l *Lib) Check(cfg *VMConfig) error {
	var errs []error
	if len(cfg.Layers) > 0 {
		if err := l.need(fnSetOverlayfsRoot); err != nil {
			errs = append(errs, fmt.Errorf("an overlay root (layers) needs %w", err))
		}
	}
	if cfg.UID != nil {
		if err := l.need(fnSetUID); err != nil {
			errs = append(errs, fmt.Errorf("uid needs %w", err))
		}
	}
	if cfg.GID != nil {
		if err := l.need(fnSetGID); err != nil {
			errs = append(errs, fmt.Errorf("gid needs %w", err))
		}
	}
	if err := l.scopeProblem(cfg); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Lib) scopeProblem(cfg *VMConfig) error {
	if l.Has(fnSetTSIScope) {
		return nil
	}
	n := cfg.Network
	why := fmt.Sprintf("this libkrun (%s) lacks %s (only microsandbox's libkrun fork has it)", l.path, fnSetTSIScope)
	fix := "use network scope none or any, install a libkrun with krun_set_tsi_scope, or run with --driver ns"
	switch {
	case n.Scope == ScopeGroup || n.Scope == ScopePublic:
		return fmt.Errorf("network scope %s cannot be enforced: %s; %s: %w", n.Scope, why, fix, ErrUnsupported)
	case n.IP != "" || n.Subnet != "":
		return fmt.Errorf("a static guest IP or subnet cannot be set: %s; %s: %w", why, fix, ErrUnsupported)
	case n.Scope == ScopeNone && !l.Has(fnDisableImplicitVsock):
		return fmt.Errorf("network scope none cannot be enforced: this libkrun (%s) has neither %s nor %s; %s: %w",
			l.path, fnSetTSIScope, fnDisableImplicitVsock, fix, ErrUnsupported)
	case n.Scope == ScopeNone && len(cfg.PortMap) > 0:
		return fmt.Errorf("network scope none with port mappings: without %s, scope none removes the guest's network entirely, so ports cannot be forwarded; use scope any or a libkrun with %s: %w",
			fnSetTSIScope, fnSetTSIScope, ErrUnsupported)
	}
	return nil
}

// Configure creates a context and applies cfg to it in libkrun's expected
// order: log level, VM config, root or overlay root, virtio-fs shares, port
// map, network scope, rlimits, workdir, exec (with environment), console
// output, uid/gid. It validates cfg and checks it against the library first.
// On error the context is freed and the error names the failing C function.
func (l *Lib) Configure(cfg *VMConfig) (*Ctx, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := l.Check(cfg); err != nil {
		return nil, err
	}
	if err := l.SetLogLevel(cfg.LogLevel); err != nil {
		return nil, err
	}
	c, err := l.CreateCtx()
	if err != nil {
		return nil, err
	}
	if err := c.configure(cfg); err != nil {
		_ = c.Free()
		return nil, err
	}
	return c, nil
}

func (c *Ctx) configure(cfg *VMConfig) error {
	if err := c.SetVMConfig(cfg.CPUs, cfg.MemoryMiB); err != nil {
		return err
	}
	if len(cfg.Layers) > 0 {
		if err := c.SetOverlayfsRoot(cfg.Layers); err != nil {
			return err
		}
	} else if err := c.SetRoot(cfg.Root); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := c.AddVirtiofs(m.Tag, m.HostPath); err != nil {
			return err
		}
	}
	// Called even for a nil map, which passes NULL: the same as not calling.
	if err := c.SetPortMap(cfg.PortMap); err != nil {
		return err
	}
	if err := c.setNetwork(cfg); err != nil {
		return err
	}
	if cfg.Rlimits != nil {
		if err := c.SetRlimits(cfg.Rlimits); err != nil {
			return err
		}
	}
	if cfg.Workdir != "" {
		if err := c.SetWorkdir(cfg.Workdir); err != nil {
			return err
		}
	}
	argv := cfg.Argv
	if argv == nil {
		argv = []string{}
	}
	if err := c.SetExec(cfg.ExecPath, argv, workloadEnv(cfg)); err != nil {
		return err
	}
	if cfg.ConsoleOutput != "" {
		if err := c.SetConsoleOutput(cfg.ConsoleOutput); err != nil {
			return err
		}
	}
	if cfg.UID != nil {
		if err := c.SetUID(*cfg.UID); err != nil {
			return err
		}
	}
	if cfg.GID != nil {
		if err := c.SetGID(*cfg.GID); err != nil {
			return err
		}
	}
	return nil
}

// setNetwork enforces the scope; see [Lib.Check] for what happens without
// krun_set_tsi_scope.
func (c *Ctx) setNetwork(cfg *VMConfig) error {
	n := cfg.Network
	if c.lib.Has(fnSetTSIScope) {
		return c.SetTSIScope(n.IP, n.Subnet, n.Scope)
	}
	if err := c.lib.scopeProblem(cfg); err != nil {
		return err
	}
	if n.Scope == ScopeNone {
		return c.DisableImplicitVsock()
	}
	return nil // ScopeAny: TSI's default.
}

// workloadEnv returns the environment for krun_set_exec: cfg.Env (nil keeps
// libkrun's "inherit" meaning) plus the mounts variable. With mounts and a nil
// Env, the inherited environment is made explicit so the variable can be added.
func workloadEnv(cfg *VMConfig) []string {
	if len(cfg.Mounts) == 0 {
		return cfg.Env
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	out = append(out, env...)
	return append(out, MountsEnv+"="+MountsEnvValue(cfg.Mounts))
}
