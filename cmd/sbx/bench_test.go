package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Whole-command benchmarks through the real binary and the ns driver (make bench).

func benchProject(b *testing.B, n int) *project {
	return benchProjectDriver(b, n, "ns")
}

func benchProjectDriver(b *testing.B, n int, driver string) *project {
	var sf strings.Builder
	fmt.Fprintf(&sf, "project {\n  driver = %q\n}\n", driver)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sf, `
sandbox "s%02d" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  memory  = 32
  network { scope = "none" }
}
`, i)
	}
	return newProject(b, sf.String())
}

// BenchmarkUp10 measures sbx up of 10 sandboxes from a warm image store to all running, and
// the sbx down after each (not timed).
func BenchmarkUp10(b *testing.B) {
	p := benchProject(b, 10)
	p.must("pull")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.must("up")
		b.StopTimer()
		p.must("down")
		b.StartTimer()
	}
}

// BenchmarkUp10Krun is BenchmarkUp10 through the krun driver and the stand-in libkrun in run
// mode: the cost of sbx itself (supervisors, VMM children, overlay roots, tap networks, the
// init) without a guest kernel to boot.
func BenchmarkUp10Krun(b *testing.B) {
	krunEnv(b, standinLib(b, "-DSTANDIN_UPSTREAM"))
	p := benchProjectDriver(b, 10, "krun")
	p.must("pull")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := p.sbxDriver("krun", "up"); r.code != 0 {
			b.Fatalf("up: %s %s", r.stdout, r.stderr)
		}
		b.StopTimer()
		p.must("down")
		b.StartTimer()
	}
}

// BenchmarkUpNoChanges measures sbx up of a running 10-sandbox project: "No changes."
func BenchmarkUpNoChanges(b *testing.B) {
	p := benchProject(b, 10)
	p.must("up")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := p.must("up"); !strings.Contains(out, "No changes.") {
			b.Fatalf("up: %s", out)
		}
	}
}

// BenchmarkPs50 measures sbx ps with 50 running sandboxes, and reports the supervisors' RSS
// (binary built as make build does; most of it is the shared, file-backed sbx binary).
func BenchmarkPs50(b *testing.B) {
	p := benchProject(b, 50)
	p.must("up", "--parallel", "8")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.must("ps")
	}
	b.StopTimer()
	var total, peak int
	rows := p.ps()
	for _, r := range rows {
		kb := rssKiB(r.Pid)
		total += kb
		peak = max(peak, kb)
	}
	b.ReportMetric(float64(total)/float64(len(rows))/1024, "MiB-rss/supervisor")
	b.ReportMetric(float64(peak)/1024, "MiB-rss-max/supervisor")
}

// rssKiB reads VmRSS of pid.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
