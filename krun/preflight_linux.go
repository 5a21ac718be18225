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
		e := &KVMError{Path: path, Reason: "does not exist: KVM is not available on this host"}
		return []Problem{{
			What: e.Error(),
			Fix:  "enable virtualization (VT-x/AMD-V) in the firmware and load the kvm_intel or kvm_amd module, or enable nested virtualization if this is a VM",
			Err:  e,
		}}
	}
	if err != nil {
		e := &KVMError{Path: path, Reason: "cannot be checked", Err: err}
		return []Problem{{What: e.Error(), Err: e}}
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		e := &KVMError{Path: path, Reason: "is not a character device"}
		return []Problem{{What: e.Error(), Fix: "check the KVM installation", Err: e}}
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
		e := &KVMError{Path: path, Reason: fmt.Sprintf("is not accessible to this user (mode %s, group %s)", fi.Mode().Perm(), group), Group: group}
		return []Problem{{
			What: e.Error(),
			Fix:  fmt.Sprintf("join group %s (sudo usermod -aG %s $USER, then log in again)", group, group),
			Err:  e,
		}}
	}
	if err != nil {
		e := &KVMError{Path: path, Reason: "cannot be opened", Err: err}
		return []Problem{{What: e.Error(), Err: e}}
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), 0xAE00) // KVM_GET_API_VERSION
	if err != nil || v != kvmAPIVersion {
		e := &KVMError{Path: path, Reason: fmt.Sprintf("does not speak the KVM API (version %d, %v)", v, err)}
		return []Problem{{What: e.Error(), Fix: "run on a host with a working KVM", Err: e}}
	}
	return nil
}
