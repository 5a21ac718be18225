package krun

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
)

// VMConfig is everything needed to configure one VM. It is what [Spawn] sends
// to the VMM child as JSON and what [Lib.Configure] applies to a context.
//
// Nothing here reaches the guest through libkrun's kernel command line except
// ExecPath, Argv and Env, which libkrun quotes there without escaping: values
// holding '"' or a newline are refused. Callers with user data put it in a
// file inside the root instead.
type VMConfig struct {
	// LogLevel is libkrun's log level.
	LogLevel LogLevel `json:"log_level"`
	// CPUs is the number of vCPUs (at least 1).
	CPUs uint8 `json:"cpus"`
	// MemoryMiB is the guest RAM in MiB (at least 1).
	MemoryMiB uint32 `json:"memory_mib"`

	// Exactly one of Root, Overlay and Layers is set.

	// Root is a host directory used as the guest's root (krun_set_root).
	Root string `json:"root,omitempty"`
	// Overlay is an overlay of host directories that the VMM child mounts in
	// its own mount namespace and hands to krun_set_root: the mount lives and
	// dies with the child, even if it is killed with SIGKILL.
	Overlay *Overlay `json:"overlay,omitempty"`
	// Layers are host directories overlaid by libkrun itself, lowest first,
	// the last one writable (krun_set_overlayfs_root; microsandbox's fork).
	Layers []string `json:"layers,omitempty"`

	// Mounts are host directories shared over virtio-fs. libkrun only
	// attaches them; the guest mounts each by tag.
	Mounts []Mount `json:"mounts,omitempty"`
	// Net is the guest's network.
	Net Net `json:"net"`
	// VsockPorts connect guest vsock ports to host unix sockets.
	VsockPorts []VsockPort `json:"vsock_ports,omitempty"`
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
	// UID and GID, if set, are what the VMM process switches to right before
	// the VM starts (krun_setuid / krun_setgid). They are not the guest's
	// user.
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
}

// Overlay is a root assembled from host directories by the VMM child.
type Overlay struct {
	// Lower are the read-only layers, lowest first.
	Lower []string `json:"lower"`
	// Upper is the writable layer and Work overlayfs's scratch directory, on
	// the same file system.
	Upper string `json:"upper"`
	Work  string `json:"work"`
	// Merged is an empty directory the overlay is mounted on (in the child's
	// mount namespace only).
	Merged string `json:"merged"`
	// PreferLibkrun uses krun_set_overlayfs_root(Lower..., Upper) instead of
	// mounting, where the library has it (microsandbox's fork). The guest
	// sees the same tree either way.
	PreferLibkrun bool `json:"prefer_libkrun,omitempty"`
}

// Mount is one virtio-fs share.
type Mount struct {
	// Tag identifies the share in the guest.
	Tag string `json:"tag"`
	// HostPath is the shared host directory.
	HostPath string `json:"host_path"`
}

// NetMode is how the guest reaches the network.
type NetMode string

// Network modes.
const (
	// NetTSI is libkrun's default: the guest's sockets are carried over vsock
	// by the VMM (transparent socket impersonation). microsandbox's fork can
	// restrict it with a scope (Net.Scope).
	NetTSI NetMode = "tsi"
	// NetTap gives the guest one virtio-net NIC per Net.Taps entry
	// (krun_add_net_tap, needs a NET build), and no TSI.
	NetTap NetMode = "tap"
	// NetNone gives the guest no NIC and no TSI: no network but loopback.
	NetNone NetMode = "none"
)

// Net is the guest's network.
type Net struct {
	// Mode is tsi (the default when empty), tap or none.
	Mode NetMode `json:"mode"`
	// Taps are the NICs of mode tap, eth0 first.
	Taps []Tap `json:"taps,omitempty"`
	// PortMap maps host to guest TCP ports in mode tsi. nil leaves libkrun's
	// default (every listening guest port exposed) by not calling
	// krun_set_port_map; an empty list exposes none.
	PortMap []PortMapping `json:"port_map"`
	// Scope, IP and Subnet restrict TSI with krun_set_tsi_scope
	// (microsandbox's fork only); Scope nil leaves TSI unrestricted.
	Scope  *Scope `json:"scope,omitempty"`
	IP     string `json:"ip,omitempty"`
	Subnet string `json:"subnet,omitempty"`
}

