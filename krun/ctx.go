package krun

import (
	"fmt"
	"strconv"
	"strings"
)

// Ctx is a libkrun configuration context (krun_create_ctx). Its methods map
// one to one onto the krun_* functions taking a ctx_id; each returns an
// [*Error] for a negative return, a [*MissingError] if the loaded library
// lacks the function, or an error wrapping [ErrInvalidArgument] for strings
// containing NUL bytes (rejected before the call).
//
// Slices follow one rule: nil is passed as NULL, a non-nil slice (even empty)
// as a NULL-terminated array. libkrun gives the two different meanings.
type Ctx struct {
	lib *Lib
	id  uint32
}

// ID returns libkrun's context id.
func (c *Ctx) ID() uint32 { return c.id }

// call runs one C function with marshalled arguments, keeping them alive
// across the call and turning the result into an error.
func (c *Ctx) call(fn string, m *cmem, do func() int32) (int32, error) {
	if err := c.lib.need(fn); err != nil {
		return 0, err
	}
	if m != nil && m.err != nil {
		return 0, m.err
	}
	ret := do()
	if m != nil {
		m.keepAlive()
	}
	return ret, errno(fn, ret)
}

// Free frees the context (krun_free_ctx).
func (c *Ctx) Free() error {
	_, err := c.call(fnFreeCtx, nil, func() int32 { return c.lib.fn.freeCtx(c.id) })
	return err
}

// SetVMConfig sets the number of vCPUs and the RAM in MiB (krun_set_vm_config).
func (c *Ctx) SetVMConfig(cpus uint8, mib uint32) error {
	_, err := c.call(fnSetVMConfig, nil, func() int32 { return c.lib.fn.setVMConfig(c.id, cpus, mib) })
	return err
}

// SetRoot sets the host directory used as the guest's root (krun_set_root).
// It is mutually exclusive with [Ctx.SetOverlayfsRoot] (-EEXIST).
func (c *Ctx) SetRoot(path string) error {
	m := newCmem(fnSetRoot)
	p := m.str("root_path", path)
	_, err := c.call(fnSetRoot, m, func() int32 { return c.lib.fn.setRoot(c.id, p) })
	return err
}

// SetOverlayfsRoot sets an overlay of host directories as the guest's root,
// lowest layer first, the last one writable (krun_set_overlayfs_root; only in
// microsandbox's fork). At least one layer is needed (-EINVAL).
func (c *Ctx) SetOverlayfsRoot(layers []string) error {
	m := newCmem(fnSetOverlayfsRoot)
	if layers == nil {
		// The array is mandatory: an absent list is an empty one.
		layers = []string{}
	}
	p := m.strv("root_layers", layers)
	_, err := c.call(fnSetOverlayfsRoot, m, func() int32 { return c.lib.fn.setOverlayfsRoot(c.id, p) })
	return err
}

// AddDisk adds a raw disk image as a block device (krun_add_disk).
func (c *Ctx) AddDisk(blockID, path string, readOnly bool) error {
	m := newCmem(fnAddDisk)
	b := m.str("block_id", blockID)
	p := m.str("disk_path", path)
	_, err := c.call(fnAddDisk, m, func() int32 { return c.lib.fn.addDisk(c.id, b, p, readOnly) })
	return err
}

// AddVirtiofs shares a host directory with the guest under tag
// (krun_add_virtiofs).
func (c *Ctx) AddVirtiofs(tag, path string) error {
	m := newCmem(fnAddVirtiofs)
	t := m.str("c_tag", tag)
	p := m.str("c_path", path)
	_, err := c.call(fnAddVirtiofs, m, func() int32 { return c.lib.fn.addVirtiofs(c.id, t, p) })
	return err
}

// AddVirtiofs2 is [Ctx.AddVirtiofs] with a DAX window of shmSize bytes
// (krun_add_virtiofs2).
func (c *Ctx) AddVirtiofs2(tag, path string, shmSize uint64) error {
	m := newCmem(fnAddVirtiofs2)
	t := m.str("c_tag", tag)
	p := m.str("c_path", path)
	_, err := c.call(fnAddVirtiofs2, m, func() int32 { return c.lib.fn.addVirtiofs2(c.id, t, p, shmSize) })
	return err
}

