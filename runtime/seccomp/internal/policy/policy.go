//go:build linux

// Package policy is the definition of sbx's default seccomp filter as a
// go-seccomp-bpf policy, and its assembly for any architecture the library
// knows. Only the generator (go generate in runtime/seccomp) and tests use
// it: sbx itself carries the assembled tables, so it neither pays for the
// assembly nor for the library's start-up at every sandbox start.
package policy

import (
	"fmt"
	"go/format"
	"reflect"
	"sort"
	"strings"
	"unsafe"

	bpfseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// allowed are the system calls any payload may make, whatever its
// arguments. Names that do not exist on the running architecture are
// skipped.
var allowed = []string{
	// The filter compares the number against each name in turn: the most
	// frequent calls come first.
	"read", "write", "futex", "epoll_pwait", "epoll_wait", "close", "openat", "newfstatat", "fstat", "lseek",
	"mmap", "munmap", "madvise", "rt_sigprocmask", "rt_sigreturn", "nanosleep", "clock_gettime", "recvfrom",
	"sendto", "getpid", "gettid", "sched_yield", "tgkill", "readv", "writev", "pread64", "pwrite64", "fcntl",
	"poll", "ppoll", "select", "pselect6", "brk", "mprotect", "getdents64", "statx", "ioctl",
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
	"chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
	"clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
	"close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
	"faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
	"fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
	"flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
	"fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
	"geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
	"getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
	"getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
	"get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
	"io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
	"io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount",
	"listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
	"lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
	"mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
	"munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
	"openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
	"pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
	"prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
	"recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
	"sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
	"sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
	"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
	"setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "setxattrat",
	"shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
	"sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statmount",
	"statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
	"timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	"timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
	"unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4",
	"waitid", "waitpid", "write", "writev",
	// Tracing one's own children, as Docker allows on Linux 4.8 and later
	// (where ptrace can no longer bypass seccomp); the kernel still refuses
	// to trace more privileged processes such as the sandbox's init.
	"process_vm_readv", "process_vm_writev", "ptrace",
	// CAP_SYS_CHROOT is among the payload's capabilities.
	"chroot",
	// Architecture specific.
	"arch_prctl", "modify_ldt", // x86
	"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls", // arm
	"riscv_flush_icache", "riscv_hwprobe", // riscv
}

// namespaceFlags are the clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// socketDomains are the address families socket(2) may use: every one the
// kernel offers except AF_ALG (the kernel's crypto API) and AF_VSOCK
// (host-guest sockets, global across network namespaces), as in Docker.
var socketDomains = []uint64{
	unix.AF_UNIX, unix.AF_INET, unix.AF_AX25, unix.AF_IPX, unix.AF_APPLETALK, unix.AF_NETROM, unix.AF_BRIDGE,
	unix.AF_ATMPVC, unix.AF_X25, unix.AF_INET6, unix.AF_ROSE, unix.AF_NETBEUI, unix.AF_SECURITY, unix.AF_KEY,
	unix.AF_NETLINK, unix.AF_PACKET, unix.AF_ASH, unix.AF_RDS, unix.AF_SNA, unix.AF_PPPOX, unix.AF_LLC,
	unix.AF_IB, unix.AF_MPLS, unix.AF_CAN, unix.AF_TIPC, unix.AF_BLUETOOTH, unix.AF_IUCV, unix.AF_RXRPC,
	unix.AF_PHONET, unix.AF_IEEE802154, unix.AF_NFC, unix.AF_KCM, unix.AF_QIPCRTR, unix.AF_SMC, unix.AF_XDP,
	unix.AF_MCTP,
}

// personalities are the personality(2) values allowed, as in Docker: PER_LINUX
// (0), PER_LINUX32 (0x8), each with UNAME26 (0x20000), and 0xffffffff, which
// only queries.
var personalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// Arches maps the GOARCH values the filter is generated for to the
// library's architecture names.
var Arches = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// For is the default filter as a go-seccomp-bpf policy for goarch.
func For(goarch string) (bpfseccomp.Policy, error) {
	info, err := arch.GetInfo(goarch)
	if err != nil {
		return bpfseccomp.Policy{}, err
	}
	known := func(name string) bool {
		_, ok := info.SyscallNames[name]
		return ok
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range allowed {
		if known(n) && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	// s390 swaps clone's first two arguments; the library has no s390
	// tables, but keep the rule right.
	cloneFlags := uint32(0)
	if goarch == "s390x" {
		cloneFlags = 1
	}
	conditional := []bpfseccomp.NameWithConditions{{Name: "clone", Conditions: bpfseccomp.ArgumentConditions{
		{Argument: cloneFlags, Operation: bpfseccomp.BitsNotSet, Value: namespaceFlags},
	}}}
	for _, p := range personalities {
		conditional = append(conditional, bpfseccomp.NameWithConditions{Name: "personality", Conditions: bpfseccomp.ArgumentConditions{
			{Argument: 0, Operation: bpfseccomp.Equal, Value: p},
		}})
	}
	if known("socket") {
		for _, d := range socketDomains {
			conditional = append(conditional, bpfseccomp.NameWithConditions{Name: "socket", Conditions: bpfseccomp.ArgumentConditions{
				{Argument: 0, Operation: bpfseccomp.Equal, Value: d},
			}})
		}
	}
	groups := []bpfseccomp.SyscallGroup{
		{Names: names, Action: bpfseccomp.ActionAllow},
		{NamesWithCondtions: conditional, Action: bpfseccomp.ActionAllow},
	}
	if known("clone3") {
		groups = append(groups, bpfseccomp.SyscallGroup{Names: []string{"clone3"}, Action: bpfseccomp.ActionErrno | bpfseccomp.Action(unix.ENOSYS)})
	}
	p := bpfseccomp.Policy{DefaultAction: bpfseccomp.ActionErrno, Syscalls: groups}
	// The library assembles for runtime.GOARCH unless the policy's
	// unexported arch is set; set it, so every table can be generated on
	// any machine.
	f := reflect.ValueOf(&p).Elem().FieldByName("arch")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(info))
	return p, nil
}

// Assemble is the BPF program of the default filter for goarch. It has the
// rules of [For] but not its shape: go-seccomp-bpf compares the syscall
// number with each allowed name in turn, some 350 comparisons for a denied
// call, and the kernel runs the filter for every syscall number when it
// installs it (to cache the constant answers), which made installing it
// cost 0.4 ms of every sandbox's start. This program is a binary search
// over ranges of syscall numbers, built with the library's assembler and
// its argument checks: a handful of comparisons per call. A test checks
// that both give the same answer for every syscall number and the
// arguments the rules look at.
func Assemble(goarch string) ([]unix.SockFilter, error) {
	p, err := For(goarch)
	if err != nil {
		return nil, err
	}
	info, _ := arch.GetInfo(goarch)
	segs, err := segments(p, info)
	if err != nil {
		return nil, err
	}
	prog := bpfseccomp.NewProgram()
	emitTree(&prog, segs, p.DefaultAction)
	body, err := prog.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp filter for %s: %w", goarch, err)
	}
	deny := bpf.RetConstant{Val: uint32(p.DefaultAction) | uint32(unix.EPERM)}
	insts := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		deny,
		bpf.LoadAbsolute{Off: 0, Size: 4}, // seccomp_data.nr
	}
	if info.ID == arch.X86_64.ID {
		// The x32 ABI's numbers have bit 30 set: refuse them all.
		insts = append(insts,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(arch.X32.SeccompMask), SkipFalse: 1},
			bpf.RetConstant{Val: uint32(bpfseccomp.ActionErrno) | uint32(unix.ENOSYS)})
	}
	raw, err := bpf.Assemble(append(insts, body...))
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp filter for %s: %w", goarch, err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// AssembleLinear is the library's own assembly of [For], for comparison.
func AssembleLinear(goarch string) ([]bpf.Instruction, error) {
	p, err := For(goarch)
	if err != nil {
		return nil, err
	}
	return p.Assemble()
}

