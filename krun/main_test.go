package krun_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/krun"
)

// Roles the test binary plays when re-executed (env KRUN_TEST_ROLE).
const (
	envRole = "KRUN_TEST_ROLE"
	envLib  = "KRUN_TEST_LIB"
	// roleVMM is the VMM child: what `sbx __vmm` does.
	roleVMM = "vmm"
	// roleParent spawns a VMM child (config JSON in KRUN_TEST_CONFIG), prints
	// its pid and waits to be killed: for the Pdeathsig test.
	roleParent = "parent"
	// rolePreflight prints Preflight's result for the KVM device in
	// KRUN_TEST_KVM: for the permission test, run as an unprivileged user.
	rolePreflight = "preflight"
)

// Stand-in variants, built once per test run.
const (
	variantFull          = "full"           // fork functions and upstream extras
	variantUpstream      = "upstream"       // upstream 1.19 with NET
	variantUpstreamNoNet = "upstream-nonet" // upstream 1.19 built without NET
	variantFork          = "fork"           // microsandbox's fork (microsandbox-core 0.2.6)
	variantBroken        = "broken"         // no krun_set_exec (a required function)
)

var variantFlags = map[string][]string{
	variantFull:          nil,
	variantUpstream:      {"-DSTANDIN_UPSTREAM"},
	variantUpstreamNoNet: {"-DSTANDIN_UPSTREAM", "-DSTANDIN_NO_NET"},
	variantFork:          {"-DSTANDIN_FORK"},
	variantBroken:        {"-DSTANDIN_NO_SET_EXEC"},
}

var (
	standinDir string
	standinErr error
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case roleVMM:
		os.Exit(vmmMain())
	case roleParent:
		os.Exit(parentMain())
	case rolePreflight:
		os.Exit(preflightMain())
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "krun-standin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	standinDir = dir
	standinErr = buildStandins(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vmmMain is the test binary acting as the VMM child.
func vmmMain() int {
	var opts []krun.Option
	if p := os.Getenv(envLib); p != "" {
		opts = append(opts, krun.WithPath(p))
	}
	err := krun.RunChild(context.Background(), os.Stdin, os.NewFile(krun.ReportFD, "report"), opts...)
	fmt.Fprintln(os.Stderr, "vmm:", err)
	return 1
}

func parentMain() int {
	var cfg krun.VMConfig
	if err := json.Unmarshal([]byte(os.Getenv("KRUN_TEST_CONFIG")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	env := append(os.Environ(), envRole+"="+roleVMM)
	child, err := krun.Spawn(context.Background(), []string{os.Args[0]}, cfg, krun.WithChildEnv(env))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(child.Pid())
	time.Sleep(time.Hour)
	return 0
}

func preflightMain() int {
	err := krun.Preflight(
		krun.WithKVMDevice(os.Getenv("KRUN_TEST_KVM")),
		krun.WithLibrary(krun.WithPath(os.Getenv(envLib))))
	fmt.Println(err)
	return 0
}

func buildStandins(dir string) error {
	if runtime.GOOS != "linux" {
		// The stand-in uses Linux APIs (eventfd) and the tests /proc.
		return fmt.Errorf("stand-in tests run on linux only")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("gcc not found: %w", err)
	}
	src, err := filepath.Abs("../testdata/krun/libkrun_standin.c")
	if err != nil {
		return err
	}
	for v, flags := range variantFlags {
		out := filepath.Join(dir, v, "libkrun.so.1")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		args := append([]string{"-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", out}, flags...)
		args = append(args, src, "-lpthread")
		if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	return nil
}

// standin returns the path of a stand-in variant, skipping the test if it
// could not be built.
func standin(t *testing.T, variant string) string {
	t.Helper()
	if standinErr != nil {
		t.Skipf("libkrun stand-in not built: %v", standinErr)
	}
	return filepath.Join(standinDir, variant, "libkrun.so.1")
}

// openStandin loads a stand-in variant in the test process and points its
// call log at a fresh file, whose path it returns.
func openStandin(t *testing.T, variant string) (*krun.Lib, string) {
	t.Helper()
	lib, err := krun.Open(krun.WithPath(standin(t, variant)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	t.Setenv("KRUN_STANDIN_LOG", log)
	return lib, log
}

// call is one line of the stand-in's log.
type call struct {
	Func string         `json:"func"`
	Args map[string]any `json:"args"`
	Ret  int            `json:"ret"`
}

func readCalls(t *testing.T, path string) []call {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("bad log line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}
