package ns

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// Config is everything the child needs to become a sandbox. The parent
// sends it to the child as JSON on stdin; it is already resolved (image
// config merged, paths absolute), so the child makes no policy decisions.
type Config struct {
	// Name names the sandbox: its cgroup and, without Hostname, its host name.
	Name string `json:"name"`
	// Hostname is the sandbox's host name; Name when empty.
	Hostname string `json:"hostname,omitempty"`

	// Layers are the image's unpacked layer directories, bottom first. They
	// are only read, and hold whiteouts in overlayfs form.
	Layers []string `json:"layers,omitempty"`
	// RootDir is a ready root file system used read-only as the single lower
	// layer instead of Layers.
	RootDir string `json:"root_dir,omitempty"`
	// UpperDir and WorkDir are the sandbox's persistent writable layer and
	// overlayfs's scratch directory, side by side in one directory that
	// belongs to the sandbox. They are created when missing, and their
	// directory is made 0700 so that no other host user can reach setuid
	// files or device nodes the sandbox writes. Without them the root file
	// system is read-only.
	UpperDir string `json:"upper_dir,omitempty"`
	WorkDir  string `json:"work_dir,omitempty"`
	// Mounts are bind mounted into the root file system, in order.
	Mounts []Mount `json:"mounts,omitempty"`

	// Argv is the payload's command line; Argv[0] is looked up in the
	// sandbox's PATH when it has no slash.
	Argv []string `json:"argv"`
	// Env is the payload's environment ("K=V"). PATH and HOME get defaults
	// when missing.
	Env []string `json:"env,omitempty"`
	// Workdir is the payload's working directory, created when missing; "/"
	// when empty.
	Workdir string `json:"workdir,omitempty"`
	// User is "name", "uid", "uid:gid", "name:group" or "uid:group"; names
	// are looked up in the sandbox's /etc/passwd and /etc/group. Root when
	// empty.
	User string `json:"user,omitempty"`
	// Rlimits are applied to the payload (and the init above it).
	Rlimits []Rlimit `json:"rlimits,omitempty"`

	// CPUs limits the sandbox to that many CPUs' worth of time (a CFS
	// quota); 0 means no limit.
	CPUs int `json:"cpus,omitempty"`
	// MemoryMiB limits the sandbox's memory; 0 means no limit.
	MemoryMiB int `json:"memory_mib,omitempty"`
	// Pids limits how many processes and threads the sandbox may have at
	// once (its init included); 0 means DefaultPids.
	Pids int `json:"pids,omitempty"`
	// CgroupParent is the cgroup under which the sandbox's own cgroup, Name,
	// is created, e.g. "sbx/shop". Relative paths are resolved under the
	// calling process's cgroup, absolute ones from the hierarchy's root.
	CgroupParent string `json:"cgroup_parent,omitempty"`

	// Hosts and ResolvConf, when not empty, become the sandbox's /etc/hosts
	// and /etc/resolv.conf. They are not written into the writable layer.
	Hosts      string `json:"hosts,omitempty"`
	ResolvConf string `json:"resolv_conf,omitempty"`
	// NetNS is the path of a network namespace to join (/run/netns/x). When
	// empty the sandbox gets a fresh one with only loopback up.
	NetNS string `json:"netns,omitempty"`
}

// DefaultPids is the sandbox's pids limit when Config.Pids is 0: enough for
// any service, low enough that a fork bomb stays inside. MinPids is the
// lowest limit Config.Pids may set: the sandbox's init is a Go program with
// a handful of threads.
const (
	DefaultPids = 4096
	MinPids     = 16
)

// pids is the sandbox's pids limit.
func (c *Config) pids() int {
	if c.Pids > 0 {
		return c.Pids
	}
	return DefaultPids
}

// Mount is a host file or directory bind mounted into the sandbox.
type Mount struct {
	// Source is the absolute host path; it must exist.
	Source string `json:"source"`
	// Target is the absolute path inside the sandbox, created (as a file or
	// a directory, like Source) when missing.
	Target string `json:"target"`
	// ReadOnly makes the mount, and every mount below it, read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Rlimit is a resource limit: Resource is a RLIMIT_* number (e.g.
// syscall.RLIMIT_NOFILE), Soft and Hard the limits (math.MaxUint64 is
// unlimited).
type Rlimit struct {
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// ExitStatus is how a sandbox ended: the payload's exit code, or the
// signal that killed it (with Code 128+signal, as a shell reports it).
type ExitStatus struct {
	Code   int            `json:"code"`
	Signal syscall.Signal `json:"signal,omitempty"`
}

// String says "exit code 3" or "killed by signal terminated".
func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return "killed by signal " + s.Signal.String()
	}
	return "exit code " + strconv.Itoa(s.Code)
}

