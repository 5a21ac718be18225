package krun_test

import (
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/krun"
)

func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

func canonJSON(t *testing.T, s string) string {
	t.Helper()
	var x any
	if err := json.Unmarshal([]byte(s), &x); err != nil {
		t.Fatalf("bad expected JSON %s: %v", s, err)
	}
	b, _ := json.Marshal(x)
	return string(b)
}

// TestEveryFunction calls each bound function once and checks, through the
// stand-in's log, the exact arguments libkrun received and the result.
func TestEveryFunction(t *testing.T) {
	lib, log := openStandin(t, variantFull)
	c, err := lib.CreateCtx()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fn    string
		call  func() error
		args  string // without ctx
		errno syscall.Errno
	}{
		{"krun_set_vm_config", func() error { return c.SetVMConfig(2, 512) }, `{"num_vcpus":2,"ram_mib":512}`, 0},
		{"krun_set_root", func() error { return c.SetRoot("/srv/root") }, `{"root_path":"/srv/root"}`, 0},
		{"krun_add_disk", func() error { return c.AddDisk("data", "/srv/data.img", true) }, `{"block_id":"data","disk_path":"/srv/data.img","read_only":true}`, 0},
		{"krun_add_virtiofs", func() error { return c.AddVirtiofs("src", "/home/u/src") }, `{"c_tag":"src","c_path":"/home/u/src"}`, 0},
		{"krun_add_virtiofs2", func() error { return c.AddVirtiofs2("big", "/data", 1<<33) }, `{"c_tag":"big","c_path":"/data","shm_size":8589934592}`, 0},
		{"krun_add_net_tap", func() error {
			return c.AddNetTap("sbxtap0", [6]byte{0x02, 0x00, 0x0a, 0x58, 0x00, 0x05}, 0, 0)
		}, `{"c_tap_name":"sbxtap0","c_mac":"02:00:0a:58:00:05","features":0,"flags":0}`, 0},
		{"krun_add_net_tap", func() error { return c.AddNetTap("sbxtap1", [6]byte{0x01, 0, 0, 0, 0, 1}, 0, 0) }, `{"c_tap_name":"sbxtap1","c_mac":"01:00:00:00:00:01","features":0,"flags":0}`, syscall.EINVAL},
		{"krun_set_net_mac", func() error { return c.SetNetMAC([6]byte{0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee}) }, `{"c_mac":"5a:94:ef:e4:0c:ee"}`, 0},
		{"krun_set_port_map", func() error { return c.SetPortMap([]krun.PortMapping{}) }, `{"c_port_map":[]}`, 0},
		{"krun_set_port_map", func() error {
			return c.SetPortMap([]krun.PortMapping{{Host: 8080, Guest: 80}, {Host: 65535, Guest: 1}})
		}, `{"c_port_map":["8080:80","65535:1"]}`, 0},
		{"krun_set_tsi_scope", func() error { return c.SetTSIScope("", "", krun.ScopeNone) }, `{"c_ip":null,"c_subnet":null,"scope":0}`, 0},
		{"krun_set_tsi_scope", func() error { return c.SetTSIScope("10.0.0.2", "10.0.0.0/24", krun.ScopeGroup) }, `{"c_ip":"10.0.0.2","c_subnet":"10.0.0.0/24","scope":1}`, 0},
		{"krun_set_gpu_options", func() error { return c.SetGPUOptions(1 << 6) }, `{"virgl_flags":64}`, 0},
		{"krun_set_gpu_options2", func() error { return c.SetGPUOptions2(1, 1<<32) }, `{"virgl_flags":1,"shm_size":4294967296}`, 0},
		{"krun_set_snd_device", func() error { return c.SetSndDevice(true) }, `{"enable":true}`, 0},
		{"krun_set_rlimits", func() error {
			return c.SetRlimits([]krun.Rlimit{{Resource: 7, Cur: 1024, Max: 4096}, {Resource: 4, Cur: 0, Max: krun.RlimInfinity}})
		}, `{"c_rlimits":["7=1024:4096","4=0:18446744073709551615"]}`, 0},
		{"krun_set_smbios_oem_strings", func() error { return c.SetSMBIOSOEMStrings([]string{"a", "b=c"}) }, `{"c_oem_strings":["a","b=c"]}`, 0},
		{"krun_set_workdir", func() error { return c.SetWorkdir("/app") }, `{"c_workdir_path":"/app"}`, 0},
		{"krun_set_exec", func() error { return c.SetExec("/bin/sh", []string{"-c", "echo 'hi there'"}, nil) }, `{"c_exec_path":"/bin/sh","c_argv":["-c","echo 'hi there'"],"c_envp":null}`, 0},
		{"krun_set_exec", func() error { return c.SetExec("/bin/true", []string{}, []string{}) }, `{"c_exec_path":"/bin/true","c_argv":[],"c_envp":[]}`, 0},
		{"krun_set_env", func() error { return c.SetEnv([]string{"A=1", "B="}) }, `{"c_envp":["A=1","B="]}`, 0},
		{"krun_set_env", func() error { return c.SetEnv(nil) }, `{"c_envp":null}`, 0},
		{"krun_set_tee_config_file", func() error { return c.SetTEEConfigFile("/etc/tee.json") }, `{"c_filepath":"/etc/tee.json"}`, 0},
		{"krun_add_vsock_port", func() error { return c.AddVsockPort(1024, "/run/x.sock") }, `{"port":1024,"c_filepath":"/run/x.sock"}`, 0},
		{"krun_set_console_output", func() error { return c.SetConsoleOutput("/tmp/console.log") }, `{"c_filepath":"/tmp/console.log"}`, 0},
		{"krun_setuid", func() error { return c.SetUID(1000) }, `{"uid":1000}`, 0},
		{"krun_setgid", func() error { return c.SetGID(4294967294) }, `{"gid":4294967294}`, 0},
		{"krun_get_shutdown_eventfd", func() error {
			fd, err := c.GetShutdownEventFD()
			if err == nil && fd < 0 {
				t.Errorf("GetShutdownEventFD = %d", fd)
			}
			if err == nil {
				syscall.Close(fd)
			}
			return err
		}, `{}`, 0},
		// Errors after this point.
		{"krun_set_passt_fd", func() error { return c.SetPasstFD(-1) }, `{"fd":-1}`, syscall.EINVAL},
		{"krun_set_gvproxy_path", func() error { return c.SetGvproxyPath("/run/gvproxy.sock") }, `{"c_path":"/run/gvproxy.sock"}`, 0},
		{"krun_set_passt_fd", func() error { return c.SetPasstFD(5) }, `{"fd":5}`, syscall.EEXIST},
		{"krun_set_tsi_scope", func() error { return c.SetTSIScope("", "", krun.ScopeAny) }, `{"c_ip":null,"c_subnet":null,"scope":3}`, syscall.ENOTSUP},
		{"krun_disable_implicit_vsock", func() error { return c.DisableImplicitVsock() }, `{}`, 0},
		{"krun_add_vsock_port", func() error { return c.AddVsockPort(1, "/run/y.sock") }, `{"port":1,"c_filepath":"/run/y.sock"}`, syscall.ENOTSUP},
		{"krun_add_vsock_port2", func() error { return c.AddVsockPort2(2, "/run/z.sock", true) }, `{"port":2,"c_filepath":"/run/z.sock","listen":true}`, syscall.ENOTSUP},
		{"krun_add_vsock", func() error { return c.AddVsock(0) }, `{"tsi_features":0}`, 0},
		{"krun_add_vsock", func() error { return c.AddVsock(0) }, `{"tsi_features":0}`, syscall.EEXIST},
		{"krun_add_vsock_port2", func() error { return c.AddVsockPort2(2, "/run/z.sock", true) }, `{"port":2,"c_filepath":"/run/z.sock","listen":true}`, 0},
		{"krun_free_ctx", func() error { return c.Free() }, `{}`, 0},
		{"krun_set_workdir", func() error { return c.SetWorkdir("/") }, `{"c_workdir_path":"/"}`, syscall.ENOENT},
	}
	for i, tt := range tests {
		before := len(readCalls(t, log))
		err := tt.call()
		calls := readCalls(t, log)
		if len(calls) != before+1 {
			t.Fatalf("#%d %s: %d calls logged, want 1", i, tt.fn, len(calls)-before)
		}
		got := calls[before]
		if got.Func != tt.fn {
			t.Errorf("#%d: called %s, want %s", i, got.Func, tt.fn)
		}
		if id, _ := got.Args["ctx"].(float64); uint32(id) != c.ID() {
			t.Errorf("#%d %s: ctx %v, want %d", i, tt.fn, got.Args["ctx"], c.ID())
		}
		delete(got.Args, "ctx")
		if g, w := canon(t, got.Args), canonJSON(t, tt.args); g != w {
			t.Errorf("#%d %s: args\n got %s\nwant %s", i, tt.fn, g, w)
		}
		if tt.errno == 0 {
			if err != nil {
				t.Errorf("#%d %s: %v", i, tt.fn, err)
			}
			continue
		}
		var ke *krun.Error
		if !errors.As(err, &ke) || ke.Func != tt.fn || ke.Errno != tt.errno || !errors.Is(err, tt.errno) {
			t.Errorf("#%d %s: err %v, want *krun.Error{%s, %v}", i, tt.fn, err, tt.fn, tt.errno)
		}
		if got.Ret != -int(tt.errno) {
			t.Errorf("#%d %s: ret %d", i, tt.fn, got.Ret)
		}
	}
}

