package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/nsnet"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
)

// standinLib builds the checking stand-in libkrun (testdata/krun) with gcc, as flags make it
// (none: every function, NET built in; "-DSTANDIN_UPSTREAM -DSTANDIN_NO_NET": upstream 1.19
// without NET).
func standinLib(t testing.TB, flags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc is needed to build the stand-in libkrun")
	}
	out := filepath.Join(t.TempDir(), "libkrun.so.1")
	args := append([]string{"-Wall", "-shared", "-fPIC", "-o", out}, flags...)
	args = append(args, "../../testdata/krun/libkrun_standin.c", "-lpthread")
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

var initOnce sync.Once

// krunEnv makes the krun driver run for real without KVM: the stand-in libkrun in run mode
// (it enters the root and execs the init), sbx's own /dev/kvm check skipped, and sbx-init
// built next to the sbx under test.
func krunEnv(t testing.TB, lib string) {
	t.Helper()
	bin := sbxBinary(t)
	initOnce.Do(func() {
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(filepath.Dir(bin), "sbx-init"), "../sbx-init")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build sbx-init: %v\n%s", err, out)
		}
	})
	t.Setenv("SBX_LIBKRUN", lib)
	t.Setenv("SBX_KVM_CHECK", "skip")
	t.Setenv("KRUN_STANDIN_RUN", "1")
}

// krunCalls reads the stand-in's call log: function name -> the arguments of its calls.
func krunCalls(t *testing.T, path string) map[string][]map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := map[string][]map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c map[string]any
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("call log line %q: %v", sc.Text(), err)
		}
		name, _ := c["fn"].(string)
		if name == "" {
			name, _ = c["func"].(string)
		}
		calls[name] = append(calls[name], c)
	}
	return calls
}

// TestE2EKrunDriverWithStandin runs a sandbox through sbx → VMM child → libkrun (the
// stand-in in run mode) → sbx-init → payload, on upstream libkrun (the VMM child mounts the
// overlay) and on a libkrun with krun_set_overlayfs_root (libkrun assembles it): the guest
// sees the same.
func TestE2EKrunDriverWithStandin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		root  string
	}{
		{"upstream", []string{"-DSTANDIN_UPSTREAM"}, "krun_set_root"},
		{"overlayfs_root", nil, "krun_set_overlayfs_root"},
	} {
		t.Run(tc.name, func(t *testing.T) { testKrunDriver(t, standinLib(t, tc.flags...), tc.root) })
	}
}

