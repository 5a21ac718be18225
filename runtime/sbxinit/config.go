package sbxinit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Version is the version of the config.json document. The init refuses another one.
const Version = 1

// Paths inside the sandbox. The init layer (a directory the runtime makes a read-only lower
// layer, or binds in) holds Dir with the init program and its config.
const (
	// Dir is the init layer's only top-level directory.
	Dir = "/.sbx"
	// InitPath is the init program: what libkrun execs and the ns driver runs as PID 1.
	InitPath = Dir + "/init"
	// ConfigPath is the run config the init reads (JSON, mode 0600).
	ConfigPath = Dir + "/config.json"
	// ShareDir holds one empty directory per virtiofs tag. A virtiofs share whose directory
	// ShareDir/TAG is already a mount point (the stand-in libkrun binds the shared host
	// directory there) is bind mounted from it instead of mounted as virtiofs.
	ShareDir = Dir + "/shares"
	// RunDir is where the init mounts a small tmpfs for the files it generates (hosts,
	// resolv.conf, hostname), which it binds over the image's own.
	RunDir = Dir + "/run"
	// ControlDir is an empty directory the ns driver binds a host directory onto, so the
	// control socket (ControlDir/ControlSocket) can be reached from the host.
	ControlDir = Dir + "/ctl"
	// ControlSocket is the usual name of the unix control socket in ControlDir.
	ControlSocket = "init.sock"
)

// Config is a sandbox's run config: everything the init does, resolved by the runtime. It
// travels as the file ConfigPath, never as arguments or environment (libkrun writes those on
// the kernel command line without escaping).
type Config struct {
	Version int     `json:"version"`
	Process Process `json:"process"`
	// Hostname is set with sethostname and written to /etc/hostname (and /etc/hosts). Empty:
	// left as it is.
	Hostname string `json:"hostname,omitempty"`
	// Rlimits are applied to the init before it starts anything, so the payload and every
	// exec inherit them.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// Mounts are performed in order, before the network is configured. A kernel file
	// system (proc, sysfs, devtmpfs, dev, devpts, mqueue, cgroup2) whose target is already a
	// mount of that type (libkrun's own init mounted it, or the ns driver) is skipped.
	Mounts []Mount `json:"mounts,omitempty"`
	// Network configures one interface statically. Nil: only lo is brought up and no file
	// under /etc is written.
	Network *Network `json:"network,omitempty"`
	// Control is where the control socket listens.
	Control Control `json:"control"`
	// HideDir, when set, lays an empty read-only tmpfs over Dir once the init is set up, so
	// the payload sees neither the config (it holds the environment) nor the control socket.
	HideDir bool `json:"hide_dir,omitempty"`
	// Security restricts every process the init starts (the payload and each exec), never
	// the init itself, which needs its privileges to mount and to serve exec. Nil: none.
	Security *Security `json:"security,omitempty"`
	// ReportFD, when not 0, is an inherited descriptor (a pipe to the supervisor; the ns
	// driver passes 3) on which the init writes [Event]s as JSON lines: the payload started,
	// the setup failed, the payload ended (with its exact status: an exit code of 143 and a
	// SIGTERM differ). The init marks it close-on-exec: nothing it starts inherits it.
	ReportFD int `json:"report_fd,omitempty"`
}

// Event is one line the init writes on [Config.ReportFD].
type Event struct {
	// Event is "started" (the payload runs and the control socket listens), "error" (the
	// setup or the payload's start failed; the init exits with Code) or "exit" (the payload
	// ended with Status; the init exits next).
	Event string `json:"event"`
	// Pid is the payload's pid in the sandbox ("started").
	Pid int `json:"pid,omitempty"`
	// Error says what failed ("error"); Errno is the failing system call's error, if any.
	Error string        `json:"error,omitempty"`
	Errno syscall.Errno `json:"errno,omitempty"`
	// Code is the init's exit code for the failure: ExitSetup, ExitNotExecutable or
	// ExitNotFound ("error").
	Code int `json:"code,omitempty"`
	// Status is how the payload ended ("exit").
	Status *ExitStatus `json:"status,omitempty"`
}

// Security is what confines the processes the init starts. It is applied to a dedicated
// thread of the init that starts them all, and inherited from it.
type Security struct {
	// Capabilities, when not nil, is the capability bounding set (CAP_* numbers): a root
	// process holds at most these. The ns driver passes Docker's default set without
	// CAP_MKNOD; in a microVM nil is usual.
	Capabilities []int `json:"capabilities"`
	// NoNewPrivileges sets no_new_privs: set-id programs gain nothing.
	NoNewPrivileges bool `json:"no_new_privileges,omitempty"`
	// Seccomp is a classic BPF program (struct sock_filter instructions) installed as a
	// seccomp filter, e.g. compiled with elastic/go-seccomp-bpf. Empty: no filter.
	Seccomp Program `json:"seccomp,omitempty"`
}

