package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/lang/imageref"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
	"github.com/sbx-dev/sbx/runtime/state"
)

// runCmd runs a one-off sandbox: a declared sandbox's spec (image, mounts, env, network,
// resources) with another command, or an image alone, attached to this terminal and removed
// when its command ends, as 'docker compose run --rm' does.
type runCmd struct {
	execFlags
	Rm      bool     `default:"true" help:"Remove the one-off sandbox when it ends (always: one-off sandboxes leave nothing behind; accepted for compose users)."`
	Image   string   `help:"Run this image (a reference as in a Sandboxfile) instead of a declared sandbox's." placeholder:"REF"`
	Sandbox string   `arg:"" optional:"" help:"The declared sandbox whose spec the one-off takes."`
	Command []string `arg:"" optional:"" passthrough:"" name:"command" help:"The command to run instead of the sandbox's (after --)."`
}

// holdSeconds is how long the holding payload of an attached one-off sleeps: for ever, in
// effect, in a form every sleep accepts.
const holdSeconds = "2147483647"

func (c *runCmd) Run(a *app) error {
	if !c.Rm {
		return errors.New("--rm=false: one-off sandboxes are always removed; declare a sandbox in the Sandboxfile to keep one")
	}
	words := c.Command
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	name := c.Sandbox
	if c.Image != "" && name != "" {
		// sbx run --image REF CMD...: the first word is the command's.
		words = append([]string{name}, words...)
		name = ""
		if len(words) > 0 && words[0] == "--" {
			words = words[1:]
		}
	}
	if c.Image == "" && name == "" {
		return errors.New("name a declared sandbox (sbx run web -- CMD...) or an image (sbx run --image REF -- CMD...)")
	}
	cfg, proj, sb, cleanupProject, err := c.declare(a, name, words)
	if err != nil {
		return err
	}
	defer cleanupProject()
	if name != "" {
		a.warnDependencies(cfg, name)
	}
	driver := a.driverName(cfg)
	ctx, cancel := signalContext()
	defer cancel()

	store, err := a.imageStore()
	if err != nil {
		return err
	}
	// A registry pull reports on stderr, so the one-off's output stays its own; local
	// images, read again each time, say nothing.
	images := runtime.StoreImages{Store: store}
	progress := image.NewProgress(a.stderr, isTerminal(a.stderr))
	if !localImage(sb.Image) {
		images.Progress = func(string) image.Progress { return progress }
	}
	img, err := images.Ensure(ctx, sb.Image)
	progress.Wait()
	if err != nil {
		return fmt.Errorf("pull %s: %w", sb.Image, err)
	}
	rs, err := runtime.BuildRunSpec(proj, driver, cfg, sb, img, 1)
	if err != nil {
		return fmt.Errorf("resolve the one-off sandbox: %w", err)
	}
	rs.Process.Hostname = truncate(sb.Name, 63)
	req, err := c.request(a, rs.Process.Argv)
	if err != nil {
		return err
	}
	// Attached, the one-off's payload holds it up while the command runs through the init,
	// with this terminal; an image without sleep runs the command as its payload, its output
	// the console's.
	attached := runtime.HasProgram(rs, "sleep")
	if attached {
		rs.Process.Argv = []string{"sleep", holdSeconds}
	} else {
		// The flags apply to the payload itself.
		if req.User != nil {
			rs.Process.User = req.User.Spec
		}
		if req.Cwd != "" {
			rs.Process.Workdir = req.Cwd
		}
		rs.Process.Env = mergeEnv(rs.Process.Env, req.Env)
	}
	if !attached && c.TTY {
		return fmt.Errorf("the image %s has no sleep program to hold a one-off sandbox up while a terminal is attached: run with -T (output only)", sb.Image)
	}
	exe, err := executable()
	if err != nil {
		return err
	}
	d, err := runtime.NewDriver(rs.Driver, exe, a.log)
	if err != nil {
		return err
	}
	if err := d.Validate(ctx, rs); err != nil {
		return fmt.Errorf("check the one-off sandbox with the driver: %w", err)
	}
	reapOneOffs(ctx, a, proj, exe)
	rel := filepath.Join("sandboxes", sb.Name)
	if err := state.EnsureDirs(proj.Store.Dir(), rel); err != nil {
		return err
	}
	defer func() {
		if err := state.RemoveBeneath(proj.Store.Dir(), rel); err != nil {
			a.log.Warn("remove the one-off sandbox's directory", "dir", rs.Dir, "err", err)
		}
	}()
	// The spec and its owner (this sbx) stay next to what the one-off made, so that the next
	// sbx run cleans up after one whose sbx was killed.
	if err := runtime.WriteRunSpec(rs); err != nil {
		return err
	}
	if err := writeOwner(rs.Dir); err != nil {
		return err
	}
	consolePath := filepath.Join(rs.Dir, "run-console.log")
	var console io.Writer = a.stdout
	if attached {
		f, err := os.OpenFile(consolePath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("one-off console: %w", err)
		}
		defer f.Close()
		console = f
	}
	inst, err := d.Start(ctx, rs, console)
	if err != nil {
		return fmt.Errorf("start the one-off sandbox %s: %w", sb.Name, err)
	}
	defer func() {
		if err := inst.Close(context.Background()); err != nil {
			a.log.Warn("release the one-off sandbox", "err", err)
		}
	}()
	if !attached {
		return exitCodeError(c.waitPayload(ctx, a, rs, inst))
	}

	client, err := c.dial(ctx, rs, inst, consolePath)
	if err != nil {
		return err
	}
	defer client.Close()
	code, err := a.attach(context.Background(), client, sb.Name, []sbxinit.ExecRequest{req}, c.stdin(req))
	if err != nil {
		return a.startFailure(sb.Name, err)
	}
	return exitCodeError(code)
}

