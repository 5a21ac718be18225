package krun

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Names of the C functions, as exported by libkrun.
const (
	fnSetLogLevel          = "krun_set_log_level"
	fnCreateCtx            = "krun_create_ctx"
	fnFreeCtx              = "krun_free_ctx"
	fnSetVMConfig          = "krun_set_vm_config"
	fnSetRoot              = "krun_set_root"
	fnSetOverlayfsRoot     = "krun_set_overlayfs_root"
	fnAddDisk              = "krun_add_disk"
	fnAddVirtiofs          = "krun_add_virtiofs"
	fnAddVirtiofs2         = "krun_add_virtiofs2"
	fnSetPasstFD           = "krun_set_passt_fd"
	fnSetGvproxyPath       = "krun_set_gvproxy_path"
	fnSetNetMAC            = "krun_set_net_mac"
	fnSetPortMap           = "krun_set_port_map"
	fnSetTSIScope          = "krun_set_tsi_scope"
	fnSetGPUOptions        = "krun_set_gpu_options"
	fnSetGPUOptions2       = "krun_set_gpu_options2"
	fnSetSndDevice         = "krun_set_snd_device"
	fnSetRlimits           = "krun_set_rlimits"
	fnSetSMBIOSOEMStrings  = "krun_set_smbios_oem_strings"
	fnSetWorkdir           = "krun_set_workdir"
	fnSetExec              = "krun_set_exec"
	fnSetEnv               = "krun_set_env"
	fnSetTEEConfigFile     = "krun_set_tee_config_file"
	fnAddVsockPort         = "krun_add_vsock_port"
	fnGetShutdownEventFD   = "krun_get_shutdown_eventfd"
	fnSetConsoleOutput     = "krun_set_console_output"
	fnStartEnter           = "krun_start_enter"
	fnDisableImplicitVsock = "krun_disable_implicit_vsock"
	fnSetUID               = "krun_setuid"
	fnSetGID               = "krun_setgid"
	fnGetMaxVCPUs          = "krun_get_max_vcpus"
	fnHasFeature           = "krun_has_feature"
	fnAddNetTap            = "krun_add_net_tap"
	fnAddVsock             = "krun_add_vsock"
	fnAddVsockPort2        = "krun_add_vsock_port2"
)

// symbol describes one C function: whether a libkrun without it is still
// usable, and the Go function variable purego fills in.
type symbol struct {
	name     string
	optional bool
	fptr     any
}

// funcs holds the Go side of every bound C function. A nil field means the
// loaded library does not export that function.
type funcs struct {
	setLogLevel          func(level uint32) int32
	createCtx            func() int32
	freeCtx              func(ctx uint32) int32
	setVMConfig          func(ctx uint32, cpus uint8, mib uint32) int32
	setRoot              func(ctx uint32, path uintptr) int32
	setOverlayfsRoot     func(ctx uint32, layers uintptr) int32
	addDisk              func(ctx uint32, blockID, path uintptr, readOnly bool) int32
	addVirtiofs          func(ctx uint32, tag, path uintptr) int32
	addVirtiofs2         func(ctx uint32, tag, path uintptr, shmSize uint64) int32
	setPasstFD           func(ctx uint32, fd int32) int32
	setGvproxyPath       func(ctx uint32, path uintptr) int32
	setNetMAC            func(ctx uint32, mac uintptr) int32
	setPortMap           func(ctx uint32, portMap uintptr) int32
	setTSIScope          func(ctx uint32, ip, subnet uintptr, scope uint8) int32
	setGPUOptions        func(ctx uint32, virglFlags uint32) int32
	setGPUOptions2       func(ctx uint32, virglFlags uint32, shmSize uint64) int32
	setSndDevice         func(ctx uint32, enable bool) int32
	setRlimits           func(ctx uint32, rlimits uintptr) int32
	setSMBIOSOEMStrings  func(ctx uint32, oem uintptr) int32
	setWorkdir           func(ctx uint32, path uintptr) int32
	setExec              func(ctx uint32, path, argv, envp uintptr) int32
	setEnv               func(ctx uint32, envp uintptr) int32
	setTEEConfigFile     func(ctx uint32, path uintptr) int32
	addVsockPort         func(ctx uint32, port uint32, path uintptr) int32
	getShutdownEventFD   func(ctx uint32) int32
	setConsoleOutput     func(ctx uint32, path uintptr) int32
	startEnter           func(ctx uint32) int32
	disableImplicitVsock func(ctx uint32) int32
	setUID               func(ctx uint32, uid uint32) int32
	setGID               func(ctx uint32, gid uint32) int32
	getMaxVCPUs          func() int32
	hasFeature           func(feature uint64) int32
	addNetTap            func(ctx uint32, name, mac uintptr, features, flags uint32) int32
	addVsock             func(ctx uint32, tsiFeatures uint32) int32
	addVsockPort2        func(ctx uint32, port uint32, path uintptr, listen bool) int32
}