// StepError is a failure of one step of the child's setup ("mount
// overlay", "rlimit NOFILE", "user"), sent back to the parent. Errno, when
// set, is the failing system call's error, so errors.Is(err, syscall.EPERM)
// works across the process boundary.
type StepError struct {
	Step  string        `json:"step"`
	Msg   string        `json:"error"`
	Errno syscall.Errno `json:"errno,omitempty"`
}

func (e *StepError) Error() string { return e.Step + ": " + e.Msg }

// Unwrap returns the system call error, if any.
func (e *StepError) Unwrap() error {
	if e.Errno != 0 {
		return e.Errno
	}
	return nil
}

// stepErr builds a StepError from err, keeping its errno if it has one.
func stepErr(step string, err error) *StepError {
	se := &StepError{Step: step, Msg: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		se.Errno = errno
	}
	return se
}

// Problem is a host prerequisite that [Preflight] found missing.
type Problem struct {
	// Check names what was checked ("privileges", "overlayfs", "cgroups").
	Check string
	// Detail says what is wrong.
	Detail string
	// Fix says what to do about it.
	Fix string
	// Fatal is true when the driver cannot run at all; otherwise the
	// sandbox runs degraded (e.g. without resource limits).
	Fatal bool
}

func (p Problem) String() string { return p.Check + ": " + p.Detail + " (" + p.Fix + ")" }

// validate checks what the child would otherwise only find out half way
// through its setup.
func (c *Config) validate() error {
	if err := validName(c.Name); err != nil {
		return err
	}
	switch {
	case len(c.Argv) == 0 || c.Argv[0] == "":
		return errors.New("config: no command to run: set entrypoint or command, or use an image that has one")
	case len(c.Layers) == 0 && c.RootDir == "":
		return errors.New("config: no root file system: neither layers nor a root directory")
	case len(c.Layers) > 0 && c.RootDir != "":
		return errors.New("config: both layers and a root directory given; use one")
	case (c.UpperDir == "") != (c.WorkDir == ""):
		return errors.New("config: upper and work directories go together")
	case c.CPUs < 0 || c.MemoryMiB < 0 || c.Pids < 0:
		return errors.New("config: negative cpus, memory or pids")
	case c.Pids > 0 && c.Pids < MinPids:
		return fmt.Errorf("config: a pids limit of %d is too low: the sandbox's init alone needs about 10 (Go runtime threads); use at least %d", c.Pids, MinPids)
	case c.UpperDir != "" && path.Dir(path.Clean(c.UpperDir)) != path.Dir(path.Clean(c.WorkDir)):
		return fmt.Errorf("config: the upper directory %s and the work directory %s must be in the same directory (the sandbox's own, which is made 0700)", c.UpperDir, c.WorkDir)
	}
	for _, p := range append([]string{c.RootDir, c.UpperDir, c.WorkDir, c.NetNS}, c.Layers...) {
		if p != "" && !path.IsAbs(p) {
			return fmt.Errorf("config: %q is not an absolute path", p)
		}
	}
	for _, m := range c.Mounts {
		if !path.IsAbs(m.Source) || !path.IsAbs(m.Target) {
			return fmt.Errorf("config: mount %s -> %s: source and target must be absolute", m.Source, m.Target)
		}
	}
	if c.Workdir != "" && !path.IsAbs(c.Workdir) {
		return fmt.Errorf("config: workdir %q is not absolute", c.Workdir)
	}
	return nil
}

// validName checks that name can name a cgroup directory.
func validName(name string) error {
	if name == "" {
		return errors.New("config: sandbox name is empty")
	}
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("config: sandbox name %q is not usable as a cgroup name", name)
	}
	return nil
}

// hostname is the sandbox's host name.
func (c *Config) hostname() string {
	if c.Hostname != "" {
		return c.Hostname
	}
	return c.Name
}

// RlimitName names a RLIMIT_* resource number ("NOFILE"), or returns the
// number as text.
func RlimitName(resource int) string {
	names := [...]string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
		"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}
	if resource >= 0 && resource < len(names) {
		return names[resource]
	}
	return strconv.Itoa(resource)
}
