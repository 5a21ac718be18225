//go:build linux

package ns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime/sbxinit"
)

// event is one line on the report pipe, child to parent: the ns child's own
// setup failures (with their Step), then the init's [sbxinit.Event]s on the
// same descriptor, which the init inherits.
type event struct {
	sbxinit.Event
	// Step names the ns child's failing setup step; empty for the init's
	// events.
	Step string `json:"step,omitempty"`
}

// stepError is the error an "error" event stands for.
func (ev *event) stepError() *StepError {
	step := ev.Step
	if step == "" {
		step = "init"
	}
	return &StepError{Step: step, Msg: ev.Error, Errno: ev.Errno}
}

// reportFD is the report pipe's descriptor in the child, and in the init.
const reportFD = 3

// stagingDir is where the child lays its private tmpfs, under which the new
// root is assembled. Mounts there exist only in the child's mount namespace,
// so every sandbox can use the same directory at once.
const stagingDir = "/run/sbx-ns"

// RunChild is the child side of [Start]: the hidden command of sbx calls it
// with its stdin (the JSON [Config]) and fd 3 (the report pipe). It expects
// to run in the fresh namespaces Start creates, as their PID 1.
//
// It builds the sandbox's root, pivots into it and executes the init
// (sbxinit.InitPath), which stays PID 1, runs the payload and reports on the
// same pipe. It returns only when that failed, after reporting it to the
// parent; the caller should then exit non-zero.
func RunChild(stdin io.Reader, report *os.File) error {
	// Joining a network namespace, the cgroup namespace and the session
	// keyring change only the calling thread, and the init is executed from
	// it: keep this goroutine on it.
	runtime.LockOSThread()
	fd := int(report.Fd())
	syscall.CloseOnExec(fd)
	enc := json.NewEncoder(report)
	fail := func(se *StepError) error {
		_ = enc.Encode(event{Event: sbxinit.Event{Event: "error", Error: se.Msg, Errno: se.Errno}, Step: se.Step})
		return se
	}
	if fd != reportFD {
		return fail(&StepError{Step: "report pipe", Msg: fmt.Sprintf("descriptor %d, want %d", fd, reportFD)})
	}
	var cfg Config
	if err := json.NewDecoder(stdin).Decode(&cfg); err != nil {
		return fail(stepErr("read config", err))
	}
	// The config arrives only once the parent has put this process in its
	// cgroups: a cgroup namespace made now has them as its root, so the
	// payload sees (and could mount) nothing above them.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fail(stepErr("create cgroup namespace", err))
	}
	syscall.Umask(0o022)
	c := &child{cfg: &cfg}
	if se := c.setup(); se != nil {
		return fail(se)
	}
	if se := execInit(); se != nil {
		return fail(se)
	}
	return nil
}

// child is the state of the setup.
type child struct {
	cfg  *Config
	root string // the new root's mountpoint, below stagingDir
}

// setup does everything up to and including pivot_root.
func (c *child) setup() *StepError {
	cfg := c.cfg
	if cfg.NetNS != "" {
		if err := joinNetNS(cfg.NetNS); err != nil {
			return stepErr("join network namespace "+cfg.NetNS, err)
		}
	} else if err := loopbackUp(); err != nil {
		return stepErr("bring up loopback", err)
	}
	allowPingSockets()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return stepErr("make mounts private", err)
	}
	if err := os.MkdirAll(stagingDir, 0o700); err != nil {
		return stepErr("create "+stagingDir, err)
	}
	if err := unix.Mount("tmpfs", stagingDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=700,size=1m"); err != nil {
		return stepErr("mount staging tmpfs on "+stagingDir, err)
	}
	c.root = path.Join(stagingDir, "root")
	if err := os.Mkdir(c.root, 0o755); err != nil {
		return stepErr("create root mountpoint", err)
	}
	if se := c.mountRoot(); se != nil {
		return se
	}
	rootFD, err := unix.Open(c.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return stepErr("open new root", err)
	}
	defer unix.Close(rootFD)

	if err := mountIn(rootFD, "proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return stepErr("mount /proc", err)
	}
	// /sys is a convenience (some tools read it), read-only; a host that
	// refuses it does not stop the sandbox.
	_ = mountIn(rootFD, "sysfs", "/sys", "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err := maskPaths(rootFD, c.root); err != nil {
		return stepErr("mask /proc and /sys", err)
	}
	if err := setupDev(rootFD); err != nil {
		return stepErr("set up /dev", err)
	}
	// The user's mounts come last, so they win over /dev, as with Docker.
	for _, m := range cfg.Mounts {
		if err := bindIn(rootFD, m.Source, m.Target, m.ReadOnly); err != nil {
			return stepErr(fmt.Sprintf("mount %s on %s", m.Source, m.Target), err)
		}
	}
	// The init's control socket, reachable from the host (the init hides
	// /.sbx from the payload once it holds the directory).
	if cfg.ControlDir != "" {
		if err := bindIn(rootFD, cfg.ControlDir, sbxinit.ControlDir, false); err != nil {
			return stepErr("mount the control directory "+cfg.ControlDir, err)
		}
	}
	if err := pivot(c.root); err != nil {
		return stepErr("pivot_root", err)
	}
	return nil
}