// symbols lists every function bound, in libkrun.h order. Optional ones are
// those some libkrun builds lack: the fork's additions, the upstream additions
// microsandbox's fork predates, and those behind cargo features (blk, net, gpu,
// snd, tee, efi) that distributions may build without.
func (f *funcs) symbols() []symbol {
	return []symbol{
		{fnSetLogLevel, false, &f.setLogLevel},
		{fnCreateCtx, false, &f.createCtx},
		{fnFreeCtx, false, &f.freeCtx},
		{fnSetVMConfig, false, &f.setVMConfig},
		{fnSetRoot, false, &f.setRoot},
		{fnSetOverlayfsRoot, true, &f.setOverlayfsRoot},
		{fnAddDisk, true, &f.addDisk},
		{fnAddVirtiofs, false, &f.addVirtiofs},
		{fnAddVirtiofs2, true, &f.addVirtiofs2},
		{fnSetPasstFD, true, &f.setPasstFD},
		{fnSetGvproxyPath, true, &f.setGvproxyPath},
		{fnSetNetMAC, true, &f.setNetMAC},
		{fnSetPortMap, false, &f.setPortMap},
		{fnSetTSIScope, true, &f.setTSIScope},
		{fnSetGPUOptions, true, &f.setGPUOptions},
		{fnSetGPUOptions2, true, &f.setGPUOptions2},
		{fnSetSndDevice, true, &f.setSndDevice},
		{fnSetRlimits, false, &f.setRlimits},
		{fnSetSMBIOSOEMStrings, true, &f.setSMBIOSOEMStrings},
		{fnSetWorkdir, false, &f.setWorkdir},
		{fnSetExec, false, &f.setExec},
		{fnSetEnv, false, &f.setEnv},
		{fnSetTEEConfigFile, true, &f.setTEEConfigFile},
		{fnAddVsockPort, false, &f.addVsockPort},
		{fnGetShutdownEventFD, true, &f.getShutdownEventFD},
		{fnSetConsoleOutput, false, &f.setConsoleOutput},
		{fnStartEnter, false, &f.startEnter},
		{fnDisableImplicitVsock, true, &f.disableImplicitVsock},
		{fnSetUID, true, &f.setUID},
		{fnSetGID, true, &f.setGID},
		{fnGetMaxVCPUs, true, &f.getMaxVCPUs},
		{fnHasFeature, true, &f.hasFeature},
		{fnAddNetTap, true, &f.addNetTap},
		{fnAddVsock, true, &f.addVsock},
		{fnAddVsockPort2, true, &f.addVsockPort2},
	}
}

// Functions returns the names of every C function the package binds, in
// libkrun.h order.
func Functions() []string {
	var f funcs
	var names []string
	for _, s := range f.symbols() {
		names = append(names, s.name)
	}
	return names
}

// OptionalFunctions returns the names of the bound functions a libkrun build
// may lack; [Open] fails only if a function not in this list is missing.
func OptionalFunctions() []string {
	var f funcs
	var names []string
	for _, s := range f.symbols() {
		if s.optional {
			names = append(names, s.name)
		}
	}
	return names
}

