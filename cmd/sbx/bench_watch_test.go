package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// watchBenchProject has 5 sandboxes, each watching its own tree of 2,000 files.
func watchBenchProject(b *testing.B) *project {
	var sf strings.Builder
	sf.WriteString("project {\n  driver = \"ns\"\n}\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&sf, `
sandbox "s%d" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  env     = { GEN = "0" }
  network { scope = "none" }
  watch {
    paths = ["./src%d"]
  }
}
`, i, i)
	}
	p := newProject(b, sf.String())
	for i := 0; i < 5; i++ {
		for d := 0; d < 20; d++ {
			dir := filepath.Join(p.dir, "src"+strconv.Itoa(i), "pkg"+strconv.Itoa(d))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := 0; f < 100; f++ {
				if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(f)+".go"), []byte("package x\n"), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return p
}

// BenchmarkWatch reports, for sbx up --watch over 5 sandboxes and 10,000 watched files: the
// delay from a save of the Sandboxfile to the start of its apply beyond the debounce, the CPU
// the idle watcher uses, and its memory.
func BenchmarkWatch(b *testing.B) {
	p := watchBenchProject(b)
	sandboxfile, _ := os.ReadFile(filepath.Join(p.dir, "Sandboxfile"))
	const debounce = 300 * time.Millisecond
	w := &watchProc{}
	w.cmd = execSbx(p, "up", "--watch", "--debounce", debounce.String())
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = w.cmd.Process.Signal(os.Interrupt)
		_ = w.cmd.Wait()
	}()
	p.eventually("first apply", func() bool { return strings.Contains(w.text(), "generation 1 live") })

	// Idle: 10 s with nothing changing.
	pid := w.cmd.Process.Pid
	cpu0 := cpuTicks(pid)
	t0 := time.Now()
	time.Sleep(10 * time.Second)
	idle := float64(cpuTicks(pid)-cpu0) / 100 / time.Since(t0).Seconds() * 100 // clock ticks are 1/100 s
	rss := float64(rssKiB(pid)) / 1024

	b.ResetTimer()
	var beyond time.Duration
	for i := 0; i < b.N; i++ {
		n := strings.Count(w.text(), "changed: applying")
		src := strings.Replace(string(sandboxfile), `GEN = "0"`, fmt.Sprintf(`GEN = "%d"`, i+1), 1)
		tmp := filepath.Join(p.dir, ".Sandboxfile.new")
		if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		saved := time.Now()
		if err := os.Rename(tmp, filepath.Join(p.dir, "Sandboxfile")); err != nil {
			b.Fatal(err)
		}
		for strings.Count(w.text(), "changed: applying") == n {
			time.Sleep(time.Millisecond)
		}
		beyond += time.Since(saved) - debounce
		b.StopTimer()
		p.eventually("apply done", func() bool { return strings.Count(w.text(), "live: replaced") >= i+1 })
		b.StartTimer()
	}
	b.ReportMetric(float64(beyond.Milliseconds())/float64(b.N), "ms-beyond-debounce")
	b.ReportMetric(idle, "%cpu-idle")
	b.ReportMetric(rss, "MiB-rss")
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}