func testKrunDriver(t *testing.T, lib, rootCall string) {
	p := newProject(t, `
project { driver = "krun" }

sandbox "vm" {
  image   = "IMAGE"
  cpus    = 2
  memory  = "256MiB"
  command = ["sh", "-c", "touch /src/x 2>/dev/null && echo src-writable; touch /out/x && echo out-writable; echo uid=$(id -u); echo \"greeting=[$GREETING]\"; echo ready; exec sleep 3600"]
  workdir = "/srv"
  user    = "nobody"
  env     = { GREETING = "say \"hi\" there" }
  rlimits = { NOFILE = "512:1024" }

  mount {
    source    = "."
    target    = "/src"
    read_only = true
  }
  mount {
    source = "./out"
    target = "/out"
  }

  network { scope = "none" }

  ready {
    log = "ready"
  }
}
`)
	out := filepath.Join(p.dir, "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(t.TempDir(), "calls.jsonl")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(calls)
			t.Logf("libkrun calls:\n%s", b)
		}
	})
	krunEnv(t, lib)
	t.Setenv("KRUN_STANDIN_LOG", calls)

	r := p.sbxDriver("krun", "up")
	if r.code != 0 {
		t.Fatalf("up: %s\n%s\nlogs:\n%s", r.stdout, r.stderr, p.sbxDriver("krun", "logs", "vm").stdout)
	}
	if rows := p.ps(); rows["vm"].State != "ready" {
		t.Fatalf("ps: %+v", rows)
	}
	logs := p.sbxDriver("krun", "logs", "vm").stdout
	for _, want := range []string{"out-writable", "uid=65534", `greeting=[say "hi" there]`} {
		if !strings.Contains(logs, want) {
			t.Errorf("console log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "src-writable") {
		t.Errorf("the read-only mount was writable:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(out, "x")); err != nil {
		t.Errorf("the guest's write did not reach the host: %v", err)
	}
	// The init's control socket, through libkrun's vsock port at <sandbox dir>/ctl/init.sock.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sbxinit.DialUnix(ctx, filepath.Join(p.dir, ".sbx", "sandboxes", "vm", "ctl", sbxinit.ControlSocket))
	if err != nil {
		t.Fatalf("dial the init's control socket: %v", err)
	}
	defer c.Close()
	if st, err := c.Status(ctx); err != nil || st.State != sbxinit.StateRunning {
		t.Errorf("status through the control socket: %+v, %v", st, err)
	}
	var stdout bytes.Buffer
	if code, err := c.Exec(ctx, sbxinit.ExecRequest{Argv: []string{"sh", "-c", "echo exec-as-$(id -u)"}}, nil, &stdout, io.Discard); err != nil || code != 0 || stdout.String() != "exec-as-65534\n" {
		t.Errorf("exec through the control socket: %d %q %v", code, stdout.String(), err)
	}
	got := krunCalls(t, calls)
	for _, fn := range []string{"krun_create_ctx", "krun_set_vm_config", rootCall, "krun_disable_implicit_vsock", "krun_add_vsock",
		"krun_add_vsock_port2", "krun_set_exec", "krun_set_console_output", "krun_start_enter"} {
		if len(got[fn]) != 1 {
			t.Errorf("%s called %d times, want once", fn, len(got[fn]))
		}
	}
	if n := len(got["krun_add_virtiofs"]); n != 2 {
		t.Errorf("krun_add_virtiofs called %d times, want twice", n)
	}
	raw, _ := os.ReadFile(calls)
	// Nothing the user wrote travels on libkrun's kernel command line.
	for _, leak := range []string{"GREETING", "sleep", "nobody"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("call log holds %q: user data reached libkrun", leak)
		}
	}
	if !strings.Contains(string(raw), `"c_exec_path":"/.sbx/init"`) {
		t.Errorf("libkrun does not exec the init:\n%s", raw)
	}

	r = p.sbxDriver("krun", "down")
	if r.code != 0 {
		t.Fatalf("down: %s\n%s", r.stdout, r.stderr)
	}
	if procs := processesOf(p.dir); len(procs) > 0 {
		t.Errorf("processes left after down:\n%s", strings.Join(procs, "\n"))
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), p.dir) {
		t.Errorf("mounts left after down:\n%s", b)
	}
}