// execInit makes the init PID 1: stdin /dev/null (the payload's), the
// report pipe inherited, a session keyring of the sandbox's own (so nothing
// reaches the keys of the session sbx was started from), no environment
// (the run config is a file). The init keeps every capability: it mounts,
// and confines what it starts itself (the capability bounding set,
// no_new_privs and the seccomp filter of its run config).
func execInit() *StepError {
	if _, err := unix.KeyctlInt(unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0); err != nil && !errors.Is(err, unix.ENOSYS) {
		return stepErr("join a new session keyring", err)
	}
	devnull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return stepErr("open /dev/null", err)
	}
	if err := unix.Dup3(devnull, 0, 0); err != nil {
		unix.Close(devnull)
		return stepErr("open /dev/null", err)
	}
	unix.Close(devnull)
	if _, err := unix.FcntlInt(reportFD, unix.F_SETFD, 0); err != nil {
		return stepErr("pass the report pipe", err)
	}
	err = unix.Exec(sbxinit.InitPath, []string{sbxinit.InitPath}, []string{})
	syscall.CloseOnExec(reportFD)
	return stepErr("exec "+sbxinit.InitPath, err)
}

// mountRoot mounts the root file system on c.root.
func (c *child) mountRoot() *StepError {
	cfg := c.cfg
	lowers := cfg.Layers
	if cfg.RootDir != "" {
		lowers = []string{cfg.RootDir}
	}
	for _, l := range lowers {
		if st, err := os.Stat(l); err != nil {
			return stepErr("mount overlay", fmt.Errorf("layer: %w", err))
		} else if !st.IsDir() {
			return stepErr("mount overlay", fmt.Errorf("layer %s is not a directory", l))
		}
	}
	if cfg.UpperDir != "" {
		if err := makeUpper(cfg.UpperDir, lowers[len(lowers)-1]); err != nil {
			return stepErr("create upper directory", err)
		}
		if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
			return stepErr("create work directory", err)
		}
	}
	// The init layer is the topmost lower layer: no image can hide the init.
	initLayer := cfg.initLayer()
	data, dir, err := overlayOptions(lowers, initLayer, cfg.UpperDir, cfg.WorkDir, os.Getpagesize())
	var oe *optionsError
	if errors.As(err, &oe) {
		// The new mount API takes the layers one at a time, without a
		// length limit or escaping (Linux 6.8+).
		if nerr := mountOverlayFsconfig(c.root, append(lowers[:len(lowers):len(lowers)], initLayer), cfg.UpperDir, cfg.WorkDir); nerr != nil {
			return stepErr("mount overlay", fmt.Errorf("%w (and fsconfig lowerdir+: %v)", err, nerr))
		}
		return nil
	}
	if err != nil {
		return stepErr("mount overlay", err)
	}
	if dir != "" {
		// The lowerdirs are relative to dir; see overlayOptions.
		if err := os.Chdir(dir); err != nil {
			return stepErr("mount overlay", err)
		}
	}
	// nodev: a device node in any layer, shipped in the image or made in
	// the writable layer, cannot be opened through the root, the only way
	// the payload reaches the layers. nosuid: setuid bits and file
	// capabilities grant nothing (as no_new_privs already ensures).
	if err := unix.Mount("overlay", c.root, "overlay", unix.MS_NODEV|unix.MS_NOSUID, data); err != nil {
		hint := ""
		if errors.Is(err, unix.EINVAL) && cfg.UpperDir != "" {
			hint = "; the writable layer needs a file system overlayfs accepts as upper (ext4, xfs, btrfs, tmpfs; not overlayfs, NFS or FUSE), on the same file system as the work directory; the kernel log (dmesg) names the cause"
		}
		return stepErr("mount overlay", fmt.Errorf("%w (options %q)%s", err, data, hint))
	}
	if dir != "" {
		_ = os.Chdir("/")
	}
	return nil
}

// makeUpper creates the writable layer. The merged root directory takes
// its owner and mode from the upper directory, so a new one copies them
// from the top layer's root (a 0700 upper would lock every user but root
// out of "/").
func makeUpper(upper, top string) error {
	if _, err := os.Stat(upper); err == nil {
		return nil
	}
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return err
	}
	st, err := os.Stat(top)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(upper, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(upper, st.Mode().Perm()|st.Mode()&(os.ModeSticky|os.ModeSetgid))
}