func TestLibFunctions(t *testing.T) {
	lib, log := openStandin(t, variantFull)
	err := lib.SetLogLevel(6)
	if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "krun_set_log_level") {
		t.Errorf("SetLogLevel(6) = %v", err)
	}
	if err := lib.SetLogLevel(krun.LogDebug); err != nil {
		t.Error(err)
	}
	// libkrun takes it once per process: the second is refused before the call.
	if err := lib.SetLogLevel(krun.LogDebug); !errors.Is(err, krun.ErrLogLevelSet) {
		t.Errorf("second SetLogLevel = %v", err)
	}
	if n, err := lib.GetMaxVCPUs(); err != nil || n != 16 {
		t.Errorf("GetMaxVCPUs = %d, %v", n, err)
	}
	if ok, err := lib.HasFeature(krun.FeatureNet); err != nil || !ok {
		t.Errorf("HasFeature(net) = %v, %v", ok, err)
	}
	if ok, err := lib.HasFeature(krun.FeatureGPU); err != nil || ok {
		t.Errorf("HasFeature(gpu) = %v, %v", ok, err)
	}
	if _, err := lib.HasFeature(99); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("HasFeature(99) = %v", err)
	}
	var got []string
	for _, c := range readCalls(t, log) {
		got = append(got, canon(t, c))
	}
	want := []string{
		`{"args":{"level":6},"func":"krun_set_log_level","ret":-22}`,
		`{"args":{"level":4},"func":"krun_set_log_level","ret":0}`,
		`{"args":{},"func":"krun_get_max_vcpus","ret":16}`,
		`{"args":{"feature":0},"func":"krun_has_feature","ret":1}`,
		`{"args":{"feature":2},"func":"krun_has_feature","ret":0}`,
		`{"args":{"feature":99},"func":"krun_has_feature","ret":-22}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
}

// TestErrors covers the argument checks libkrun (and the binding) perform.
func TestErrors(t *testing.T) {
	lib, log := openStandin(t, variantFull)
	tests := []struct {
		name  string
		do    func(c *krun.Ctx) error
		fn    string
		errno syscall.Errno
	}{
		{"root then overlay", func(c *krun.Ctx) error {
			if err := c.SetRoot("/r"); err != nil {
				return err
			}
			return c.SetOverlayfsRoot([]string{"/l"})
		}, "krun_set_overlayfs_root", syscall.EEXIST},
		{"overlay then root", func(c *krun.Ctx) error {
			if err := c.SetOverlayfsRoot([]string{"/l1", "/l2"}); err != nil {
				return err
			}
			return c.SetRoot("/r")
		}, "krun_set_root", syscall.EEXIST},
		{"overlay without layers", func(c *krun.Ctx) error { return c.SetOverlayfsRoot(nil) }, "krun_set_overlayfs_root", syscall.EINVAL},
		{"scope out of range", func(c *krun.Ctx) error { return c.SetTSIScope("", "", 4) }, "krun_set_tsi_scope", syscall.EINVAL},
		{"bad ip", func(c *krun.Ctx) error { return c.SetTSIScope("10.0.0.300", "", krun.ScopeGroup) }, "krun_set_tsi_scope", syscall.EINVAL},
		{"tsi after passt", func(c *krun.Ctx) error {
			if err := c.SetPasstFD(3); err != nil {
				return err
			}
			return c.SetTSIScope("", "", krun.ScopePublic)
		}, "krun_set_tsi_scope", syscall.ENOTSUP},
		{"port map after passt", func(c *krun.Ctx) error {
			if err := c.SetPasstFD(3); err != nil {
				return err
			}
			return c.SetPortMap([]krun.PortMapping{})
		}, "krun_set_port_map", syscall.ENOTSUP},
		{"port 0", func(c *krun.Ctx) error { return c.SetPortMap([]krun.PortMapping{{Host: 0, Guest: 80}}) }, "krun_set_port_map", syscall.EINVAL},
		{"rlimit cur > max", func(c *krun.Ctx) error { return c.SetRlimits([]krun.Rlimit{{Resource: 7, Cur: 2, Max: 1}}) }, "krun_set_rlimits", syscall.EINVAL},
		{"rlimit resource", func(c *krun.Ctx) error { return c.SetRlimits([]krun.Rlimit{{Resource: 99, Cur: 1, Max: 1}}) }, "krun_set_rlimits", syscall.EINVAL},
		{"zero cpus", func(c *krun.Ctx) error { return c.SetVMConfig(0, 512) }, "krun_set_vm_config", syscall.EINVAL},
		{"zero memory", func(c *krun.Ctx) error { return c.SetVMConfig(1, 0) }, "krun_set_vm_config", syscall.EINVAL},
		{"empty tag", func(c *krun.Ctx) error { return c.AddVirtiofs("", "/x") }, "krun_add_virtiofs", syscall.EINVAL},
		{"start without root", func(c *krun.Ctx) error {
			if err := c.SetExec("/bin/sh", nil, nil); err != nil {
				return err
			}
			return c.StartEnter()
		}, "krun_start_enter", syscall.EINVAL},
		{"start without exec", func(c *krun.Ctx) error {
			if err := c.SetRoot("/r"); err != nil {
				return err
			}
			return c.StartEnter()
		}, "krun_start_enter", syscall.EINVAL},
		{"freed ctx", func(c *krun.Ctx) error {
			if err := c.Free(); err != nil {
				return err
			}
			return c.SetRoot("/r")
		}, "krun_set_root", syscall.ENOENT},
		{"double free", func(c *krun.Ctx) error {
			if err := c.Free(); err != nil {
				return err
			}
			return c.Free()
		}, "krun_free_ctx", syscall.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := lib.CreateCtx()
			if err != nil {
				t.Fatal(err)
			}
			err = tt.do(c)
			var ke *krun.Error
			if !errors.As(err, &ke) || ke.Func != tt.fn || !errors.Is(err, tt.errno) {
				t.Fatalf("err = %v, want %s: %v", err, tt.fn, tt.errno)
			}
			if !strings.Contains(err.Error(), tt.fn) {
				t.Errorf("message %q does not name %s", err, tt.fn)
			}
		})
	}
	_ = log
}

// TestNULBytes checks that strings with NUL bytes are refused before any call.
func TestNULBytes(t *testing.T) {
	lib, log := openStandin(t, variantFull)
	c, err := lib.CreateCtx()
	if err != nil {
		t.Fatal(err)
	}
	before := len(readCalls(t, log))
	for name, do := range map[string]func() error{
		"root":    func() error { return c.SetRoot("/r\x00oops") },
		"layer":   func() error { return c.SetOverlayfsRoot([]string{"/a", "/b\x00"}) },
		"tag":     func() error { return c.AddVirtiofs("t\x00", "/x") },
		"argv":    func() error { return c.SetExec("/bin/sh", []string{"-c", "a\x00b"}, nil) },
		"env":     func() error { return c.SetEnv([]string{"A=\x00"}) },
		"ip":      func() error { return c.SetTSIScope("10.0.0.1\x00", "", krun.ScopeGroup) },
		"console": func() error { return c.SetConsoleOutput("\x00") },
	} {
		err := do()
		if !errors.Is(err, krun.ErrInvalidArgument) || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("%s: err = %v, want NUL byte error", name, err)
		}
	}
	if n := len(readCalls(t, log)) - before; n != 0 {
		t.Errorf("%d calls reached libkrun", n)
	}
}

func TestOpenNotFound(t *testing.T) {
	_, err := krun.Open(krun.WithCandidates("/nonexistent/libkrun.so.1", "libkrun-nope.so.1"))
	var le *krun.LoadError
	if !errors.As(err, &le) || len(le.Tried) != 2 {
		t.Fatalf("err = %#v", err)
	}
	msg := err.Error()
	for _, want := range []string{"/nonexistent/libkrun.so.1", "libkrun-nope.so.1", "libkrun not found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestOpenMissingRequired(t *testing.T) {
	p := standin(t, variantBroken)
	_, err := krun.Open(krun.WithPath(p))
	var le *krun.LoadError
	if !errors.As(err, &le) || !slices.Equal(le.MissingRequired, []string{"krun_set_exec"}) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "krun_set_exec") || !strings.Contains(err.Error(), p) {
		t.Errorf("message %q", err)
	}
}

func TestDefaultCandidates(t *testing.T) {
	c := krun.DefaultCandidates()
	if runtime.GOOS != "linux" {
		t.Skip("linux names")
	}
	if len(c) < 2 || c[0] != "libkrun.so.1" || c[1] != "libkrun.so" {
		t.Errorf("DefaultCandidates = %q", c)
	}
}

func TestLibraryPathFromEnv(t *testing.T) {
	t.Setenv(krun.EnvLibraryPath, "")
	if _, ok := krun.LibraryPathFromEnv(); ok {
		t.Error("empty SBX_LIBKRUN reported as set")
	}
	t.Setenv(krun.EnvLibraryPath, "/opt/krun/libkrun.so.1")
	if p, ok := krun.LibraryPathFromEnv(); !ok || p != "/opt/krun/libkrun.so.1" {
		t.Errorf("LibraryPathFromEnv = %q, %v", p, ok)
	}
}

// TestCapabilities checks optional-function detection on each variant.
func TestCapabilities(t *testing.T) {
	upstreamExtras := []string{"krun_add_net_tap", "krun_add_vsock", "krun_add_vsock_port2", "krun_disable_implicit_vsock",
		"krun_get_max_vcpus", "krun_has_feature", "krun_setgid", "krun_setuid"}
	tests := []struct {
		variant string
		missing []string
	}{
		{variantFull, nil},
		{variantUpstream, []string{"krun_set_overlayfs_root", "krun_set_tsi_scope"}},
		{variantUpstreamNoNet, []string{"krun_set_overlayfs_root", "krun_set_tsi_scope"}},
		{variantFork, upstreamExtras},
	}
	for _, tt := range tests {
		t.Run(tt.variant, func(t *testing.T) {
			lib, _ := openStandin(t, tt.variant)
			if got := lib.Missing(); !slices.Equal(got, tt.missing) {
				t.Errorf("Missing = %q, want %q", got, tt.missing)
			}
			for _, fn := range krun.Functions() {
				if want := !slices.Contains(tt.missing, fn); lib.Has(fn) != want {
					t.Errorf("Has(%s) = %v", fn, !want)
				}
			}
			if lib.Has("krun_no_such_function") {
				t.Error("Has(unknown) = true")
			}
		})
	}
}

// TestMissingOptional checks that calling a function the library lacks fails
// without a call, saying which function.
func TestMissingOptional(t *testing.T) {
	up, _ := openStandin(t, variantUpstream)
	c, err := up.CreateCtx()
	if err != nil {
		t.Fatal(err)
	}
	for fn, do := range map[string]func() error{
		"krun_set_tsi_scope":      func() error { return c.SetTSIScope("", "", krun.ScopeNone) },
		"krun_set_overlayfs_root": func() error { return c.SetOverlayfsRoot([]string{"/l"}) },
	} {
		err := do()
		var me *krun.MissingError
		if !errors.Is(err, krun.ErrMissing) || !errors.As(err, &me) || me.Func != fn {
			t.Errorf("%s: err = %v", fn, err)
		}
		if !strings.Contains(err.Error(), fn) || !strings.Contains(err.Error(), "microsandbox") {
			t.Errorf("%s: message %q", fn, err)
		}
	}
	fork, _ := openStandin(t, variantFork)
	fc, err := fork.CreateCtx()
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["krun_get_max_vcpus"] = fork.GetMaxVCPUs()
	_, checks["krun_has_feature"] = fork.HasFeature(krun.FeatureNet)
	checks["krun_disable_implicit_vsock"] = fc.DisableImplicitVsock()
	checks["krun_setuid"] = fc.SetUID(1)
	checks["krun_setgid"] = fc.SetGID(1)
	checks["krun_add_net_tap"] = fc.AddNetTap("t", [6]byte{2}, 0, 0)
	checks["krun_add_vsock"] = fc.AddVsock(0)
	checks["krun_add_vsock_port2"] = fc.AddVsockPort2(1, "/x", true)
	for fn, err := range checks {
		if !errors.Is(err, krun.ErrMissing) || !strings.Contains(err.Error(), fn) {
			t.Errorf("%s: err = %v", fn, err)
		}
	}
}

func TestFunctionsCoverSeed(t *testing.T) {
	// Every function microsandbox-core 0.2.6 declares, plus the upstream extras.
	seed := []string{
		"krun_set_log_level", "krun_create_ctx", "krun_free_ctx", "krun_set_vm_config", "krun_set_root",
		"krun_set_overlayfs_root", "krun_add_disk", "krun_add_virtiofs", "krun_add_virtiofs2",
		"krun_set_passt_fd", "krun_set_gvproxy_path", "krun_set_net_mac", "krun_set_port_map",
		"krun_set_tsi_scope", "krun_set_gpu_options", "krun_set_gpu_options2", "krun_set_snd_device",
		"krun_set_rlimits", "krun_set_smbios_oem_strings", "krun_set_workdir", "krun_set_exec",
		"krun_set_env", "krun_set_tee_config_file", "krun_add_vsock_port", "krun_get_shutdown_eventfd",
		"krun_set_console_output", "krun_start_enter",
		"krun_disable_implicit_vsock", "krun_setuid", "krun_setgid", "krun_get_max_vcpus", "krun_has_feature",
		"krun_add_net_tap", "krun_add_vsock", "krun_add_vsock_port2",
	}
	if got := krun.Functions(); !slices.Equal(got, seed) {
		t.Errorf("Functions = %q", got)
	}
	for _, fn := range []string{"krun_set_overlayfs_root", "krun_set_tsi_scope", "krun_disable_implicit_vsock",
		"krun_setuid", "krun_setgid", "krun_get_max_vcpus", "krun_has_feature"} {
		if !slices.Contains(krun.OptionalFunctions(), fn) {
			t.Errorf("%s is not optional", fn)
		}
	}
}