// TestE2EKrunRefusesScopeWithoutNET: a libkrun without NET cannot enforce scope group, and
// up says what is missing before anything starts.
func TestE2EKrunRefusesScopeWithoutNET(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM", "-DSTANDIN_NO_NET")
	p := newProject(t, `
network "net" {
  subnet = "10.91.0.0/24"
}

sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network {
    scope = "group"
    group = network.net
  }
}
`)
	krunEnv(t, lib)
	r := p.sbxDriver("krun", "up")
	if r.code != 1 || !strings.Contains(r.stderr, "this libkrun was built without NET: scope group needs krun_add_net_tap (libkrun >= 1.15 with NET=1)") {
		t.Fatalf("up: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if rows := p.ps(); len(rows) != 0 {
		t.Errorf("a refused sandbox is in the state: %+v", rows)
	}
}

// TestE2EDriverSwitchReplaces moves a sandbox from the ns driver to the krun driver (the
// stand-in): the plan names the driver change and up replaces it.
func TestE2EDriverSwitchReplaces(t *testing.T) {
	lib := standinLib(t)
	p := newProject(t, `
sandbox "s" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "any" }
}
`)
	krunEnv(t, lib)
	p.must("up") // ns, from the test helper
	if r := p.sbxDriver("ns", "plan"); !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan on the same driver:\n%s", r.stdout)
	}
	r := p.sbxDriver("krun", "up")
	if r.code != 0 || !strings.Contains(r.stdout, `driver: "ns" → "krun"`) {
		t.Fatalf("up --driver krun: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if logs := p.must("logs", "s"); !strings.Contains(logs, "standin: guest started /.sbx/init") {
		t.Errorf("not running on the stand-in:\n%s", logs)
	}
}

// TestE2EReplaceThatCannotRunKeepsTheOld edits a running sandbox into a spec the driver
// refuses: up fails before stopping anything, and the old sandbox keeps running.
func TestE2EReplaceThatCannotRunKeepsTheOld(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM", "-DSTANDIN_NO_NET") // TSI: TCP ports only
	src := `
sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "any" }
}
`
	p := newProject(t, src)
	krunEnv(t, lib)
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s %s", r.stdout, r.stderr)
	}
	pid := p.ps()["vm"].Pid
	p.write(strings.Replace(src, `command = ["sleep", "3600"]`, `command = ["sleep", "3600"]
  port {
    host     = 18093
    guest    = 53
    protocol = "udp"
  }`, 1))
	if r := p.sbxDriver("krun", "up"); r.code != 1 || !strings.Contains(r.stderr, "TSI forwards TCP only") {
		t.Fatalf("up: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if row := p.ps()["vm"]; row.Pid != pid || row.State != "running" {
		t.Errorf("the old sandbox did not keep running: %+v (pid was %d)", row, pid)
	}
}

// TestE2EKrunAbortIsOneLine: a libkrun that aborts (here as without KVM) shows as one clear
// line in the sandbox's log, not a Rust or Go dump; the dump stays in vmm.log.
func TestE2EKrunAbortIsOneLine(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM")
	p := newProject(t, `
sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
}
`)
	krunEnv(t, lib)
	t.Setenv("KRUN_STANDIN_ABORT", "kvm")
	p.sbxDriver("krun", "up")
	deadline := time.Now().Add(20 * time.Second)
	for p.ps()["vm"].State == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := p.ps()["vm"].State; st != "exited" {
		t.Errorf("state %q, want exited", st)
	}
	logs := p.sbxDriver("krun", "logs", "vm").stdout
	if !strings.Contains(logs, "libkrun could not open KVM") {
		t.Errorf("logs lack the one-line reason:\n%s", logs)
	}
	for _, dump := range []string{"goroutine", "SIGABRT", "RUST_BACKTRACE"} {
		if strings.Contains(logs, dump) {
			t.Errorf("logs hold a dump (%s):\n%s", dump, logs)
		}
	}
	vmm, _ := os.ReadFile(filepath.Join(p.dir, ".sbx", "sandboxes", "vm", "vmm.log"))
	if !strings.Contains(string(vmm), "panicked at") {
		t.Errorf("vmm.log lacks the panic:\n%s", vmm)
	}
}

// TestE2EKrunKillLeavesNoMount: kill -9 of the VMM child leaves no mount of the sandbox's
// root on the host: the overlay lives in the child's own mount namespace.
func TestE2EKrunKillLeavesNoMount(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM")
	p := newProject(t, `
sandbox "vm" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network { scope = "none" }
}
`)
	krunEnv(t, lib)
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	pid := p.ps()["vm"].Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), p.dir) {
		t.Errorf("mounts left after kill -9 of the VMM child:\n%s", b)
	}
}