// overlayOptions builds the overlay mount data for lowers (bottom first)
// and the init layer above them. mount(2) copies at most one page of it;
// when the lowerdir list does not fit, the image's layers are named relative
// to their longest common parent, which is returned as dir: the caller must
// chdir there for the mount. The init layer, which lives elsewhere, keeps
// its absolute name.
func overlayOptions(lowers []string, initLayer, upper, work string, limit int) (data, dir string, err error) {
	for _, p := range append([]string{upper, work, initLayer}, lowers...) {
		if strings.ContainsAny(p, ",:\\\n") {
			return "", "", &optionsError{fmt.Sprintf("path %q contains a comma, colon, backslash or newline, which overlay mount options cannot carry: move it", p)}
		}
	}
	build := func(names []string) string {
		rev := make([]string, len(names))
		for i, n := range names {
			rev[len(names)-1-i] = n
		}
		opts := "lowerdir=" + initLayer + ":" + strings.Join(rev, ":")
		if upper != "" {
			opts += ",upperdir=" + upper + ",workdir=" + work
		}
		// index=off: the same layers are shared by many sandboxes and the
		// upper dir outlives a change of them; xino=off: layers often
		// live on another file system than the upper.
		return opts + ",index=off,xino=off"
	}
	data = build(lowers)
	if len(data) < limit {
		return data, "", nil
	}
	dir = commonParent(lowers)
	rel := make([]string, len(lowers))
	for i, l := range lowers {
		rel[i] = strings.TrimPrefix(strings.TrimPrefix(l, dir), "/")
		if rel[i] == "" {
			rel[i] = "."
		}
	}
	data = build(rel)
	if len(data) >= limit {
		return "", "", &optionsError{fmt.Sprintf("%d layers need %d bytes of mount options, more than the kernel's limit of %d even relative to %s: flatten the image or use fewer layers", len(lowers), len(data), limit-1, dir)}
	}
	return data, dir, nil
}

// optionsError says that the layers cannot be put into mount(2) options.
type optionsError struct{ msg string }

func (e *optionsError) Error() string { return e.msg }

// mountOverlayFsconfig mounts the overlay with the new mount API, one
// "lowerdir+" per layer, top first.
func mountOverlayFsconfig(target string, lowers []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return fmt.Errorf("fsconfig %s=%s: %w", key, value, err)
		}
		return nil
	}
	for i := len(lowers) - 1; i >= 0; i-- {
		if err := set("lowerdir+", lowers[i]); err != nil {
			return err
		}
	}
	opts := [][2]string{{"index", "off"}, {"xino", "off"}}
	if upper != "" {
		opts = append(opts, [2]string{"upperdir", upper}, [2]string{"workdir", work})
	}
	for _, o := range opts {
		if err := set(o[0], o[1]); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// commonParent is the longest directory that contains every path.
func commonParent(paths []string) string {
	dir := path.Dir(path.Clean(paths[0]))
	for _, p := range paths[1:] {
		p = path.Clean(p)
		for dir != "/" && !strings.HasPrefix(p, dir+"/") {
			dir = path.Dir(dir)
		}
	}
	return dir
}

// pivot makes root the root directory and detaches the old one.
func pivot(root string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	// With "." as both new and put_old, the old root ends up stacked on
	// top of the new one, where it can be detached without a directory
	// for it in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return os.Chdir("/")
}

// joinNetNS moves the calling thread into the network namespace at p.
func joinNetNS(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWNET)
}