// Program is a classic BPF program. In JSON it is one base64 string of its instructions as
// the kernel lays them out (8 bytes each, little-endian): a filter of a few hundred
// instructions as objects would be the bulk of the config and of the init's start-up.
type Program []SockFilter

// MarshalJSON encodes the program as base64.
func (p Program) MarshalJSON() ([]byte, error) {
	raw := make([]byte, 0, 8*len(p))
	for _, f := range p {
		raw = binary.LittleEndian.AppendUint16(raw, f.Code)
		raw = append(raw, f.Jt, f.Jf)
		raw = binary.LittleEndian.AppendUint32(raw, f.K)
	}
	return json.Marshal(raw)
}

// UnmarshalJSON decodes a base64 program.
func (p *Program) UnmarshalJSON(data []byte) error {
	var raw []byte
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("seccomp program: %w", err)
	}
	if len(raw)%8 != 0 {
		return fmt.Errorf("seccomp program: %d bytes is not a whole number of 8-byte instructions", len(raw))
	}
	prog := make(Program, len(raw)/8)
	for i := range prog {
		b := raw[8*i:]
		prog[i] = SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	*p = prog
	return nil
}

// SockFilter is one classic BPF instruction (struct sock_filter).
type SockFilter struct {
	Code uint16 `json:"code"`
	Jt   uint8  `json:"jt"`
	Jf   uint8  `json:"jf"`
	K    uint32 `json:"k"`
}

// Process is the payload.
type Process struct {
	// Argv is the command line; Argv[0] is looked up in Env's PATH when it has no slash.
	Argv []string `json:"argv"`
	// Env is the environment, "KEY=VALUE" each, carried byte for byte. HOME is added from
	// the user's passwd entry when missing, PATH with a default when missing.
	Env []string `json:"env,omitempty"`
	// Cwd is the working directory, created (as root, 0755) when missing; "/" when empty.
	Cwd string `json:"cwd,omitempty"`
	// User is who the payload runs as.
	User User `json:"user"`
}

// User is a user to run a process as: either a spec resolved inside the sandbox against the
// image's /etc/passwd and /etc/group, or numeric ids. The zero User is root.
type User struct {
	// Spec is "", "name", "uid", "uid:gid", "name:group" or "uid:group" (Docker's USER
	// forms). Ignored when IDs is set.
	Spec string `json:"spec,omitempty"`
	// IDs, when set, are used as they are.
	IDs *IDs `json:"ids,omitempty"`
}

