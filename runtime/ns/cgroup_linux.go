//go:build linux

package ns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where cgroup hierarchies are mounted on every distribution
// sbx supports.
const cgroupRoot = "/sys/fs/cgroup"

// cfsPeriod is the CFS period, in microseconds, that CPUs are expressed in.
const cfsPeriod = 100000

// cgroupSet is the sandbox's cgroup in each hierarchy sbx uses.
type cgroupSet struct {
	v2   bool     // the controllers are on cgroup v2
	dirs []string // every hierarchy's sandbox cgroup: v1 ones, then v2
	// The directories whose files set the limits: on v2 all are the one
	// cgroup; on v1 each controller's hierarchy. Empty when the host lacks
	// the controller.
	cpu, memory, pids, devices string
	// unified is the v2 cgroup that gets the device program: the only
	// cgroup on a v2 host; on a hybrid one the unified hierarchy's, only
	// when there is no v1 devices controller.
	unified string
	// missing are the controllers the host lacks, which the sandbox runs
	// without.
	missing []string
}

// cgroupMount is a mounted cgroup hierarchy.
type cgroupMount struct {
	point   string   // where it is mounted
	root    string   // which cgroup the mount shows as its root
	options []string // super options: the v1 controllers
	v2      bool     // a cgroup2 mount
}