// declare resolves the one-off's sandbox: the declared one renamed NAME-run-XXXXXX with the
// command, or one of the image alone. Either way it publishes no port, has no probe and
// no static address (its group gives it another), so it never collides with the declared.
func (c *runCmd) declare(a *app, name string, words []string) (*lang.Config, *runtime.Project, *lang.Sandbox, func(), error) {
	none := func() {}
	if name != "" {
		cfg, err := a.load()
		if err != nil {
			return nil, nil, nil, none, err
		}
		var decl *lang.Sandbox
		var names []string
		for _, s := range cfg.Sandboxes {
			names = append(names, s.Name)
			if s.Name == name {
				decl = s
			}
		}
		if decl == nil {
			hint := "it declares none"
			if len(names) > 0 {
				hint = "it declares " + strings.Join(names, ", ")
			}
			return nil, nil, nil, none, fmt.Errorf("no sandbox %q in the Sandboxfile (%s): sbx run NAME -- CMD, or sbx run --image REF -- CMD", name, hint)
		}
		sb := oneOff(decl, words)
		if sb.Network.Group != "" {
			if sb.Network.IP, err = groupAddress(cfg, sb); err != nil {
				return nil, nil, nil, none, err
			}
		}
		return cfg, a.project(cfg), sb, none, nil
	}
	// An image alone: in this project when there is one (its mounts resolve from there),
	// else in a temporary one.
	cfg, err := a.loadQuiet()
	var proj *runtime.Project
	cleanup := none
	if err != nil {
		dir, err := os.MkdirTemp("", "sbx-run-")
		if err != nil {
			return nil, nil, nil, none, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		cfg = &lang.Config{Dir: dir}
		cfg.Project.Name = "run"
	}
	proj = a.project(cfg)
	sb := oneOff(&lang.Sandbox{
		Name: "run", Image: c.Image, CPUs: 1, MemoryMiB: 512, Pids: lang.DefaultPids,
		Network: lang.NetworkSpec{Scope: lang.ScopePublic}, Restart: "no", StopTimeout: 10 * time.Second,
	}, words)
	sb.Name = strings.TrimPrefix(sb.Name, "run-") // run-XXXXXX
	return cfg, proj, sb, cleanup, nil
}

// oneOff is a copy of decl for a one-off run of words (decl's command when empty).
func oneOff(decl *lang.Sandbox, words []string) *lang.Sandbox {
	sb := *decl
	var b [3]byte
	_, _ = rand.Read(b[:])
	sb.Name = decl.Name + "-run-" + hex.EncodeToString(b[:])
	if len(words) > 0 {
		sb.Command = words // after the entrypoint, as compose run does
	}
	sb.Ports, sb.Ready, sb.Watch = nil, nil, nil
	sb.Restart = "no"
	sb.Network.IP = netip.Addr{}
	return &sb
}

// oneOffOwner is the sbx run that owns a one-off sandbox's directory.
type oneOffOwner struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

const ownerFile = "run-owner.json"

func writeOwner(dir string) error {
	start, err := state.ProcessStartTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("one-off owner: %w", err)
	}
	b, _ := json.Marshal(oneOffOwner{Pid: os.Getpid(), StartTime: start})
	if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
		return fmt.Errorf("one-off owner: %w", err)
	}
	return nil
}

// reapOneOffs releases what one-off sandboxes of the project left when their sbx run was
// killed (its network; the VMM or namespace child died with it) and removes their
// directories. A one-off whose sbx still runs is left alone.
func reapOneOffs(ctx context.Context, a *app, proj *runtime.Project, exe string) {
	root := filepath.Join(proj.Store.Dir(), "sandboxes")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not a one-off
		}
		var o oneOffOwner
		if json.Unmarshal(b, &o) != nil || state.Alive(o.Pid, o.StartTime) {
			continue
		}
		if rs, err := runtime.ReadRunSpec(dir); err == nil {
			if d, err := runtime.NewDriver(rs.Driver, exe, a.log); err == nil {
				if err := d.Cleanup(ctx, rs); err != nil {
					a.log.Warn("clean up after a killed one-off sandbox", "sandbox", e.Name(), "err", err)
					continue
				}
			}
		}
		if err := state.RemoveBeneath(proj.Store.Dir(), filepath.Join("sandboxes", e.Name())); err != nil {
			a.log.Warn("remove a killed one-off sandbox's directory", "sandbox", e.Name(), "err", err)
		}
	}
}