// IDs are numeric credentials.
type IDs struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// Rlimit is one resource limit: Resource is the Linux RLIMIT_* number; math.MaxUint64 is
// unlimited.
type Rlimit struct {
	Name     string `json:"name,omitempty"` // "NOFILE", for messages
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// MountType says what a Mount is.
type MountType string

// The mount types the init performs.
const (
	// Virtiofs mounts the virtiofs share whose tag is Source (or binds ShareDir/TAG when that
	// is a mount point: the stand-in libkrun).
	Virtiofs MountType = "virtiofs"
	// Bind binds Source, a path in the sandbox's own view, onto Target.
	Bind MountType = "bind"
	// Tmpfs mounts a tmpfs; Options such as "size=64m", "mode=1777".
	Tmpfs MountType = "tmpfs"
	// Proc, Sysfs, Devtmpfs, Devpts, Mqueue and Cgroup2 are kernel file systems.
	Proc     MountType = "proc"
	Sysfs    MountType = "sysfs"
	Devtmpfs MountType = "devtmpfs"
	Devpts   MountType = "devpts"
	Mqueue   MountType = "mqueue"
	Cgroup2  MountType = "cgroup2"
	// Dev is a minimal /dev without the host's devices: a tmpfs with null, zero, full,
	// random, urandom and tty, devpts at pts (ptmx linked to it), a tmpfs at shm and the
	// fd, stdin, stdout and stderr links. For the ns driver, where devtmpfs would show
	// every host device.
	Dev MountType = "dev"
)

// Mount is one mount the init performs.
type Mount struct {
	Type MountType `json:"type"`
	// Source is the virtiofs tag (Virtiofs) or the path to bind (Bind); unused otherwise.
	Source string `json:"source,omitempty"`
	// Target is the absolute path in the sandbox; a missing directory is created.
	Target string `json:"target"`
	// ReadOnly mounts it read-only (binds are remounted read-only, recursively).
	ReadOnly bool `json:"read_only,omitempty"`
	// Options are file system options (the mount data), e.g. "size=64m".
	Options []string `json:"options,omitempty"`
}

// Network is the static configuration of the sandbox's one interface.
type Network struct {
	// Interface is the interface's name in the sandbox ("eth0"). Empty: no interface but lo
	// (scope none); Address, Gateway and MTU are then unused.
	Interface string `json:"interface,omitempty"`
	// Address is the sandbox's address with its prefix length ("10.88.0.10/24").
	Address netip.Prefix `json:"address,omitzero"`
	// Gateway, when valid, becomes the default route. Group-only scopes have none.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// MTU is set when not zero.
	MTU int `json:"mtu,omitempty"`
	// DNS are the name servers written to /etc/resolv.conf; none: the image's file is left.
	DNS []netip.Addr `json:"dns,omitempty"`
	// Search are resolv.conf search domains.
	Search []string `json:"search,omitempty"`
	// Hosts are /etc/hosts entries besides localhost and the sandbox's own name: the
	// group's peers.
	Hosts []Host `json:"hosts,omitempty"`
}

// Host is one /etc/hosts entry.
type Host struct {
	Name string     `json:"name"`
	Addr netip.Addr `json:"addr"`
}

// Control says where the control socket listens. Both may be set: the init listens on both
// (the stand-in libkrun reaches a "vsock" port through a unix socket). An endpoint that
// cannot listen is only an error when the other one cannot either.
type Control struct {
	// VsockPort is an AF_VSOCK port (krun: krun_add_vsock_port2 maps it to a host socket).
	// Only connections from the host (CID 2) are served.
	VsockPort uint32 `json:"vsock_port,omitempty"`
	// UnixPath is a unix socket path in the sandbox (ns: ControlDir/ControlSocket, with
	// ControlDir bound to a host directory). Only connections from outside the sandbox's PID
	// namespace (peer pid 0) are served.
	UnixPath string `json:"unix_path,omitempty"`
}

// Validate checks what the init relies on. Messages name the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Version != Version {
		bad("run config version %d, this init reads version %d: the init and sbx must come from the same build", c.Version, Version)
	}
	if len(c.Process.Argv) == 0 || c.Process.Argv[0] == "" {
		bad("process.argv: a command is required")
	}
	for i, e := range c.Process.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			bad("process.env[%d]: %q is not KEY=VALUE without NUL bytes", i, e)
		}
	}
	for i, a := range c.Process.Argv {
		if strings.ContainsRune(a, 0) {
			bad("process.argv[%d] holds a NUL byte", i)
		}
	}
	if c.Process.Cwd != "" && !path.IsAbs(c.Process.Cwd) {
		bad("process.cwd %q is not absolute", c.Process.Cwd)
	}
	if len(c.Hostname) > 64 || strings.ContainsAny(c.Hostname, "\x00/ \t\n") {
		bad("hostname %q: at most 64 characters, no spaces or slashes", c.Hostname)
	}
	for i, r := range c.Rlimits {
		if r.Resource < 0 || r.Resource > 15 {
			bad("rlimits[%d]: resource %d is not a Linux RLIMIT_* number", i, r.Resource)
		}
		if r.Soft > r.Hard {
			bad("rlimits[%d] %s: soft limit %d above hard limit %d", i, r.Name, r.Soft, r.Hard)
		}
	}
	for i, m := range c.Mounts {
		if !path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target {
			bad("mounts[%d]: target %q is not a clean absolute path", i, m.Target)
		}
		switch m.Type {
		case Virtiofs:
			if m.Source == "" || strings.ContainsAny(m.Source, "/\x00") || m.Source == "." || m.Source == ".." {
				bad("mounts[%d]: virtiofs tag %q must be a plain name", i, m.Source)
			}
		case Bind:
			if !path.IsAbs(m.Source) {
				bad("mounts[%d]: bind source %q is not absolute", i, m.Source)
			}
		case Tmpfs, Proc, Sysfs, Devtmpfs, Devpts, Mqueue, Cgroup2, Dev:
		default:
			bad("mounts[%d]: unknown mount type %q", i, m.Type)
		}
		for _, o := range m.Options {
			if strings.ContainsAny(o, ",\x00") {
				bad("mounts[%d]: option %q holds a comma or NUL", i, o)
			}
		}
	}
	if n := c.Network; n != nil && n.Interface != "" {
		if len(n.Interface) > 15 || strings.ContainsAny(n.Interface, "/ \x00") {
			bad("network.interface %q is not an interface name", n.Interface)
		}
		if !n.Address.IsValid() {
			bad("network.address: an address with its prefix length is required with an interface")
		}
		if n.Gateway.IsValid() && n.Address.IsValid() && n.Gateway.Is4() != n.Address.Addr().Is4() {
			bad("network.gateway %s is not of the address's family", n.Gateway)
		}
		if n.MTU < 0 || (n.MTU != 0 && n.MTU < 576) || n.MTU > 65535 {
			bad("network.mtu %d out of range 576..65535", n.MTU)
		}
	}
	if n := c.Network; n != nil {
		for i, h := range n.Hosts {
			if h.Name == "" || strings.ContainsAny(h.Name, " \t\n\x00#") || !h.Addr.IsValid() {
				bad("network.hosts[%d]: %q %s is not a host name and address", i, h.Name, h.Addr)
			}
		}
		for i, s := range n.Search {
			if s == "" || strings.ContainsAny(s, " \t\n\x00") {
				bad("network.search[%d]: %q is not a domain", i, s)
			}
		}
	}
	if sec := c.Security; sec != nil {
		for i, cp := range sec.Capabilities {
			if cp < 0 || cp > 63 {
				bad("security.capabilities[%d]: %d is not a capability number", i, cp)
			}
		}
		if len(sec.Seccomp) > 4096 {
			bad("security.seccomp: %d instructions, a filter holds at most 4096", len(sec.Seccomp))
		}
	}
	if c.ReportFD != 0 && c.ReportFD < 3 {
		bad("report_fd %d: a descriptor above stderr (3 or more)", c.ReportFD)
	}
	if p := c.Control.UnixPath; p != "" && (!path.IsAbs(p) || len(p) > 107) {
		bad("control.unix_path %q: an absolute path of at most 107 bytes", p)
	}
	return errors.Join(errs...)
}

