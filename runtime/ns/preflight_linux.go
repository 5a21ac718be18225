//go:build linux

package ns

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime/seccomp"
)

// Capability bits in /proc/self/status's CapEff.
const (
	capSysAdmin    = 21
	capSysResource = 24
)

// Preflight checks the host for what the ns driver needs: privileges to
// create namespaces and mount, overlayfs, seccomp filters, and cgroups for
// resource limits.
// It returns nothing when all is well; each [Problem] says how to fix it.
func Preflight() []Problem {
	var out []Problem
	if os.Geteuid() != 0 && !hasCapability(capSysAdmin) {
		out = append(out, Problem{
			Check:  "privileges",
			Detail: "the ns driver creates namespaces and mounts file systems, which needs root or CAP_SYS_ADMIN",
			Fix:    "run sbx as root (sudo sbx up), or use the krun driver",
			Fatal:  true,
		})
	}
	if !hasFilesystem("overlay") {
		out = append(out, Problem{
			Check:  "overlayfs",
			Detail: "the kernel does not offer overlayfs (not in /proc/filesystems)",
			Fix:    "load it with 'modprobe overlay', or use a kernel built with CONFIG_OVERLAY_FS",
			Fatal:  true,
		})
	}
	for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			out = append(out, Problem{
				Check:  "namespaces",
				Detail: "the kernel lacks " + ns + " namespaces",
				Fix:    "use a kernel with CONFIG_NAMESPACES and all namespace types, or the krun driver",
				Fatal:  true,
			})
		}
	}
	if _, err := seccomp.Filter(); err != nil {
		out = append(out, Problem{
			Check:  "seccomp",
			Detail: err.Error(),
			Fix:    "use the krun driver on this architecture",
			Fatal:  true,
		})
	} else if !hasSeccompFilters() {
		out = append(out, Problem{
			Check:  "seccomp",
			Detail: "the kernel does not offer seccomp filters returning an errno, which every sandbox runs under",
			Fix:    "use a kernel built with CONFIG_SECCOMP_FILTER, or the krun driver",
			Fatal:  true,
		})
	}
	if !hasCapability(capSysResource) {
		out = append(out, Problem{
			Check:  "rlimits",
			Detail: "sbx lacks CAP_SYS_RESOURCE, so a sandbox's rlimits can lower the hard limits sbx runs with but not raise them",
			Fix:    "raise the limits of the shell or service that starts sbx (ulimit -Hn, LimitNOFILE=), or grant sbx CAP_SYS_RESOURCE",
		})
	}
	if _, err := cgroupsFor(&Config{Name: "preflight"}); err != nil {
		out = append(out, Problem{
			Check:  "cgroups",
			Detail: "no usable cgroup for cpu and memory limits: " + err.Error(),
			Fix:    "mount cgroup v2 with the cpu and memory controllers on /sys/fs/cgroup (or the v1 cpu and memory hierarchies); sandboxes run without limits until then",
		})
	}
	return out
}

// hasCapability reports whether the process has capability bit in its
// effective set.
func hasCapability(bit uint) bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<bit) != 0
		}
	}
	return false
}

// hasSeccompFilters asks the kernel whether seccomp filters can return an
// errno (SECCOMP_GET_ACTION_AVAIL, Linux 4.14 and later).
func hasSeccompFilters() bool {
	action := uint32(unix.SECCOMP_RET_ERRNO)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	return errno == 0
}

// hasFilesystem reports whether the kernel lists fs in /proc/filesystems.
func hasFilesystem(fs string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fs {
			return true
		}
	}
	return false
}
