package krun

import "golang.org/x/sys/unix"

// hypervisorProblems checks that Hypervisor.framework is usable (the KVM
// device path does not apply on macOS).
func hypervisorProblems(string) []Problem {
	v, err := unix.SysctlUint32("kern.hv_support")
	if err != nil || v == 0 {
		return []Problem{{
			What: "Hypervisor.framework is not supported on this Mac (kern.hv_support is 0)",
			Fix:  "run on Apple silicon or a Mac with hardware virtualization",
		}}
	}
	return nil
}
