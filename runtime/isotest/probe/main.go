//go:build linux

// Command probe tries, from inside a sandbox, what a hostile payload would
// try: device nodes, namespaces, cgroup file systems, the host's keyrings,
// kernel memory and knobs, modules, reboot, setuid binaries, raw sockets, a
// fork bomb. It prints one JSON object per item: {"item", "denied",
// "detail"}. runtime/isotest runs it in an sbx sandbox and in podman and
// compares. It is built static (CGO_ENABLED=0) and run as root.
//
//	probe [-key DESC] [-forks N] [-block MAJ:MIN]   run every item
//	probe whoami                                      print the effective uid
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type result struct {
	Item   string `json:"item"`
	Denied bool   `json:"denied"`
	Detail string `json:"detail,omitempty"`
}

var out = json.NewEncoder(os.Stdout)

func report(item string, denied bool, detail string) {
	_ = out.Encode(result{Item: item, Denied: denied, Detail: detail})
}

// denyIf reports err as a denial when it is not nil.
func denyIf(item string, err error) {
	if err != nil {
		report(item, true, err.Error())
	} else {
		report(item, false, "succeeded")
	}
}

// capDenied reports a denial only for EPERM (or EACCES): any other error
// means the kernel got past its permission checks.
func capDenied(item string, err error) {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		report(item, true, err.Error())
	case err == nil:
		report(item, false, "succeeded")
	default:
		report(item, false, "past the permission check: "+err.Error())
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "whoami" {
		fmt.Println(os.Geteuid())
		return
	}
	key := flag.String("key", "", "description of a user key in the host root's user keyring")
	forks := flag.Int("forks", 600, "how many processes the fork bomb tries to hold at once")
	block := flag.String("block", "", "MAJ:MIN of a host block device")
	flag.Parse()

	// Device nodes.
	denyIf("mknod a character device (/dev/kmsg)", unix.Mknod("/tmp/probe-kmsg", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11))))
	if maj, min, ok := parseDev(*block); ok {
		denyIf("mknod a block device (a host disk)", unix.Mknod("/tmp/probe-disk", unix.S_IFBLK|0o666, int(unix.Mkdev(maj, min))))
	}
	denyIf("open a character device node shipped in the image (/kmsg)", openRead("/kmsg"))
	denyIf("open a block device node shipped in the image (/disk)", openRead("/disk"))

	// Namespaces and cgroups.
	denyIf("clone(CLONE_NEWUSER)", cloneRun(unix.CLONE_NEWUSER, nil))
	denyIf("clone(NEWUSER|NEWNS|NEWCGROUP) and mount cgroup2", cloneRun(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP, &mountArgs{"cgroup2", "/tmp", "cgroup2", ""}))
	denyIf("clone(NEWUSER|NEWNS|NEWCGROUP) and mount cgroup v1 (pids)", cloneRun(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP, &mountArgs{"cgroup", "/tmp", "cgroup", "pids"}))
	denyIf("unshare(CLONE_NEWNS)", unshareThread(unix.CLONE_NEWNS))
	denyIf("unshare(CLONE_NEWNET)", unshareThread(unix.CLONE_NEWNET))
	denyIf("mount tmpfs", unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	denyIf("mount cgroup2", unix.Mount("cgroup2", "/tmp", "cgroup2", 0, ""))
	denyIf("umount a masked path (/proc/interrupts)", unix.Unmount("/proc/interrupts", unix.MNT_DETACH))
	cg, _ := os.ReadFile("/proc/self/cgroup")
	hostPaths := 0
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[2] != "/" {
			hostPaths++
		}
	}
	report("see the host's cgroup paths (/proc/self/cgroup)", hostPaths == 0, fmt.Sprintf("%d of the lines show a path other than /", hostPaths))

	// Keyrings.
	if *key != "" {
		id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", *key, 0)
		if err == nil {
			buf := make([]byte, 256)
			n, rerr := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
			if rerr == nil {
				report("read a key from the host root's user keyring", false, fmt.Sprintf("read %q", buf[:min(n, len(buf))]))
			} else {
				report("read a key from the host root's user keyring", true, "found but not readable: "+rerr.Error())
			}
		} else {
			report("read a key from the host root's user keyring", true, err.Error())
		}
	}
	_, err := unix.AddKey("user", "sbx-isotest-planted", []byte("planted"), unix.KEY_SPEC_USER_KEYRING)
	denyIf("plant a key in the user keyring (add_key)", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	denyIf("keyctl on the session keyring", err)
	_, err = unix.RequestKey("user", "sbx-isotest-absent", "", unix.KEY_SPEC_SESSION_KEYRING)
	capDenied("request_key", err)

	// Kernel memory, timers and knobs.
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/latency_stats", "/proc/interrupts", "/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware", "/sys/devices/virtual/powercap"} {
		readMasked(p)
	}
	denyIf("open /proc/sys/kernel/domainname for writing", openWrite("/proc/sys/kernel/domainname"))
	denyIf("open /proc/sys/vm/drop_caches for writing", openWrite("/proc/sys/vm/drop_caches"))
	denyIf("open /proc/sysrq-trigger for writing", openWrite("/proc/sysrq-trigger"))
	denyIf("open /sys/kernel/uevent_helper for writing", openWrite("/sys/kernel/uevent_helper"))
	denyIf("open /sys/kernel/mm/transparent_hugepage/enabled for writing", openWrite("/sys/kernel/mm/transparent_hugepage/enabled"))
	buf := make([]byte, 64)
	_, err = unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	denyIf("read the kernel log (syslog)", err)
	denyIf("open /dev/kmsg", openRead("/dev/kmsg"))
	denyIf("open /dev/mem", openRead("/dev/mem"))

	// Privileged operations.
	capDenied("ptrace(ATTACH) PID 1", ptraceAttach(1))
	capDenied("reboot (CAD off)", unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF))
	capDenied("init_module", unix.InitModule([]byte("not a module, not an ELF file"), ""))
	if f, err := os.Open("/proc/self/exe"); err == nil {
		capDenied("finit_module", unix.FinitModule(int(f.Fd()), "", 0))
		f.Close()
	}
	_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
	capDenied("kexec_load", errnoErr(e))
	_, _, e = unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(cstr("/nonexistent-swap"))), 0, 0)
	capDenied("swapon", errnoErr(e))
	capDenied("sethostname", unix.Sethostname([]byte("probe")))
	capDenied("iopl(3)", iopl())
	capDenied("open_by_handle_at", openByHandle())
	denyIf("bpf(BPF_MAP_CREATE)", bpfMapCreate())
	denyIf("perf_event_open", perfEventOpen())
	_, _, e = unix.Syscall(unix.SYS_USERFAULTFD, 0, 0, 0)
	denyIf("userfaultfd", errnoErr(e))
	denyIf("io_uring_setup", ioUringSetup())

	// Sockets.
	denyIf("raw IPv4 socket", socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP))
	denyIf("packet socket", socket(unix.AF_PACKET, unix.SOCK_RAW, 0))
	denyIf("AF_VSOCK socket", socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0))
	denyIf("AF_ALG socket", socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0))

	// Setuid.
	setuidEscalation()

	// A fork bomb.
	n, err := forkBomb(*forks)
	report(fmt.Sprintf("hold %d processes (a fork bomb)", *forks), err != nil, fmt.Sprintf("%d processes, then %v", n, err))
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func parseDev(s string) (uint32, uint32, bool) {
	a, b, ok := strings.Cut(s, ":")
	x, err1 := strconv.ParseUint(a, 10, 32)
	y, err2 := strconv.ParseUint(b, 10, 32)
	return uint32(x), uint32(y), ok && err1 == nil && err2 == nil
}

