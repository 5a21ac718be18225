//go:build linux

package isotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/runtime/ns"
)

// childArg makes the test binary the ns child (see TestMain).
const childArg = "__ns_child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := ns.RunChild(os.Stdin, os.NewFile(3, "report")); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(withInit(m))
}

// withInit builds the sandbox's init, sbx-init, as make build does, and points the ns
// driver at it (a test binary has none next to it).
func withInit(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sbx-isotest-init-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sbx-init")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/sbx-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sbx-init: %v\n%s", err, out)
		return 1
	}
	os.Setenv("SBX_INIT", bin)
	return m.Run()
}

// result is one line of the probe's output.
type result struct {
	Item   string `json:"item"`
	Denied bool   `json:"denied"`
	Detail string `json:"detail"`
}

// pidsLimit is what both sandboxes get, so the probe's fork bomb (forks
// processes) runs into it quickly.
const (
	pidsLimit = 256
	forks     = 600
)

func TestIsolation(t *testing.T) {
	for _, p := range ns.Preflight() {
		if p.Fatal {
			t.Skip(p.String())
		}
	}
	dir := t.TempDir() // 0700: it holds device nodes
	probe := buildProbe(t, dir)
	rootfs := filepath.Join(dir, "rootfs")
	block := hostBlockDevice(t)
	makeRootfs(t, rootfs, probe, block)
	args := []string{"/probe", "-forks", strconv.Itoa(forks), "-block", block}
	if key := hostKey(t); key != "" {
		args = append(args, "-key", key)
	}

	sbx := runSbx(t, dir, rootfs, args)
	var pod map[string]result
	if _, err := exec.LookPath("podman"); err != nil {
		t.Logf("podman is not installed: only sbx's results are checked (CI installs podman)")
	} else {
		pod = runPodman(t, dir, rootfs, args)
	}

	var items []string
	for it := range sbx {
		items = append(items, it)
	}
	for it := range pod {
		if _, ok := sbx[it]; !ok {
			items = append(items, it)
		}
	}
	sort.Strings(items)
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-62s  %-8s  %-8s  %s\n", "item", "podman", "sbx", "sbx detail")
	verdict := func(r result, ok bool) string {
		switch {
		case !ok:
			return "-"
		case r.Denied:
			return "denied"
		default:
			return "ALLOWED"
		}
	}
	for _, it := range items {
		s, sok := sbx[it]
		p, pok := pod[it]
		fmt.Fprintf(&table, "%-62s  %-8s  %-8s  %s\n", it, verdict(p, pok), verdict(s, sok), s.Detail)
		switch {
		case !sok:
			t.Errorf("%s: the probe did not report it in sbx", it)
		case pok && p.Denied && !s.Denied:
			t.Errorf("%s: podman denies it, sbx allows it (%s)", it, s.Detail)
		case !s.Denied:
			// Everything the probe tries is something the issue (or
			// podman) says a sandbox must deny.
			t.Errorf("%s: sbx allows it (%s)", it, s.Detail)
		}
	}
	t.Log(table.String())
}

// buildProbe builds ./probe static into dir.
func buildProbe(t *testing.T, dir string) string {
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, b)
	}
	return out
}

// hostBlockDevice is MAJ:MIN of a block device of this host; without one,
// that of the first loop device (7:0), which need not exist: the probe
// only tries to make and open the node.
func hostBlockDevice(t *testing.T) string {
	ents, err := os.ReadDir("/sys/dev/block")
	if err != nil || len(ents) == 0 {
		t.Logf("no block devices in /sys/dev/block (%v): using 7:0", err)
		return "7:0"
	}
	return ents[0].Name()
}