// TestE2EKrunGroupNetwork: krun sandboxes get tap NICs on the project's bridge (libkrun with
// NET): a static IP, a published TCP port, a tcp ready probe on the guest, a peer of the
// group reaching it by name, and a scope none sandbox with nothing but lo.
func TestE2EKrunGroupNetwork(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM")
	n := os.Getpid() % 200
	port := 18400 + n
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("served by krun\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProject(t, fmt.Sprintf(`
project {
  name   = "e2ekrunnet%d"
  driver = "krun"
}

network "lan" {
  subnet = "10.97.%d.0/24"
}

sandbox "web" {
  image   = "IMAGE"
  command = ["httpd", "-f", "-p", "8080", "-h", "/srv"]
  mount {
    source    = %q
    target    = "/srv"
    read_only = true
  }
  port {
    host  = %d
    guest = 8080
  }
  network {
    scope = "group"
    group = network.lan
    ip    = "10.97.%d.10"
  }
  ready {
    tcp = 8080
  }
}

sandbox "peer" {
  image   = "IMAGE"
  command = ["sh", "-c", "timeout 5 wget -q -O - http://web:8080/ && echo peer-reached-web; exec sleep 3600"]
  network {
    scope = "group"
    group = network.lan
  }
}

sandbox "loner" {
  image   = "IMAGE"
  command = ["sh", "-c", "echo links=$(ip -o link | wc -l); timeout 3 wget -q -O - http://10.97.%d.10:8080/ && echo loner-reached-web || echo loner-isolated; exec sleep 3600"]
  network {
    scope = "none"
  }
}
`, n, n, site, port, n, n))
	krunEnv(t, lib)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", p.sbxDriver("krun", "logs").stdout)
		}
	})
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body, err := httpGet(url); err != nil || body != "served by krun\n" {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}
	p.eventually("peer and loner report", func() bool {
		logs := p.sbxDriver("krun", "logs").stdout
		return strings.Contains(logs, "peer-reached-web") && strings.Contains(logs, "loner-")
	})
	logs := p.sbxDriver("krun", "logs").stdout
	for _, want := range []string{"peer-reached-web", "loner-isolated", "links=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if r := p.sbxDriver("krun", "down"); r.code != 0 {
		t.Fatalf("down: %s\n%s", r.stdout, r.stderr)
	}
	if res, err := nsnet.List(context.Background(), runtime.ProjectID(fmt.Sprintf("e2ekrunnet%d", n), p.dir)); err != nil || !res.Empty() {
		t.Errorf("network resources left after down: %+v %v", res, err)
	}
	if _, err := httpGet(url); err == nil {
		t.Errorf("port %d still answers after down", port)
	}
}

// TestE2EKrunPublicScopeBlocksPrivateHosts: scope public on a tap NIC cannot reach a private
// host the test owns, while scope any can (the same nftables rules as the ns driver).
func TestE2EKrunPublicScopeBlocksPrivateHosts(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM")
	_, _ = e2eSetup(t)
	url := testHost(t)
	p := newProject(t, fmt.Sprintf(`
project {
  name   = "e2ekrunpub%d"
  driver = "krun"
}

sandbox "pub" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 0.5; timeout 3 wget -q -O - %s && echo pub-reached || echo pub-blocked; exec sleep 3600"]
  network { scope = "public" }
}

sandbox "anyone" {
  image   = "IMAGE"
  command = ["sh", "-c", "sleep 0.5; timeout 3 wget -q -O - %s && echo any-reached || echo any-blocked; exec sleep 3600"]
  network { scope = "any" }
}
`, os.Getpid()%100000, url, url))
	krunEnv(t, lib)
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	p.eventually("both tried", func() bool {
		logs := p.sbxDriver("krun", "logs").stdout
		return strings.Contains(logs, "pub-") && strings.Contains(logs, "any-")
	})
	logs := p.sbxDriver("krun", "logs").stdout
	if !strings.Contains(logs, "pub-blocked") {
		t.Errorf("a public sandbox reached a private address:\n%s", logs)
	}
	if !strings.Contains(logs, "any-reached") {
		t.Errorf("an any sandbox could not reach the test host (so the check above proves nothing):\n%s", logs)
	}
	p.sbxDriver("krun", "down")
}

// TestE2EKrunRegistryAndShellless runs, through the krun driver, a registry image and a
// shell-less image (one static program, no /bin/sh) that serves a published UDP port.
func TestE2EKrunRegistryAndShellless(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM")
	_, imgDir := e2eSetup(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	lp, err := layout.FromPath(imgDir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	push := func(repo string, img v1.Image) {
		ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	push("test/busybox:1", busybox)

	// The shell-less image: /udpecho and nothing else.
	bin := filepath.Join(t.TempDir(), "udpecho")
	build := exec.Command("go", "build", "-o", bin, "../../krun/testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "udpecho", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config.Entrypoint = []string{"/udpecho"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	push("test/udpecho:1", img)

	udpPort := 18600 + os.Getpid()%200
	p := newProject(t, fmt.Sprintf(`
project { driver = "krun" }

sandbox "reg" {
  image   = "%s/test/busybox:1"
  command = ["sh", "-c", "echo registry-image-runs; exec sleep 3600"]
  network { scope = "none" }
}

sandbox "udp" {
  image   = "%s/test/udpecho:1"
  command = [":5353"]
  port {
    host     = %d
    guest    = 5353
    protocol = "udp"
  }
  network { scope = "any" }
}
`, host, host, udpPort))
	krunEnv(t, lib)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", p.sbxDriver("krun", "logs").stdout)
		}
	})
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	p.eventually("both report", func() bool {
		logs := p.sbxDriver("krun", "logs").stdout
		return strings.Contains(logs, "registry-image-runs") && strings.Contains(logs, "udpecho listening")
	})
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var reply string
	for i := 0; i < 20 && reply == ""; i++ {
		_, _ = c.Write([]byte("ping"))
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		buf := make([]byte, 100)
		if n, err := c.Read(buf); err == nil {
			reply = string(buf[:n])
		}
	}
	if reply != "echo: ping" {
		t.Errorf("UDP reply through the published port: %q", reply)
	}
	p.sbxDriver("krun", "down")
}

// TestE2EKrunTSIWithoutNET: on a libkrun without NET, scope any keeps TSI, and a published
// TCP port with a tcp ready probe works through libkrun's port map.
func TestE2EKrunTSIWithoutNET(t *testing.T) {
	lib := standinLib(t, "-DSTANDIN_UPSTREAM", "-DSTANDIN_NO_NET")
	port := 18800 + os.Getpid()%200
	guest := 18000 + os.Getpid()%200
	p := newProject(t, fmt.Sprintf(`
project { driver = "krun" }

sandbox "web" {
  image   = "IMAGE"
  command = ["httpd", "-f", "-p", "%d", "-h", "/etc"]
  port {
    host  = %d
    guest = %d
  }
  network { scope = "any" }
  ready {
    tcp = %d
  }
}
`, guest, port, guest, guest))
	calls := filepath.Join(t.TempDir(), "calls.jsonl")
	krunEnv(t, lib)
	t.Setenv("KRUN_STANDIN_LOG", calls)
	if r := p.sbxDriver("krun", "up"); r.code != 0 {
		t.Fatalf("up: %s\n%s", r.stdout, r.stderr)
	}
	if st := p.ps()["web"].State; st != "ready" {
		t.Errorf("state %q, want ready", st)
	}
	if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/passwd", port)); err != nil || !strings.Contains(body, "root:") {
		t.Errorf("GET through the port map: %q, %v", body, err)
	}
	got := krunCalls(t, calls)
	if len(got["krun_add_net_tap"]) != 0 || len(got["krun_set_port_map"]) != 1 {
		t.Errorf("want TSI with a port map, got calls %v", got)
	}
	p.sbxDriver("krun", "down")
}