// WriteConfig writes cfg as dir/.sbx/config.json (mode 0600, written atomically) into a
// directory that becomes the sandbox's init layer, and creates the layer's empty mount point
// directories (ShareDir/TAG for each virtiofs mount, RunDir, ControlDir). It does not place
// the init program: see InstallInit.
func WriteConfig(dir string, cfg Config) error {
	if cfg.Version == 0 {
		cfg.Version = Version
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("write init config: %w", err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("write init config: %w", err)
	}
	sbx := filepath.Join(dir, Dir)
	dirs := []string{sbx, filepath.Join(dir, ShareDir), filepath.Join(dir, RunDir), filepath.Join(dir, ControlDir)}
	for _, m := range cfg.Mounts {
		if m.Type == Virtiofs {
			dirs = append(dirs, filepath.Join(dir, ShareDir, m.Source))
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("write init config: %w", err)
		}
	}
	return writeAtomic(filepath.Join(dir, ConfigPath), data, 0o600)
}

// ReadConfig reads and validates a run config written by WriteConfig, from the file name
// (ConfigPath in the sandbox).
func ReadConfig(name string) (Config, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("read init config: %s not found: sbx-init runs only as the first process of an sbx sandbox", name)
	}
	if err != nil {
		return Config{}, fmt.Errorf("read init config: %w", err)
	}
	return DecodeConfig(data)
}

// DecodeConfig decodes and validates a run config. Unknown fields are errors: a config from
// a newer sbx is refused rather than half obeyed.
func DecodeConfig(data []byte) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("read init config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("read init config: %w", err)
	}
	return cfg, nil
}

// InstallInit places the init program binary (see FindInit) at dir/.sbx/init: a hard link
// when it is on the same file system (the layer is only ever a read-only lower layer, so the
// sandbox cannot change the shared file), else a copy of mode 0555.
func InstallInit(dir, binary string) error {
	dst := filepath.Join(dir, InitPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("install init: %w", err)
	}
	_ = os.Remove(dst)
	if err := os.Link(binary, dst); err == nil {
		return nil
	}
	src, err := os.Open(binary)
	if err != nil {
		return fmt.Errorf("install init: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".init-*")
	if err != nil {
		return fmt.Errorf("install init: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return fmt.Errorf("install init: copy %s: %w", binary, err)
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return fmt.Errorf("install init: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("install init: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install init: %w", err)
	}
	return nil
}

// FindInit locates the sbx-init program: $SBX_INIT when set, else sbx-init next to the
// running executable (bin/sbx → bin/sbx-init, /usr/local/bin), else ../libexec/sbx/sbx-init.
func FindInit() (string, error) {
	if p := os.Getenv("SBX_INIT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SBX_INIT: %w", err)
		}
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find sbx-init: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	cands := []string{
		filepath.Join(filepath.Dir(exe), "sbx-init"),
		filepath.Join(filepath.Dir(exe), "..", "libexec", "sbx", "sbx-init"),
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", fmt.Errorf("sbx-init not found next to %s: install it with 'make install' (it is built with sbx), or set SBX_INIT to its path", exe)
}

func writeAtomic(name string, data []byte, mode os.FileMode) error {
	// Rewritten at every start, usually the same: an unchanged file is left alone.
	if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode && fi.Size() == int64(len(data)) {
		if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	// No fsync: the file is written again at the sandbox's next start, and the rename keeps
	// a reader from seeing half of it; an fsync costs milliseconds on every start.
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