// loopbackUp brings lo up in a fresh network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// openIn opens p inside the root at rootFD, resolving symlinks as if rootFD
// were "/", so nothing in the image can point a mount outside it.
func openIn(rootFD int, p string) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(rootFD, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// ensureIn opens p inside the root, first creating it (and its parents) as
// a directory or an empty file when it is missing. A dangling symlink is
// followed inside the root and its target created, as runc does.
func ensureIn(rootFD int, p string, dir bool) (int, error) {
	return ensureInHops(rootFD, p, dir, 0)
}

func ensureInHops(rootFD int, p string, dir bool, hops int) (int, error) {
	p = path.Clean("/" + p)
	fd, err := openIn(rootFD, p)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" {
		return fd, err
	}
	parent, err := ensureInHops(rootFD, path.Dir(p), true, hops)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := path.Base(p)
	if link, err := readlinkat(parent, base); err == nil {
		if hops >= 40 {
			return -1, fmt.Errorf("%s: %w", p, unix.ELOOP)
		}
		if !path.IsAbs(link) {
			link = path.Join(path.Dir(p), link)
		}
		return ensureInHops(rootFD, link, dir, hops+1)
	}
	if dir {
		err = unix.Mkdirat(parent, base, 0o755)
	} else {
		var f int
		f, err = unix.Openat(parent, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create %s: %w", p, err)
	}
	return openIn(rootFD, p)
}

// readlinkat reads the symlink name in the directory dirFD, an O_PATH
// descriptor.
func readlinkat(dirFD int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirFD, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// fdPath names an O_PATH descriptor so mount(2) can use it.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountIn mounts a file system on target inside the root, creating the
// mountpoint directory when missing.
func mountIn(rootFD int, source, target, fstype string, flags uintptr, data string) error {
	fd, err := ensureIn(rootFD, target, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Mount(source, fdPath(fd), fstype, flags, data)
}

// bindIn bind mounts the host path src on target inside the root,
// recursively, and read-only (with everything below it) when ro.
func bindIn(rootFD int, src, target string, ro bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	fd, err := ensureIn(rootFD, target, st.IsDir())
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(src, fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if !ro {
		return nil
	}
	// fd still names what the mount now covers; reopen to get the mount.
	mfd, err := openIn(rootFD, target)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	err = unix.MountSetattr(mfd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.12: only the top mount becomes read-only.
		err = unix.Mount("", fdPath(mfd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	if err != nil {
		return fmt.Errorf("make read-only: %w", err)
	}
	return nil
}

// readOnlyPaths and maskedPaths are runc's and podman's defaults: kernel-wide
// knobs become read-only; kernel memory, timers, interrupts, keys,
// hardware and firmware details become empty (a file reads as /dev/null, a
// directory as an empty read-only tmpfs). Missing paths are skipped.
var (
	readOnlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	maskedPaths   = []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
		"/sys/dev/block", "/sys/devices/virtual/powercap", "/sys/firmware", "/sys/fs/selinux"}
)

// maskPaths applies readOnlyPaths and maskedPaths to the fresh /proc and
// /sys.
func maskPaths(rootFD int, root string) error {
	// One empty read-only tmpfs, bound on every masked directory (a bind
	// mount keeps its source's flags): cheaper than a tmpfs for each.
	empty := ""
	for _, p := range readOnlyPaths {
		if err := bindIn(rootFD, path.Join(root, p), p, true); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	for _, p := range maskedPaths {
		fd, err := openIn(rootFD, p)
		if errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if empty == "" {
					empty = path.Join(stagingDir, "empty")
					if err = os.Mkdir(empty, 0o555); err == nil {
						err = unix.Mount("tmpfs", empty, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=555")
					}
				}
				if err == nil {
					err = unix.Mount(empty, fdPath(fd), "", unix.MS_BIND, "")
				}
			} else {
				err = unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
			}
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// keptCapabilities are what a root payload keeps: podman's default set
// (Docker's without CAP_MKNOD, CAP_NET_RAW and CAP_AUDIT_WRITE). Above all
// it lacks CAP_SYS_ADMIN, so the payload cannot undo the mounts that confine
// it; the seccomp filter is the one for exactly this set. Without
// CAP_NET_RAW, ping works through ICMP datagram sockets (see
// allowPingSockets).
func keptCapabilities() []int {
	return []int{unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_KILL,
		unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETPCAP, unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT,
		unix.CAP_SETFCAP}
}

// allowPingSockets lets every group of the sandbox's network namespace
// open ICMP datagram sockets, as podman does, so ping needs no raw socket.
// It is best effort: a kernel without them just has no ping.
func allowPingSockets() {
	_ = os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0)
}

// setupDev gives the sandbox a minimal /dev of its own.
func setupDev(rootFD int) error {
	if err := mountIn(rootFD, "tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	dev, err := openIn(rootFD, "/dev")
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		err := unix.Mknodat(dev, d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
		if errors.Is(err, unix.EPERM) {
			// No mknod here (a user namespace, a seccomp profile): bind
			// the host's node instead.
			err = bindIn(rootFD, "/dev/"+d.name, "/dev/"+d.name, false)
		} else if err == nil {
			err = unix.Fchmodat(dev, d.name, 0o666, 0)
		}
		if err != nil {
			return fmt.Errorf("/dev/%s: %w", d.name, err)
		}
	}
	if err := mountIn(rootFD, "devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("/dev/pts: %w", err)
	}
	if err := mountIn(rootFD, "shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("/dev/shm: %w", err)
	}
	// POSIX message queues of the sandbox's own IPC namespace; optional.
	_ = mountIn(rootFD, "mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	for _, l := range [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}} {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil {
			return fmt.Errorf("/dev/%s: %w", l[1], err)
		}
	}
	return nil
}