// warnDependencies says which sandboxes name depends on do not run: a one-off does not
// start them (sbx up does).
func (a *app) warnDependencies(cfg *lang.Config, name string) {
	_, obs, err := observed(cfg.Dir)
	if err != nil {
		return
	}
	for _, dep := range cfg.Dependencies(name) {
		switch obs[dep] {
		case planner.StatusRunning, planner.StatusReady, planner.StatusStarting, planner.StatusUnready:
		default:
			fmt.Fprintf(a.stderr, "%s %s depends on %s, which is not running: 'sbx up %s' starts it\n", a.paint(a.ecolor, yellow, "Warning:"), name, dep, dep)
		}
	}
}

// mergeEnv is env with the NAME=VALUE entries of extra set over it.
func mergeEnv(env, extra []string) []string {
	out := append([]string(nil), env...)
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, o := range out {
			if ok, _, _ := strings.Cut(o, "="); ok == k {
				out[i], replaced = e, true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// localImage says whether ref is read from this machine rather than pulled.
func localImage(ref string) bool {
	for _, p := range []string{imageref.PrefixOCILayout, imageref.PrefixDockerArchive, imageref.PrefixDir} {
		if strings.HasPrefix(ref, p) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// dial reaches the one-off's init, or says why the sandbox ended first.
func (c *runCmd) dial(ctx context.Context, rs *spec.RunSpec, inst runtime.Instance, consolePath string) (*sbxinit.Client, error) {
	type dialed struct {
		c   *sbxinit.Client
		err error
	}
	ch := make(chan dialed, 1)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		cl, err := runtime.DialControl(dctx, rs.Dir, 30*time.Second)
		ch <- dialed{cl, err}
	}()
	exited := make(chan runtime.Exit, 1)
	go func() {
		if ex, err := inst.Wait(dctx); err == nil {
			exited <- ex
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("one-off sandbox %s: %w%s", rs.Name, r.err, consoleTail(consolePath))
		}
		return r.c, nil
	case ex := <-exited:
		return nil, fmt.Errorf("one-off sandbox %s ended before it could run the command (exit code %d)%s", rs.Name, ex.Code, consoleTail(consolePath))
	}
}

// consoleTail is the last lines of a one-off's console, to show why it failed.
func consoleTail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return ":\n  " + strings.Join(lines, "\n  ")
}

// waitPayload waits for a one-off whose command is its payload and returns its exit code:
// the init's report when its control socket answers in time, else the driver's.
func (c *runCmd) waitPayload(ctx context.Context, a *app, rs *spec.RunSpec, inst runtime.Instance) int {
	ended := make(chan runtime.Exit, 1)
	go func() {
		ex, _ := inst.Wait(context.Background())
		ended <- ex
	}()
	codes := make(chan int, 1)
	go func() {
		cl, err := runtime.DialControl(ctx, rs.Dir, 5*time.Second)
		if err != nil {
			return
		}
		defer cl.Close()
		if st, err := cl.Wait(ctx); err == nil && st.Exit != nil {
			codes <- st.Exit.Code
		}
	}()
	select {
	case <-ctx.Done():
		_ = inst.Signal(os.Interrupt)
	case code := <-codes:
		<-ended
		return code
	case ex := <-ended:
		select {
		case code := <-codes:
			return code
		case <-time.After(100 * time.Millisecond):
		}
		if ex.Signal != "" {
			fmt.Fprintf(a.stderr, "%s one-off sandbox %s: killed by %s\n", a.paint(a.ecolor, red, "Error:"), rs.Name, ex.Signal)
			return 1
		}
		return ex.Code
	}
	ex := <-ended
	if ex.Code >= 0 {
		return ex.Code
	}
	return 130
}

// groupAddress picks an address of the subnet for a one-off in a group: one that no
// declared sandbox has and that is not the gateway, at random in the upper half of the
// subnet (declared sandboxes are given addresses from its start), so that one-offs running
// at once rarely meet.
func groupAddress(cfg *lang.Config, sb *lang.Sandbox) (netip.Addr, error) {
	var subnet netip.Prefix
	for _, n := range cfg.Networks {
		if n.Name == sb.Network.Group {
			subnet = n.Subnet
		}
	}
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("network %s: no room for a one-off sandbox's address", sb.Network.Group)
	}
	used := map[netip.Addr]bool{}
	for _, s := range cfg.Sandboxes {
		if s.Network.IP.IsValid() {
			used[s.Network.IP] = true
		}
	}
	size := uint32(1) << (32 - subnet.Bits())
	base := subnet.Masked().Addr().As4()
	first := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	var b [4]byte
	for range 64 {
		_, _ = rand.Read(b[:])
		off := size/2 + (uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))%(size/2-1)
		v := first + off
		ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if !used[ip] {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %s: no free address for a one-off sandbox", sb.Network.Group)
}