// SetPasstFD switches networking from TSI to passt over fd
// (krun_set_passt_fd).
func (c *Ctx) SetPasstFD(fd int) error {
	_, err := c.call(fnSetPasstFD, nil, func() int32 { return c.lib.fn.setPasstFD(c.id, int32(fd)) })
	return err
}

// SetGvproxyPath switches networking from TSI to gvproxy in vfkit mode,
// listening at path (krun_set_gvproxy_path).
func (c *Ctx) SetGvproxyPath(path string) error {
	m := newCmem(fnSetGvproxyPath)
	p := m.str("c_path", path)
	_, err := c.call(fnSetGvproxyPath, m, func() int32 { return c.lib.fn.setGvproxyPath(c.id, p) })
	return err
}

// SetNetMAC sets the virtio-net MAC address (krun_set_net_mac).
func (c *Ctx) SetNetMAC(mac [6]byte) error {
	m := newCmem(fnSetNetMAC)
	p := m.bytes(mac[:])
	_, err := c.call(fnSetNetMAC, m, func() int32 { return c.lib.fn.setNetMAC(c.id, p) })
	return err
}

// SetPortMap sets the host:guest TCP port map (krun_set_port_map). An empty
// map exposes no port. libkrun's NULL ("expose every listening port")
// dereferences the pointer in some releases and crashes the VMM, so a nil map
// is refused: not calling SetPortMap at all has that meaning.
func (c *Ctx) SetPortMap(ports []PortMapping) error {
	if ports == nil {
		return fmt.Errorf("%s: a nil port map would pass NULL, which crashes libkrun; pass an empty map or do not call it: %w", fnSetPortMap, ErrInvalidArgument)
	}
	m := newCmem(fnSetPortMap)
	ss := make([]string, 0, len(ports))
	for _, pm := range ports {
		ss = append(ss, pm.String())
	}
	p := m.strv("c_port_map", ss)
	_, err := c.call(fnSetPortMap, m, func() int32 { return c.lib.fn.setPortMap(c.id, p) })
	return err
}

// SetTSIScope sets the guest's static IPv4 address, its subnet (CIDR) and the
// network scope enforced by TSI (krun_set_tsi_scope; only in microsandbox's
// fork). Empty ip or subnet are passed as NULL (not set).
func (c *Ctx) SetTSIScope(ip, subnet string, scope Scope) error {
	m := newCmem(fnSetTSIScope)
	i := m.optStr("c_ip", ip)
	s := m.optStr("c_subnet", subnet)
	_, err := c.call(fnSetTSIScope, m, func() int32 { return c.lib.fn.setTSIScope(c.id, i, s, uint8(scope)) })
	return err
}

// SetGPUOptions enables virtio-gpu with virglrenderer flags
// (krun_set_gpu_options).
func (c *Ctx) SetGPUOptions(virglFlags uint32) error {
	_, err := c.call(fnSetGPUOptions, nil, func() int32 { return c.lib.fn.setGPUOptions(c.id, virglFlags) })
	return err
}

// SetGPUOptions2 is [Ctx.SetGPUOptions] with a host window of shmSize bytes
// (krun_set_gpu_options2).
func (c *Ctx) SetGPUOptions2(virglFlags uint32, shmSize uint64) error {
	_, err := c.call(fnSetGPUOptions2, nil, func() int32 { return c.lib.fn.setGPUOptions2(c.id, virglFlags, shmSize) })
	return err
}

// SetSndDevice enables or disables virtio-snd (krun_set_snd_device).
func (c *Ctx) SetSndDevice(enable bool) error {
	_, err := c.call(fnSetSndDevice, nil, func() int32 { return c.lib.fn.setSndDevice(c.id, enable) })
	return err
}