func openRead(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func openWrite(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd) // opened, not written: the probe changes nothing
	}
	return err
}

// readMasked reports whether p reads as empty (a masked file or
// directory) or is absent.
func readMasked(p string) {
	item := "read " + p
	st, err := os.Stat(p)
	if err != nil {
		report(item, true, "absent: "+err.Error())
		return
	}
	if st.IsDir() {
		ents, err := os.ReadDir(p)
		report(item, err != nil || len(ents) == 0, fmt.Sprintf("%d entries %v", len(ents), err))
		return
	}
	f, err := os.Open(p)
	if err != nil {
		report(item, true, err.Error())
		return
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, err := f.Read(b)
	report(item, n == 0, fmt.Sprintf("read %d bytes %v", n, err))
}

// unshareThread unshares on a thread of its own, which then dies with its
// goroutine, so the probe itself stays where it was.
func unshareThread(flags int) error {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits
		errc <- unix.Unshare(flags)
	}()
	return <-errc
}

type mountArgs struct{ source, target, fstype, data string }

// cloneRun clones a child process with flags (namespaces, so not from a
// multi-threaded Go process with unshare). The child, a copy of this
// process, only makes raw system calls: it mounts m when given and exits
// with the mount's errno. The result is the clone's error, else the
// child's.
func cloneRun(flags uintptr, m *mountArgs) error {
	var src, tgt, typ, data *byte
	if m != nil {
		src, tgt, typ = cstr(m.source), cstr(m.target), cstr(m.fstype)
		if m.data != "" {
			data = cstr(m.data)
		}
	}
	pid, errno := rawClone(flags|uintptr(unix.SIGCHLD), false, src, tgt, typ, data)
	if errno != 0 {
		return errno
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if code := ws.ExitStatus(); code != 0 {
		return fmt.Errorf("the child was cloned, its mount failed: %w", syscall.Errno(code))
	}
	return nil
}

func cstr(s string) *byte {
	b, _ := unix.BytePtrFromString(s)
	return b
}

var allSignals = ^uint64(0)

// rawClone forks with flags. The child, a copy of this process with only
// the calling thread, makes nothing but raw system calls: it blocks all
// signals, then with pause waits to be killed, else mounts when src is set
// and exits with the mount's errno (0 without src).
//
//go:norace
//go:nosplit
func rawClone(flags uintptr, pause bool, src, tgt, typ, data *byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r != 0 {
		return int(r), 0
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, uintptr(unsafe.Pointer(&allSignals)), 0, 8, 0, 0)
	code := uintptr(0)
	if src != nil {
		_, _, e := syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(src)), uintptr(unsafe.Pointer(tgt)),
			uintptr(unsafe.Pointer(typ)), 0, uintptr(unsafe.Pointer(data)), 0)
		code = uintptr(e)
	}
	for pause {
		syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
	}
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, code, 0, 0)
	return 0, 0
}

