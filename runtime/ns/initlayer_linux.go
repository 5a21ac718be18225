//go:build linux

package ns

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/seccomp"
)

// initConfig is the init's run config for the sandbox: the payload, its
// host name, rlimits and network files, the control socket when there is a
// control directory, /.sbx hidden, the report pipe, and the confinement of
// everything the init starts (the payload and each exec): the capability
// bounding set of keptCapabilities, no_new_privs and the seccomp filter.
// The ns child mounts /proc, /sys and /dev itself, so the init mounts
// nothing.
func (c *Config) initConfig() (sbxinit.Config, error) {
	filter, err := seccomp.Filter()
	if err != nil {
		return sbxinit.Config{}, err
	}
	sec := &sbxinit.Security{Capabilities: keptCapabilities(), NoNewPrivileges: true,
		Seccomp: make([]sbxinit.SockFilter, len(filter))}
	for i, f := range filter {
		sec.Seccomp[i] = sbxinit.SockFilter{Code: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	ic := sbxinit.Config{
		Version: sbxinit.Version,
		Process: sbxinit.Process{
			Argv: c.Argv,
			Env:  withDefault(c.Env, "HOSTNAME", c.hostname()),
			Cwd:  c.Workdir,
			User: sbxinit.User{Spec: c.User},
		},
		Hostname: c.hostname(),
		Network:  c.Network,
		HideDir:  true,
		Security: sec,
		ReportFD: reportFD,
	}
	for _, r := range c.Rlimits {
		ic.Rlimits = append(ic.Rlimits, sbxinit.Rlimit{Name: RlimitName(r.Resource), Resource: r.Resource, Soft: r.Soft, Hard: r.Hard})
	}
	if c.ControlDir != "" {
		ic.Control.UnixPath = sbxinit.ControlDir + "/" + sbxinit.ControlSocket
	}
	return ic, nil
}

// writeInitLayer writes the init layer: the init program (a hard link when
// it can be, kept when it already is one) and its run config. The layer's
// top directory takes the owner and mode of the image's top layer, as the
// merged root does from it when there is no writable layer.
func writeInitLayer(c *Config) error {
	ic, err := c.initConfig()
	if err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	bin := c.Init
	if bin == "" {
		if bin, err = sbxinit.FindInit(); err != nil {
			return err
		}
	}
	dir := c.initLayer()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	top := c.RootDir
	if top == "" {
		top = c.Layers[len(c.Layers)-1]
	}
	if st, err := os.Stat(top); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(dir, int(sys.Uid), int(sys.Gid))
		}
		_ = os.Chmod(dir, st.Mode().Perm())
	}
	installed, err := os.Stat(filepath.Join(dir, sbxinit.InitPath))
	if src, serr := os.Stat(bin); serr != nil {
		return fmt.Errorf("init program: %w", serr)
	} else if err != nil || !os.SameFile(installed, src) {
		if err := sbxinit.InstallInit(dir, bin); err != nil {
			return err
		}
	}
	return sbxinit.WriteConfig(dir, ic)
}

// checkRlimits refuses, before anything starts, the rlimits the init could
// not set, explaining what a user can fix.
func checkRlimits(rls []Rlimit) *StepError {
	for _, rl := range rls {
		step := "rlimit " + RlimitName(rl.Resource) + " " + strconv.FormatUint(rl.Soft, 10)
		if rl.Soft != rl.Hard {
			step += ":" + strconv.FormatUint(rl.Hard, 10)
		}
		if rl.Resource < 0 || rl.Resource > 15 {
			return &StepError{Step: step, Msg: "not a Linux RLIMIT_* resource", Errno: syscall.EINVAL}
		}
		if rl.Soft > rl.Hard {
			return &StepError{Step: step, Msg: "the soft limit is above the hard limit: swap them", Errno: syscall.EINVAL}
		}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(rl.Resource, &cur); err != nil || rl.Hard <= cur.Max || hasCapability(capSysResource) {
			continue
		}
		msg := fmt.Sprintf("raising the hard limit above %d needs CAP_SYS_RESOURCE, which sbx does not have here: ask for a hard limit of at most %d", cur.Max, cur.Max)
		if rl.Resource == syscall.RLIMIT_NOFILE {
			if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
				if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && rl.Hard > n {
					msg += fmt.Sprintf(" (and the kernel's fs.nr_open caps it at %d)", n)
				}
			}
		}
		return &StepError{Step: step, Msg: msg, Errno: syscall.EPERM}
	}
	return nil
}

// withDefault adds key=value to env unless key is set.
func withDefault(env []string, key, value string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return env
		}
	}
	return append(env[:len(env):len(env)], key+"="+value)
}