// segment is a range of syscall numbers with one outcome: an action, or
// argument conditions (then lo == hi).
type segment struct {
	lo, hi uint32
	action bpfseccomp.Action
	conds  *bpfseccomp.SyscallWithConditions
}

// segments turns the policy's groups into sorted, merged number ranges.
// Numbers in no segment get the default action.
func segments(p bpfseccomp.Policy, info *arch.Info) ([]segment, error) {
	byNum := map[uint32]segment{}
	for _, g := range p.Syscalls {
		for _, n := range g.Names {
			num, ok := info.SyscallNames[n]
			if !ok {
				return nil, fmt.Errorf("unknown syscall %s on %s", n, info.Name)
			}
			nr := uint32(num | info.SeccompMask)
			if _, dup := byNum[nr]; dup {
				return nil, fmt.Errorf("syscall %s listed twice", n)
			}
			byNum[nr] = segment{lo: nr, hi: nr, action: g.Action}
		}
		for _, nc := range g.NamesWithCondtions {
			num, ok := info.SyscallNames[nc.Name]
			if !ok {
				return nil, fmt.Errorf("unknown syscall %s on %s", nc.Name, info.Name)
			}
			nr := uint32(num | info.SeccompMask)
			s, seen := byNum[nr]
			if seen && s.conds == nil {
				return nil, fmt.Errorf("syscall %s both with and without conditions", nc.Name)
			}
			if !seen {
				s = segment{lo: nr, hi: nr, action: g.Action, conds: &bpfseccomp.SyscallWithConditions{Num: nr}}
			}
			s.conds.Conditions = append(s.conds.Conditions, nc.Conditions)
			byNum[nr] = s
		}
	}
	nums := make([]uint32, 0, len(byNum))
	for n := range byNum {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	var out []segment
	for _, n := range nums {
		s := byNum[n]
		if last := len(out) - 1; last >= 0 && s.conds == nil && out[last].conds == nil &&
			out[last].action == s.action && out[last].hi+1 == s.lo {
			out[last].hi = s.hi
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// emitTree emits a binary search over segs, the syscall number in the
// accumulator; numbers outside every segment get def.
func emitTree(p *bpfseccomp.Program, segs []segment, def bpfseccomp.Action) {
	if len(segs) > 3 {
		mid := len(segs) / 2
		left, right := p.NewLabel(), p.NewLabel()
		p.JmpIf(bpf.JumpGreaterOrEqual, segs[mid].lo, right, left)
		p.SetLabel(left)
		emitTree(p, segs[:mid], def)
		p.SetLabel(right)
		emitTree(p, segs[mid:], def)
		return
	}
	for _, s := range segs {
		match, next := p.NewLabel(), p.NewLabel()
		if s.lo == s.hi {
			p.JmpIf(bpf.JumpEqual, s.lo, match, next)
		} else {
			above := p.NewLabel()
			p.JmpIf(bpf.JumpGreaterOrEqual, s.lo, above, next)
			p.SetLabel(above)
			p.JmpIf(bpf.JumpGreaterThan, s.hi, next, match)
		}
		p.SetLabel(match)
		if s.conds != nil {
			// The library's argument checks: they jump to ok when a
			// condition set holds, else to fail; either way the
			// syscall's answer is final.
			ok, fail := p.NewLabel(), p.NewLabel()
			s.conds.Assemble(p, false, ok, fail)
			p.SetLabel(ok)
			p.Ret(s.action)
			p.SetLabel(fail)
			p.Ret(def)
		} else {
			p.Ret(s.action)
		}
		p.SetLabel(next)
	}
	p.Ret(def)
}

// Source is the Go file holding goarch's table in package seccomp.
func Source(goarch string) ([]byte, error) {
	prog, err := Assemble(goarch)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by go generate (runtime/seccomp/internal/gen); DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "//go:build linux && %s\n\npackage seccomp\n\nimport \"golang.org/x/sys/unix\"\n\n", goarch)
	fmt.Fprintf(&b, "// filter is the default filter for %s: %d instructions.\nvar filter = []unix.SockFilter{\n", goarch, len(prog))
	for _, in := range prog {
		fmt.Fprintf(&b, "\t{Code: 0x%02x, Jt: %d, Jf: %d, K: 0x%x},\n", in.Code, in.Jt, in.Jf, in.K)
	}
	b.WriteString("}\n")
	return format.Source([]byte(b.String()))
}
