//go:build !linux && !darwin

package krun

import "runtime"

func hypervisorProblems(string) []Problem {
	return []Problem{{
		What: "libkrun does not run on " + runtime.GOOS,
		Fix:  "use Linux with KVM or macOS on Apple silicon",
	}}
}
