//go:build linux

package nsnet

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// TestPreflight: this machine (root, the modules loaded) has everything the
// ns driver's networking and taps need.
func TestPreflight(t *testing.T) {
	requireRoot(t)
	for _, pr := range PreflightTap(context.Background()) {
		if pr.Fatal {
			t.Errorf("%s", pr)
		} else {
			t.Logf("%s", pr)
		}
	}
}

// preflightChildEnv makes the test binary print Preflight's problems as JSON
// and exit (TestPreflightUnprivileged runs it as another user).
const preflightChildEnv = "SBX_NSNET_PREFLIGHT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(preflightChildEnv) == "1" {
		json.NewEncoder(os.Stdout).Encode(PreflightTap(context.Background()))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPreflightUnprivileged runs Preflight as nobody, without capabilities:
// it must say so, as the one fatal problem, with what to do.
func TestPreflightUnprivileged(t *testing.T) {
	requireRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy that nobody may run: go test's build directory is root's.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(dir, "nsnet.test")
	if err := os.WriteFile(copyExe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copyExe)
	cmd.Env = append(os.Environ(), preflightChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("preflight as nobody: %v\n%s", err, out)
	}
	var ps []Problem
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(ps) != 1 || ps[0].Check != "privileges" || !ps[0].Fatal || ps[0].Fix == "" {
		t.Errorf("Preflight as nobody: %+v, want one fatal privileges problem", ps)
	}
}

// TestForwardDropper builds, in a throwaway namespace, what Docker does to
// the forward hook, and checks that Preflight's check names it.
func TestForwardDropper(t *testing.T) {
	requireRoot(t)
	fd, err := anonNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	if got := forwardDropper(c); got != "" {
		t.Errorf("empty namespace: forwardDropper = %q", got)
	}
	drop, accept := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept
	// sbx's own table and a chain that accepts do not count.
	for _, x := range []struct {
		table  string
		policy *nftables.ChainPolicy
	}{{tableName, &drop}, {"filter", &accept}} {
		tb := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: x.table})
		c.AddChain(&nftables.Chain{Table: tb, Name: "FORWARD", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: x.policy})
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := forwardDropper(c); got != "" {
		t.Errorf("forwardDropper = %q, want none", got)
	}
	tb := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "docker"})
	c.AddChain(&nftables.Chain{Table: tb, Name: "FORWARD", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := forwardDropper(c), "ip docker FORWARD"; got != want {
		t.Errorf("forwardDropper = %q, want %q", got, want)
	}
}