// EnvLibraryPath is the environment variable that overrides where libkrun is
// loaded from; see [LibraryPathFromEnv].
const EnvLibraryPath = "SBX_LIBKRUN"

// LibraryPathFromEnv returns the library path set in $SBX_LIBKRUN, if any.
// It is the only place the package reads that variable; pass the result to
// [WithPath].
func LibraryPathFromEnv() (string, bool) {
	p := os.Getenv(EnvLibraryPath)
	return p, p != ""
}

// DefaultCandidates returns the names and paths [Open] tries, in order, when
// no [WithPath] is given. Bare names are resolved by the dynamic loader's
// search path; the absolute paths cover `make install` into /usr/local and
// Homebrew, which the loader does not search by default.
func DefaultCandidates() []string {
	return defaultCandidates(runtime.GOOS)
}

func defaultCandidates(goos string) []string {
	if goos == "darwin" {
		return []string{
			"libkrun.dylib",
			"libkrun.1.dylib",
			"/opt/homebrew/lib/libkrun.dylib",
			"/usr/local/lib/libkrun.dylib",
		}
	}
	return []string{
		"libkrun.so.1",
		"libkrun.so",
		"/usr/local/lib64/libkrun.so.1",
		"/usr/local/lib/libkrun.so.1",
	}
}

// Option configures [Open] (and, through it, [RunChild] and [Preflight]).
type Option func(*options) error

type options struct {
	paths []string
}

// WithPath loads libkrun from exactly this file (or loader name) instead of
// searching the default candidates. Typically the value of $SBX_LIBKRUN.
func WithPath(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("krun.WithPath: empty path: %w", ErrInvalidArgument)
		}
		o.paths = []string{path}
		return nil
	}
}

