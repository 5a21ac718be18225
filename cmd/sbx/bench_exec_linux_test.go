package main

import "testing"

// BenchmarkExecTrueNS measures `sbx exec SANDBOX -- true` through the real binary on the ns
// driver: the state read, the dial and greeting of the init's control socket, the process's
// start and exit (the figure: under 30 ms).
func BenchmarkExecTrueNS(b *testing.B) { benchExecTrue(b, "ns") }

// BenchmarkExecTrueKrun is the same on the krun driver with the stand-in libkrun (its vsock
// relay is a unix socket: no guest kernel's vsock in the way).
func BenchmarkExecTrueKrun(b *testing.B) {
	krunEnv(b, standinLib(b, "-DSTANDIN_UPSTREAM"))
	benchExecTrue(b, "krun")
}

func benchExecTrue(b *testing.B, driver string) {
	p := newProject(b, execSandboxfile)
	if r := p.sbxDriver(driver, "up"); r.code != 0 {
		b.Fatalf("up: %s %s", r.stdout, r.stderr)
	}
	for b.Loop() {
		if r := p.sbxDriver(driver, "exec", "web", "--", "true"); r.code != 0 {
			b.Fatalf("exec: %d %s", r.code, r.stderr)
		}
	}
}