// SetRlimits sets resource limits applied in the guest before the workload
// starts (krun_set_rlimits), as "RESOURCE=CUR:MAX" strings.
func (c *Ctx) SetRlimits(rlimits []Rlimit) error {
	m := newCmem(fnSetRlimits)
	var ss []string
	if rlimits != nil {
		ss = make([]string, 0, len(rlimits))
		for _, r := range rlimits {
			ss = append(ss, r.String())
		}
	}
	p := m.strv("c_rlimits", ss)
	_, err := c.call(fnSetRlimits, m, func() int32 { return c.lib.fn.setRlimits(c.id, p) })
	return err
}

// SetSMBIOSOEMStrings sets the SMBIOS OEM strings
// (krun_set_smbios_oem_strings).
func (c *Ctx) SetSMBIOSOEMStrings(oem []string) error {
	m := newCmem(fnSetSMBIOSOEMStrings)
	p := m.strv("c_oem_strings", oem)
	_, err := c.call(fnSetSMBIOSOEMStrings, m, func() int32 { return c.lib.fn.setSMBIOSOEMStrings(c.id, p) })
	return err
}

// SetWorkdir sets the workload's working directory, inside the guest root
// (krun_set_workdir).
func (c *Ctx) SetWorkdir(path string) error {
	m := newCmem(fnSetWorkdir)
	p := m.str("c_workdir_path", path)
	_, err := c.call(fnSetWorkdir, m, func() int32 { return c.lib.fn.setWorkdir(c.id, p) })
	return err
}

// SetExec sets the workload: executable path inside the guest, its arguments
// (argv[1:] in libkrun's convention) and its environment (krun_set_exec). A nil
// env is NULL, which makes libkrun pass on the calling process's environment;
// an empty non-nil env passes none.
//
// libkrun carries argv and env to the guest on the kernel command line inside
// double quotes, without escaping: a value holding '"' or a newline would be
// split or would inject kernel parameters, so it is refused here.
func (c *Ctx) SetExec(path string, argv, env []string) error {
	if err := cmdlineSafe(fnSetExec, "c_argv", argv); err != nil {
		return err
	}
	if err := cmdlineSafe(fnSetExec, "c_envp", env); err != nil {
		return err
	}
	m := newCmem(fnSetExec)
	p := m.str("c_exec_path", path)
	a := m.strv("c_argv", argv)
	e := m.strv("c_envp", env)
	_, err := c.call(fnSetExec, m, func() int32 { return c.lib.fn.setExec(c.id, p, a, e) })
	return err
}

// SetEnv sets the workload's environment (krun_set_env); nil means the
// calling process's environment, as for [Ctx.SetExec], whose quoting rule
// applies too.
func (c *Ctx) SetEnv(env []string) error {
	if err := cmdlineSafe(fnSetEnv, "c_envp", env); err != nil {
		return err
	}
	m := newCmem(fnSetEnv)
	e := m.strv("c_envp", env)
	_, err := c.call(fnSetEnv, m, func() int32 { return c.lib.fn.setEnv(c.id, e) })
	return err
}

// cmdlineSafe refuses values libkrun cannot carry on the kernel command line.
func cmdlineSafe(fn, arg string, ss []string) error {
	for i, s := range ss {
		if strings.ContainsAny(s, "\"\n") {
			return fmt.Errorf("%s: %s[%d] (%q) contains a double quote or newline, which libkrun passes unescaped on the kernel command line: %w",
				fn, arg, i, s, ErrInvalidArgument)
		}
	}
	return nil
}

// SetTEEConfigFile sets the TEE configuration file (krun_set_tee_config_file;
// libkrun-sev only).
func (c *Ctx) SetTEEConfigFile(path string) error {
	m := newCmem(fnSetTEEConfigFile)
	p := m.str("c_filepath", path)
	_, err := c.call(fnSetTEEConfigFile, m, func() int32 { return c.lib.fn.setTEEConfigFile(c.id, p) })
	return err
}

// AddVsockPort connects guest vsock port to the host UNIX socket at path
// (krun_add_vsock_port).
func (c *Ctx) AddVsockPort(port uint32, path string) error {
	m := newCmem(fnAddVsockPort)
	p := m.str("c_filepath", path)
	_, err := c.call(fnAddVsockPort, m, func() int32 { return c.lib.fn.addVsockPort(c.id, port, p) })
	return err
}