// cgroupsFor works out the sandbox's cgroup directories without creating
// anything. It fails with a reason when no usable hierarchy exists. On
// cgroup v1 the sandbox gets a cgroup in every mounted hierarchy, so that
// its cgroup namespace shows it only its own cgroups, and in the unified
// hierarchy of a hybrid host too.
func cgroupsFor(cfg *Config) (cgroupSet, error) {
	own, err := ownCgroups()
	if err != nil {
		return cgroupSet{}, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return cgroupSet{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return cgroupSet{}, fmt.Errorf("statfs %s: %w", cgroupRoot, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		ctrl, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		if err != nil {
			return cgroupSet{}, err
		}
		have := strings.Fields(string(ctrl))
		if !contains(have, "cpu") || !contains(have, "memory") {
			return cgroupSet{}, fmt.Errorf("cgroup v2 at %s offers controllers %q, not cpu and memory", cgroupRoot, have)
		}
		dir := cgroupDir(cgroupMount{point: cgroupRoot, root: "/"}, own[""], cfg)
		set := cgroupSet{v2: true, dirs: []string{dir}, cpu: dir, memory: dir, devices: dir, unified: dir}
		if contains(have, "pids") {
			set.pids = dir
		} else {
			set.missing = append(set.missing, "pids")
		}
		return set, nil
	}
	var set cgroupSet
	seen := map[string]bool{}
	var unified cgroupMount
	for _, m := range mounts {
		if m.v2 {
			unified = m // a hybrid host's unified hierarchy, without controllers
			continue
		}
		// The hierarchy's controllers as /proc/self/cgroup lists them.
		var key string
		for _, o := range m.options {
			if _, ok := own[o]; ok && v1Controllers[o] {
				key = o
				break
			}
		}
		if key == "" || seen[key] {
			continue // not one sbx uses, or a hierarchy mounted twice
		}
		seen[key] = true
		dir := cgroupDir(m, own[key], cfg)
		set.dirs = append(set.dirs, dir)
		for _, o := range m.options {
			switch o {
			case "cpu":
				set.cpu = dir
			case "memory":
				set.memory = dir
			case "pids":
				set.pids = dir
			case "devices":
				set.devices = dir
			}
		}
	}
	if set.devices == "" && unified.point != "" {
		// No v1 device controller: the unified hierarchy's device
		// program instead.
		if p, ok := own[""]; ok {
			set.unified = cgroupDir(unified, p, cfg)
			set.dirs = append(set.dirs, set.unified)
		}
	}
	for _, c := range [][2]string{{"cpu", set.cpu}, {"memory", set.memory}} {
		if c[1] == "" {
			return cgroupSet{}, fmt.Errorf("no cgroup v1 %s hierarchy mounted (and %s is not cgroup v2)", c[0], cgroupRoot)
		}
	}
	for _, c := range [][2]string{{"pids", set.pids}, {"devices", set.devices}} {
		if c[1] == "" {
			set.missing = append(set.missing, c[0])
		}
	}
	if set.devices == "" && set.unified != "" {
		set.missing = set.missing[:len(set.missing)-1] // the device program stands in
	}
	return set, nil
}

// v1Controllers are the cgroup v1 controllers a sandbox gets a cgroup of its
// own in: those that limit it or can stop it (cpuacct too where, as usual,
// it shares the cpu hierarchy). Its cgroup namespace shows it nothing above
// them. Each one costs a cgroup move at every start.
var v1Controllers = map[string]bool{"cpu": true, "memory": true, "pids": true, "devices": true, "freezer": true}

// cgroupDir is the sandbox's cgroup directory in hierarchy m, in which the
// calling process is in cgroup own.
func cgroupDir(m cgroupMount, own string, cfg *Config) string {
	base := "/"
	if !strings.HasPrefix(cfg.CgroupParent, "/") {
		base = own
	}
	// Inside a cgroup namespace or container the mount shows a sub tree.
	rel := strings.TrimPrefix(base, m.root)
	if m.root == "/" {
		rel = base
	}
	return filepath.Join(m.point, rel, filepath.Clean("/"+cfg.CgroupParent), cfg.Name)
}

// ownCgroups maps each v1 controller (and "" for v2) to the calling
// process's cgroup path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

// cgroupMounts lists the cgroup hierarchies from /proc/self/mountinfo.
func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - type source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" && qf[0] != "cgroup2" {
			continue
		}
		out = append(out, cgroupMount{point: unescapeMountinfo(pf[4]), root: unescapeMountinfo(pf[3]),
			options: strings.Split(qf[2], ","), v2: qf[0] == "cgroup2"})
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// create makes the cgroups and writes the limits: cpu, memory, pids and
// the device allow-list. A device program the kernel refuses (an ancestor
// cgroup's program that does not allow others, a kernel without
// CONFIG_CGROUP_BPF) is a warning, not an error: the other limits hold,
// and nodev mounts and missing capabilities still keep device nodes out
// of reach.
func (s cgroupSet) create(cfg *Config) (warnings []string, err error) {
	err = s.createLimits(cfg, func(w string) { warnings = append(warnings, w) })
	return warnings, err
}

func (s cgroupSet) createLimits(cfg *Config, warn func(string)) error {
	if !s.v2 && s.devices != "" && cfg.CgroupParent != "" {
		// Before the sandbox's cgroup exists: the kernel restricts only a
		// cgroup without children, and the new one inherits the list.
		if err := os.MkdirAll(filepath.Dir(s.devices), 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		restrictV1DevicesParent(filepath.Dir(s.devices))
	}
	for _, dir := range s.dirs {
		if s.v2 {
			if err := enableV2Controllers(dir, s.pids != ""); err != nil {
				return err
			}
		}
		if dir == s.unified {
			// A cgroup left by an earlier run would carry its device
			// program too; start from a fresh one (an empty cgroup can
			// be removed, a busy one stays and is reused).
			_ = syscall.Rmdir(dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	write := func(dir, file, value string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
			return fmt.Errorf("cgroup limit %s=%s: %w", file, value, err)
		}
		return nil
	}
	if s.pids != "" {
		if err := write(s.pids, "pids.max", strconv.Itoa(cfg.pids())); err != nil {
			return err
		}
	}
	if s.v2 {
		dir := s.dirs[0]
		if cfg.CPUs > 0 {
			if err := write(dir, "cpu.max", fmt.Sprintf("%d %d", cfg.CPUs*cfsPeriod, cfsPeriod)); err != nil {
				return err
			}
		}
		if cfg.MemoryMiB > 0 {
			if err := write(dir, "memory.max", strconv.FormatInt(int64(cfg.MemoryMiB)<<20, 10)); err != nil {
				return err
			}
			// Like a VM's RAM, the limit is not stretched by host swap.
			// The file is missing without swap accounting.
			if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
				if err := write(dir, "memory.swap.max", "0"); err != nil {
					return err
				}
			}
		}
		if err := attachDeviceProgram(dir); err != nil {
			warn(fmt.Sprintf("sandbox %s runs without a device cgroup: %v", cfg.Name, err))
		}
		return nil
	}
	if cfg.CPUs > 0 {
		if err := write(s.cpu, "cpu.cfs_period_us", strconv.Itoa(cfsPeriod)); err != nil {
			return err
		}
		if err := write(s.cpu, "cpu.cfs_quota_us", strconv.Itoa(cfg.CPUs*cfsPeriod)); err != nil {
			return err
		}
	}
	if cfg.MemoryMiB > 0 {
		limit := strconv.FormatInt(int64(cfg.MemoryMiB)<<20, 10)
		if err := write(s.memory, "memory.limit_in_bytes", limit); err != nil {
			return err
		}
		// Memory plus swap, so host swap does not stretch the limit;
		// missing without swap accounting.
		if _, err := os.Stat(filepath.Join(s.memory, "memory.memsw.limit_in_bytes")); err == nil {
			if err := write(s.memory, "memory.memsw.limit_in_bytes", limit); err != nil {
				return err
			}
		}
	}
	if s.devices != "" {
		if err := restrictV1Devices(s.devices); err != nil {
			return err
		}
	}
	if s.unified != "" {
		if err := attachDeviceProgram(s.unified); err != nil {
			warn(fmt.Sprintf("sandbox %s runs without a device cgroup: %v", cfg.Name, err))
		}
	}
	return nil
}

// enableV2Controllers turns on cpu, memory and (with pids) pids for the
// children of every ancestor of dir below the hierarchy root.
func enableV2Controllers(dir string, pids bool) error {
	ctl := "+cpu +memory"
	if pids {
		ctl += " +pids"
	}
	rel, err := filepath.Rel(cgroupRoot, filepath.Dir(dir))
	if err != nil {
		return err
	}
	cur := cgroupRoot
	for _, part := range append([]string{""}, strings.Split(rel, string(filepath.Separator))...) {
		if part == "." {
			continue
		}
		cur = filepath.Join(cur, part)
		if err := os.MkdirAll(cur, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cur, "cgroup.subtree_control"), []byte(ctl), 0); err != nil {
			if errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("enable the %s controllers in %s: the cgroup holds processes itself (cgroup v2 allows controllers only for leaves): use an absolute cgroup parent or run sbx in a delegated cgroup", ctl, cur)
			}
			return fmt.Errorf("enable the %s controllers in %s: %w", ctl, cur, err)
		}
	}
	return nil
}

// add moves pid, with all its threads, into the sandbox's cgroups.
func (s cgroupSet) add(pid int) error {
	for _, dir := range s.dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("move pid %d into cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

// remove kills whatever is left in the cgroups and removes them. Missing
// cgroups are fine. A killed process leaves its cgroup only after it has
// been reaped, so busy cgroups are retried for a while.
func (s cgroupSet) remove() error {
	var errs []error
	for _, dir := range s.dirs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := syscall.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
				break
			}
			if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(procs)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