// forkBomb holds up to n paused child processes, then kills them all.
func forkBomb(n int) (int, error) {
	var pids []int
	var err error
	for len(pids) < n {
		pid, errno := rawClone(uintptr(unix.SIGCHLD), true, nil, nil, nil, nil)
		if errno != 0 {
			err = errno
			break
		}
		pids = append(pids, pid)
	}
	for _, p := range pids {
		_ = unix.Kill(p, unix.SIGKILL)
	}
	for _, p := range pids {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(p, &ws, 0, nil)
	}
	return len(pids), err
}

func ptraceAttach(pid int) error {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := unix.PtraceAttach(pid)
		if err == nil {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WALL, nil)
			_ = unix.PtraceDetach(pid)
		}
		errc <- err
	}()
	return <-errc
}

func socket(domain, typ, proto int) error {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func bpfMapCreate() error {
	attr := struct{ mapType, keySize, valueSize, maxEntries uint32 }{2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1}
	fd, _, e := unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e == 0 {
		unix.Close(int(fd))
	}
	return errnoErr(e)
}

func perfEventOpen() error {
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK, Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{}))}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func ioUringSetup() error {
	params := make([]byte, 120) // struct io_uring_params
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if e == 0 {
		unix.Close(int(fd))
	}
	return errnoErr(e)
}

func openByHandle() error {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	h := unix.NewFileHandle(1, make([]byte, 8))
	fd, err := unix.OpenByHandleAt(root, h, unix.O_RDONLY)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// setuidEscalation runs the image's setuid-root copy of the probe as uid
// 1000 and reports whether it ran as root.
func setuidEscalation() {
	const item = "gain root through a setuid-root binary (as uid 1000)"
	cmd := exec.Command("/probe-suid", "whoami")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	b, err := cmd.Output()
	if err != nil {
		report(item, true, err.Error())
		return
	}
	euid := strings.TrimSpace(string(b))
	report(item, euid != "0", "effective uid "+euid)
}