// AddVsockPort2 connects guest vsock port to the host UNIX socket at path;
// with listen the guest listens and libkrun creates the host socket
// (krun_add_vsock_port2, libkrun >= 1.10).
func (c *Ctx) AddVsockPort2(port uint32, path string, listen bool) error {
	m := newCmem(fnAddVsockPort2)
	p := m.str("c_filepath", path)
	_, err := c.call(fnAddVsockPort2, m, func() int32 { return c.lib.fn.addVsockPort2(c.id, port, p, listen) })
	return err
}

// TSI features of krun_add_vsock.
const (
	TSIHijackInet uint32 = 1 << 0
	TSIHijackUnix uint32 = 1 << 1
)

// AddVsock adds the vsock device explicitly, with the given TSI features (0:
// vsock without TSI); it needs [Ctx.DisableImplicitVsock] first
// (krun_add_vsock, libkrun >= 1.17).
func (c *Ctx) AddVsock(tsiFeatures uint32) error {
	_, err := c.call(fnAddVsock, nil, func() int32 { return c.lib.fn.addVsock(c.id, tsiFeatures) })
	return err
}

// AddNetTap adds a virtio-net device backed by the host tap device name
// (krun_add_net_tap, libkrun >= 1.15 built with NET=1). It disables TSI.
func (c *Ctx) AddNetTap(name string, mac [6]byte, features, flags uint32) error {
	m := newCmem(fnAddNetTap)
	n := m.str("c_tap_name", name)
	p := m.bytes(mac[:])
	_, err := c.call(fnAddNetTap, m, func() int32 { return c.lib.fn.addNetTap(c.id, n, p, features, flags) })
	return err
}

// GetShutdownEventFD returns the eventfd that asks the guest to shut down
// (krun_get_shutdown_eventfd; libkrun-efi only). Call it before StartEnter.
func (c *Ctx) GetShutdownEventFD() (int, error) {
	ret, err := c.call(fnGetShutdownEventFD, nil, func() int32 { return c.lib.fn.getShutdownEventFD(c.id) })
	if err != nil {
		return -1, err
	}
	return int(ret), nil
}

// SetConsoleOutput writes the guest console to the file at path and ignores
// stdin (krun_set_console_output).
func (c *Ctx) SetConsoleOutput(path string) error {
	m := newCmem(fnSetConsoleOutput)
	p := m.str("c_filepath", path)
	_, err := c.call(fnSetConsoleOutput, m, func() int32 { return c.lib.fn.setConsoleOutput(c.id, p) })
	return err
}

// DisableImplicitVsock stops libkrun from creating its implicit vsock device,
// which also removes TSI networking (krun_disable_implicit_vsock; upstream
// libkrun 1.17+).
func (c *Ctx) DisableImplicitVsock() error {
	_, err := c.call(fnDisableImplicitVsock, nil, func() int32 { return c.lib.fn.disableImplicitVsock(c.id) })
	return err
}

// SetUID sets the uid the VMM switches to right before starting the VM
// (krun_setuid; upstream libkrun).
func (c *Ctx) SetUID(uid uint32) error {
	_, err := c.call(fnSetUID, nil, func() int32 { return c.lib.fn.setUID(c.id, uid) })
	return err
}

// SetGID sets the gid the VMM switches to right before starting the VM
// (krun_setgid; upstream libkrun).
func (c *Ctx) SetGID(gid uint32) error {
	_, err := c.call(fnSetGID, nil, func() int32 { return c.lib.fn.setGID(c.id, gid) })
	return err
}

// StartEnter starts the VM (krun_start_enter). On success it never returns:
// libkrun takes over the process and calls exit() when the guest stops, so it
// must only be called in a process dedicated to the VM (see [RunChild]). It
// returns only if libkrun rejected the configuration; the context is consumed
// either way.
func (c *Ctx) StartEnter() error {
	_, err := c.call(fnStartEnter, nil, func() int32 { return c.lib.fn.startEnter(c.id) })
	return err
}

// String returns "krun ctx N".
func (c *Ctx) String() string { return "krun ctx " + strconv.FormatUint(uint64(c.id), 10) }
