package krun

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// kvmAPIVersion is KVM_API_VERSION, stable since Linux 2.6.22.
const kvmAPIVersion = 12

// hypervisorProblems checks that the KVM device exists, is a character
// device, can be opened read-write by this user and speaks the KVM API.
func hypervisorProblems(path string) []Problem {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return []Problem{{
			What: path + " does not exist: KVM is not available on this host",
			Fix:  "enable virtualization (VT-x/AMD-V) in the firmware and load the kvm_intel or kvm_amd module, enable nested virtualization if this is a VM, or run with --driver ns",
		}}
	}
	if err != nil {
		return []Problem{{What: fmt.Sprintf("cannot check %s: %v", path, err), Fix: "run with --driver ns"}}
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return []Problem{{What: path + " is not a character device", Fix: "check the KVM installation, or run with --driver ns"}}
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrPermission) {
		group := "kvm"
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			group = strconv.FormatUint(uint64(st.Gid), 10)
			if g, err := user.LookupGroupId(group); err == nil {
				group = g.Name
			}
		}
		return []Problem{{
			What: fmt.Sprintf("%s is not accessible to this user (mode %s, group %s)", path, fi.Mode().Perm(), group),
			Fix:  fmt.Sprintf("join group %s (sudo usermod -aG %s $USER, then log in again), or run with --driver ns", group, group),
		}}
	}
	if err != nil {
		return []Problem{{What: fmt.Sprintf("cannot open %s: %v", path, err), Fix: "run with --driver ns"}}
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), 0xAE00) // KVM_GET_API_VERSION
	if err != nil || v != kvmAPIVersion {
		return []Problem{{
			What: fmt.Sprintf("%s does not speak the KVM API (version %d, %v)", path, v, err),
			Fix:  "run on a host with a working KVM, or run with --driver ns",
		}}
	}
	return nil
}