// makeRootfs writes the image: busybox, the probe (also setuid root as
// /probe-suid), a user 1000, and device nodes a hostile image would ship:
// /kmsg (the host's kernel log) and /disk (a host block device), mode 0666.
func makeRootfs(t *testing.T, root, probe, block string) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("no busybox (apt-get install busybox-static): %v", err)
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "mnt", "root", "home/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bb, filepath.Join(root, "bin/busybox"), 0o755)
	for _, a := range []string{"sh", "cat", "ls", "id"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, probe, filepath.Join(root, "probe"), 0o755)
	copyFile(t, probe, filepath.Join(root, "probe-suid"), 0o755)
	if err := os.Chmod(filepath.Join(root, "probe-suid"), 0o4755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	maj, min, _ := strings.Cut(block, ":")
	ma, _ := strconv.Atoi(maj)
	mi, _ := strconv.Atoi(min)
	for _, n := range []struct {
		name string
		mode uint32
		dev  uint64
	}{{"kmsg", unix.S_IFCHR, unix.Mkdev(1, 11)}, {"disk", unix.S_IFBLK, unix.Mkdev(uint32(ma), uint32(mi))}} {
		p := filepath.Join(root, n.name)
		if err := unix.Mknod(p, n.mode|0o666, int(n.dev)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// hostKey puts a secret in the host root's user keyring, as the issue's
// attacker found one, and removes it (and anything the probe planted) when
// the test ends.
func hostKey(t *testing.T) string {
	desc := fmt.Sprintf("sbx-isotest-%d", os.Getpid())
	id, err := unix.AddKey("user", desc, []byte("host-secret"), unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		t.Logf("cannot add a key to root's user keyring here (%v): the probe does not try to read one", err)
		return ""
	}
	t.Cleanup(func() {
		_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		if planted, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", "sbx-isotest-planted", 0); err == nil {
			t.Errorf("a key was planted in root's user keyring (removed)")
			_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, planted, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		}
	})
	return desc
}

// parse reads the probe's JSON lines.
func parse(t *testing.T, who string, out []byte) map[string]result {
	res := map[string]result{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("%s: probe output %q: %v", who, sc.Text(), err)
			continue
		}
		res[r.Item] = r
	}
	if len(res) < 40 {
		t.Fatalf("%s: the probe reported %d items, not all of them:\n%s", who, len(res), out)
	}
	return res
}

// runSbx runs the probe in an ns sandbox configured as the ns driver
// configures one, with the image as its only layer.
func runSbx(t *testing.T, dir, rootfs string, args []string) map[string]result {
	name := fmt.Sprintf("isotest-%d", os.Getpid())
	var cgroupDirs []string
	cfg := ns.Config{
		Name:     name,
		Layers:   []string{rootfs},
		UpperDir: filepath.Join(dir, "sbx-rw", "upper"),
		WorkDir:  filepath.Join(dir, "sbx-rw", "work"),
		Argv:     args,
		Env:      []string{"PATH=/bin"},
		Pids:     pidsLimit,
		// Absolute: on cgroup v2 the test's own cgroup holds processes,
		// so no controllers can be enabled below it.
		CgroupParent: fmt.Sprintf("/sbx-isotest-%d", os.Getpid()),
	}
	t.Cleanup(func() {
		if err := ns.Cleanup(cfg); err != nil {
			t.Errorf("clean up: %v", err)
		}
		for _, d := range cgroupDirs {
			_ = os.Remove(filepath.Dir(d)) // the per-run parent
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	p, err := ns.Start(ctx, []string{"/proc/self/exe", childArg}, cfg, &out, &errb)
	if err != nil {
		t.Fatalf("start the sandbox: %v", err)
	}
	cgroupDirs = p.Cgroups()
	for _, w := range p.Warnings {
		t.Errorf("sandbox warning: %s", w)
	}
	st, err := p.Wait()
	if err != nil || st.Code != 0 {
		t.Fatalf("the probe in sbx: %v %v\nstderr:\n%s", st, err, errb.String())
	}
	return parse(t, "sbx", out.Bytes())
}

// runPodman runs the probe in podman with runc, on a copy of the image,
// with podman's defaults but for the same pids limit and no network (sbx's
// sandbox has only loopback too). Without --init (catatonit is only a
// recommended package): the probe is PID 1 and reaps its own children.
func runPodman(t *testing.T, dir, rootfs string, args []string) map[string]result {
	copyRoot := filepath.Join(dir, "podman-rootfs")
	if b, err := exec.Command("cp", "-a", rootfs, copyRoot).CombinedOutput(); err != nil {
		t.Fatalf("copy the image for podman: %v %s", err, b)
	}
	name := fmt.Sprintf("sbx-isotest-%d", os.Getpid())
	// podman raises nofile and nproc to its own defaults, which a host
	// without CAP_SYS_RESOURCE refuses (runc: "error setting rlimit"): ask
	// for modest ones, well above what the probe needs and above the pids
	// limit, which is what stops its fork bomb.
	cmdArgs := append([]string{"--runtime", "runc", "run", "--rm", "--name", name, "--network", "none",
		"--pids-limit", strconv.Itoa(pidsLimit), "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		"--rootfs", copyRoot}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", cmdArgs...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	_ = exec.Command("podman", "rm", "-f", "-t", "0", "--ignore", name).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 125 && out.Len() == 0 {
		// podman itself could not run a container on this host (its storage, cgroup manager
		// or OCI runtime): the comparison cannot be made, but sbx must still deny every
		// item, which the caller checks.
		t.Logf("PODMAN COULD NOT RUN HERE: only sbx's results are checked.\npodman %s: %v\n%s", strings.Join(cmdArgs, " "), err, errb.String())
		return nil
	}
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(cmdArgs, " "), err, errb.String())
	}
	return parse(t, "podman", out.Bytes())
}