func (n Net) mode() NetMode {
	if n.Mode == "" {
		return NetTSI
	}
	return n.Mode
}

// ParseMAC parses "aa:bb:cc:dd:ee:ff".
func ParseMAC(s string) ([6]byte, error) {
	var m [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("MAC address %q: want aa:bb:cc:dd:ee:ff: %w", s, ErrInvalidArgument)
	}
	copy(m[:], hw)
	return m, nil
}

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
	hostPath := func(what, p string) {
		nul(what, p)
		if !path.IsAbs(p) {
			bad("%s %q must be an absolute host path", what, p)
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
	roots := 0
	if c.Root != "" {
		roots++
		hostPath("root", c.Root)
	}
	if o := c.Overlay; o != nil {
		roots++
		if len(o.Lower) == 0 {
			bad("an overlay root needs at least one lower layer")
		}
		for _, l := range o.Lower {
			hostPath("overlay layer", l)
		}
		hostPath("overlay upper", o.Upper)
		hostPath("overlay work", o.Work)
		hostPath("overlay merged", o.Merged)
		for _, p := range append(append([]string{}, o.Lower...), o.Upper, o.Work) {
			if strings.ContainsAny(p, ",:\\\n") {
				bad("overlay path %q contains a comma, colon, backslash or newline, which overlayfs options cannot carry", p)
			}
		}
	}
	if len(c.Layers) > 0 {
		roots++
		for _, l := range c.Layers {
			hostPath("layer", l)
		}
	}
	if roots != 1 {
		bad("exactly one of root, overlay and layers is required")
	}
	tags := map[string]bool{}
	for _, m := range c.Mounts {
		nul("mount tag", m.Tag)
		if m.Tag == "" || strings.ContainsAny(m.Tag, "/,: \"\n") {
			bad("mount tag %q must be non-empty without '/', ',', ':', spaces or quotes", m.Tag)
		}
		if tags[m.Tag] {
			bad("duplicate mount tag %q", m.Tag)
		}
		tags[m.Tag] = true
		hostPath("mount "+m.Tag+" host path", m.HostPath)
	}
	n := c.Net
	switch n.mode() {
	case NetTSI:
		if len(n.Taps) > 0 {
			bad("taps need network mode tap")
		}
		for _, p := range n.PortMap {
			if p.Host == 0 || p.Guest == 0 {
				bad("port mapping %s: ports must be 1-65535", p)
			}
		}
		if n.Scope != nil && *n.Scope > ScopeAny {
			bad("network scope %d out of range", *n.Scope)
		}
		if n.IP != "" {
			if ip := net.ParseIP(n.IP); ip == nil || ip.To4() == nil {
				bad("network ip %q is not an IPv4 address", n.IP)
			}
		}
		if n.Subnet != "" {
			if ip, _, err := net.ParseCIDR(n.Subnet); err != nil || ip.To4() == nil {
				bad("network subnet %q is not an IPv4 CIDR", n.Subnet)
			}
		}
		if (n.IP != "" || n.Subnet != "") && n.Scope == nil {
			bad("a TSI ip or subnet needs a scope")
		}
	case NetTap, NetNone:
		if n.mode() == NetTap && len(n.Taps) == 0 {
			bad("network mode tap needs at least one tap")
		}
		if n.mode() == NetNone && len(n.Taps) > 0 {
			bad("network mode none has no taps")
		}
		if n.PortMap != nil || n.Scope != nil || n.IP != "" || n.Subnet != "" {
			bad("port maps, scopes and TSI addresses apply to network mode tsi only")
		}
		names := map[string]bool{}
		for _, t := range n.Taps {
			if t.Name == "" || len(t.Name) > 15 || strings.ContainsAny(t.Name, "/ \x00") {
				bad("tap name %q must be 1-15 characters without '/' or spaces", t.Name)
			}
			if names[t.Name] {
				bad("duplicate tap %q", t.Name)
			}
			names[t.Name] = true
			if _, err := ParseMAC(t.MAC); err != nil {
				errs = append(errs, err)
			}
		}
	default:
		bad("network mode %q: want tsi, tap or none", n.Mode)
	}
	ports := map[uint32]bool{}
	for _, v := range c.VsockPorts {
		hostPath(fmt.Sprintf("vsock port %d path", v.Port), v.Path)
		if len(v.Path) > 107 {
			bad("vsock port %d path %q is longer than a unix socket address allows (107 bytes)", v.Port, v.Path)
		}
		if ports[v.Port] {
			bad("duplicate vsock port %d", v.Port)
		}
		ports[v.Port] = true
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
	if strings.ContainsAny(c.ExecPath, "\" \n") {
		bad("exec path %q contains a quote, space or newline, which libkrun's kernel command line cannot carry", c.ExecPath)
	}
	for i, a := range c.Argv {
		nul("argument", a)
		if strings.ContainsAny(a, "\"\n") {
			bad("argument %d (%q) contains a double quote or newline, which libkrun passes unescaped on the kernel command line", i+1, a)
		}
	}
	for _, e := range c.Env {
		nul("environment entry", e)
		if strings.ContainsAny(e, "\"\n") {
			k, _, _ := strings.Cut(e, "=")
			bad("environment variable %s contains a double quote or newline, which libkrun passes unescaped on the kernel command line", k)
		}
	}
	nul("console output", c.ConsoleOutput)
	return errors.Join(errs...)
}

// Check reports what in cfg the loaded libkrun cannot do, as typed facts:
// functions it lacks ([*MissingError]) and build features it lacks
// ([*FeatureError]), each wrapped with what needed it. Nothing is silently
// widened: a mode the library cannot carry out is an error, never a
// different mode.
func (l *Lib) Check(cfg *VMConfig) error {
	var errs []error
	needFunc := func(what, fn string) {
		if err := l.need(fn); err != nil {
			errs = append(errs, fmt.Errorf("%s needs %w", what, err))
		}
	}
	if len(cfg.Layers) > 0 {
		needFunc("a root of layers", fnSetOverlayfsRoot)
	}
	if cfg.UID != nil {
		needFunc("switching the VMM's uid", fnSetUID)
	}
	if cfg.GID != nil {
		needFunc("switching the VMM's gid", fnSetGID)
	}
	for _, v := range cfg.VsockPorts {
		if v.Listen {
			needFunc(fmt.Sprintf("a listening vsock port (%d)", v.Port), fnAddVsockPort2)
		}
	}
	n := cfg.Net
	switch n.mode() {
	case NetTSI:
		if n.Scope != nil {
			needFunc("a TSI scope", fnSetTSIScope)
		}
	case NetTap:
		needFunc("a tap network", fnAddNetTap)
		if l.Has(fnAddNetTap) {
			if err := l.NeedFeature(FeatureNet); err != nil {
				errs = append(errs, fmt.Errorf("a tap network needs %s: %w", fnAddNetTap, err))
			}
		}
	case NetNone:
		if !l.Has(fnDisableImplicitVsock) && !l.Has(fnSetTSIScope) {
			needFunc("no network (no NIC, no TSI)", fnDisableImplicitVsock)
		}
	}
	if n.mode() != NetTSI && len(cfg.VsockPorts) > 0 && l.Has(fnDisableImplicitVsock) {
		// Without TSI the vsock device must be added back explicitly.
		needFunc("vsock ports without TSI", fnAddVsock)
	}
	return errors.Join(errs...)
}

// Configure creates a context and applies cfg to it in libkrun's expected
// order: log level (once per Lib), VM config, root, virtio-fs shares, network,
// vsock ports, port map, rlimits, workdir, exec (with environment), console
// output, uid/gid. It validates cfg and checks it against the library first.
// An Overlay root must already be mounted at Overlay.Merged (see
// [RunChild]) unless libkrun assembles it. On error the context is freed and
// the error names the failing C function.
func (l *Lib) Configure(cfg *VMConfig) (*Ctx, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := l.Check(cfg); err != nil {
		return nil, err
	}
	return l.configureChecked(cfg)
}

// configureChecked is Configure for a config already validated and checked.
func (l *Lib) configureChecked(cfg *VMConfig) (*Ctx, error) {
	if !l.logLevel {
		if err := l.SetLogLevel(cfg.LogLevel); err != nil {
			return nil, err
		}
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

// libkrunAssemblesOverlay reports whether cfg's overlay root is handed to
// libkrun rather than mounted by the VMM child.
func (l *Lib) libkrunAssemblesOverlay(cfg *VMConfig) bool {
	return cfg.Overlay != nil && cfg.Overlay.PreferLibkrun && l.Has(fnSetOverlayfsRoot)
}

func (c *Ctx) configure(cfg *VMConfig) error {
	if err := c.SetVMConfig(cfg.CPUs, cfg.MemoryMiB); err != nil {
		return err
	}
	switch o := cfg.Overlay; {
	case len(cfg.Layers) > 0:
		if err := c.SetOverlayfsRoot(cfg.Layers); err != nil {
			return err
		}
	case c.lib.libkrunAssemblesOverlay(cfg):
		if err := c.SetOverlayfsRoot(append(append([]string{}, o.Lower...), o.Upper)); err != nil {
			return err
		}
	case o != nil:
		if err := c.SetRoot(o.Merged); err != nil {
			return err
		}
	default:
		if err := c.SetRoot(cfg.Root); err != nil {
			return err
		}
	}
	for _, m := range cfg.Mounts {
		if err := c.AddVirtiofs(m.Tag, m.HostPath); err != nil {
			return err
		}
	}
	if err := c.setNet(cfg); err != nil {
		return err
	}
	for _, v := range cfg.VsockPorts {
		var err error
		if c.lib.Has(fnAddVsockPort2) {
			err = c.AddVsockPort2(v.Port, v.Path, v.Listen)
		} else {
			err = c.AddVsockPort(v.Port, v.Path)
		}
		if err != nil {
			return err
		}
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
	if err := c.SetExec(cfg.ExecPath, argv, cfg.Env); err != nil {
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

// setNet configures the network; see [Lib.Check] for what each mode needs.
func (c *Ctx) setNet(cfg *VMConfig) error {
	n := cfg.Net
	// Without TSI, the implicit vsock device (which carries TSI) goes, and a
	// plain one comes back only if vsock ports need it.
	noTSI := func() error {
		if !c.lib.Has(fnDisableImplicitVsock) {
			return nil
		}
		if err := c.DisableImplicitVsock(); err != nil {
			return err
		}
		if len(cfg.VsockPorts) > 0 {
			return c.AddVsock(0)
		}
		return nil
	}
	switch n.mode() {
	case NetTap:
		for _, t := range n.Taps {
			mac, err := ParseMAC(t.MAC)
			if err != nil {
				return err
			}
			if err := c.AddNetTap(t.Name, mac, 0, 0); err != nil {
				return err
			}
		}
		return noTSI()
	case NetNone:
		if c.lib.Has(fnDisableImplicitVsock) {
			return noTSI()
		}
		// microsandbox's fork: TSI with scope none blocks every address.
		return c.SetTSIScope("", "", ScopeNone)
	default:
		if n.Scope != nil {
			if err := c.SetTSIScope(n.IP, n.Subnet, *n.Scope); err != nil {
				return err
			}
		}
		if n.PortMap != nil {
			return c.SetPortMap(n.PortMap)
		}
		return nil
	}
}