// WithCandidates replaces the default list of names and paths [Open] tries.
func WithCandidates(paths ...string) Option {
	return func(o *options) error {
		if len(paths) == 0 {
			return fmt.Errorf("krun.WithCandidates: no paths: %w", ErrInvalidArgument)
		}
		o.paths = slices.Clone(paths)
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{paths: DefaultCandidates()}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Lib is a loaded libkrun.
type Lib struct {
	path     string
	handle   uintptr
	fn       funcs
	missing  map[string]bool
	logLevel bool // krun_set_log_level was called
}

// Open loads libkrun and resolves its functions. Without options it tries
// [DefaultCandidates] in order. It fails with a [*LoadError] if no candidate
// loads or if the library lacks a required function; optional functions are
// recorded and reported by [Lib.Has] and [Lib.Missing].
func Open(opts ...Option) (*Lib, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, p := range o.paths {
		h, err := dlopen(p)
		if err != nil {
			// dlerror usually starts with the name already.
			msg := strings.TrimPrefix(err.Error(), p+": ")
			tried = append(tried, p+": "+msg)
			continue
		}
		l := &Lib{path: p, handle: h, missing: map[string]bool{}}
		var required []string
		for _, s := range l.fn.symbols() {
			sym, err := dlsym(h, s.name)
			if err != nil || sym == 0 {
				l.missing[s.name] = true
				if !s.optional {
					required = append(required, s.name)
				}
				continue
			}
			register(s.fptr, sym)
		}
		if len(required) > 0 {
			_ = dlclose(h)
			return nil, &LoadError{Path: p, MissingRequired: required}
		}
		return l, nil
	}
	return nil, &LoadError{Tried: tried}
}

// Path returns the name or path the library was loaded from.
func (l *Lib) Path() string { return l.path }

// Has reports whether the loaded library exports the named C function, e.g.
// l.Has("krun_set_tsi_scope").
func (l *Lib) Has(name string) bool {
	if l.missing[name] {
		return false
	}
	return slices.Contains(Functions(), name)
}

// Missing returns the optional functions the loaded library lacks, sorted.
func (l *Lib) Missing() []string {
	var names []string
	for n := range l.missing {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close unloads the library. Contexts created from it must not be used
// afterwards.
func (l *Lib) Close() error {
	if l.handle == 0 {
		return nil
	}
	err := dlclose(l.handle)
	l.handle = 0
	return err
}

// need returns a [*MissingError] if the library lacks fn.
func (l *Lib) need(fn string) error {
	if l.missing[fn] {
		return &MissingError{Func: fn, Path: l.path, Since: since[fn]}
	}
	return nil
}

// ErrLogLevelSet is returned by a second [Lib.SetLogLevel]: libkrun installs
// its logger once per process and fails (or aborts) when asked again.
var ErrLogLevelSet = errors.New("krun_set_log_level: already called in this process (libkrun accepts it once)")

// SetLogLevel sets libkrun's log level (krun_set_log_level). libkrun accepts
// it once per process; a VMM process opens the library once, so a second
// call on the same Lib returns [ErrLogLevelSet] without calling libkrun.
func (l *Lib) SetLogLevel(level LogLevel) error {
	if l.logLevel {
		return ErrLogLevelSet
	}
	if err := errno(fnSetLogLevel, l.fn.setLogLevel(uint32(level))); err != nil {
		return err
	}
	l.logLevel = true
	return nil
}

// GetMaxVCPUs returns the maximum number of vCPUs the hypervisor supports
// (krun_get_max_vcpus; upstream libkrun only).
func (l *Lib) GetMaxVCPUs() (int, error) {
	if err := l.need(fnGetMaxVCPUs); err != nil {
		return 0, err
	}
	ret := l.fn.getMaxVCPUs()
	if err := errno(fnGetMaxVCPUs, ret); err != nil {
		return 0, err
	}
	return int(ret), nil
}

// HasFeature reports whether libkrun was built with a feature
// (krun_has_feature; upstream libkrun only).
func (l *Lib) HasFeature(f Feature) (bool, error) {
	if err := l.need(fnHasFeature); err != nil {
		return false, err
	}
	ret := l.fn.hasFeature(uint64(f))
	if err := errno(fnHasFeature, ret); err != nil {
		return false, err
	}
	return ret == 1, nil
}

// CreateCtx creates a configuration context (krun_create_ctx).
func (l *Lib) CreateCtx() (*Ctx, error) {
	ret := l.fn.createCtx()
	if err := errno(fnCreateCtx, ret); err != nil {
		return nil, err
	}
	return &Ctx{lib: l, id: uint32(ret)}, nil
}

// NeedFeature returns nil if the library was built with f, a [*FeatureError]
// if it was not or cannot say (no krun_has_feature), or the call's error.
// A function can be exported and still do nothing in a build without its
// feature, so this, not symbol presence, decides.
func (l *Lib) NeedFeature(f Feature) error {
	if !l.Has(fnHasFeature) {
		return &FeatureError{Feature: f, Path: l.path, Unknown: true}
	}
	ok, err := l.HasFeature(f)
	if err != nil {
		return err
	}
	if !ok {
		return &FeatureError{Feature: f, Path: l.path}
	}
	return nil
}

// NeedFunc returns a [*MissingError] if the library lacks the C function fn.
func (l *Lib) NeedFunc(fn string) error {
	if !slices.Contains(Functions(), fn) {
		return fmt.Errorf("%s is not a libkrun function this package binds: %w", fn, ErrInvalidArgument)
	}
	return l.need(fn)
}

// Capabilities is what a loaded libkrun can do: the optional functions it
// exports and the build features it reports.
type Capabilities struct {
	// Path is the library.
	Path string `json:"path"`
	// Missing lists the optional functions it lacks, sorted.
	Missing []string `json:"missing"`
	// Features maps each feature name to whether the build has it; nil when
	// the library has no krun_has_feature.
	Features map[string]bool `json:"features"`
}

// Capabilities reports the functions and build features of the library.
func (l *Lib) Capabilities() Capabilities {
	c := Capabilities{Path: l.path, Missing: l.Missing()}
	if l.Has(fnHasFeature) {
		c.Features = map[string]bool{}
		for _, f := range Features() {
			ok, err := l.HasFeature(f)
			c.Features[f.String()] = err == nil && ok
		}
	}
	return c
}
