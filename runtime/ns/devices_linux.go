//go:build linux

package ns

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deviceRule allows the device nodes of one type and major number (and
// minor number, unless it is -1) for reading, writing and mknod.
type deviceRule struct {
	char         bool // a character device; else a block device
	major, minor int64
}

// allowedDevices are the only device nodes a sandbox can open or create, as
// in runc's default list without tun: /dev/null, zero, full, random,
// urandom, tty, console, ptmx and the pseudo-terminals of /dev/pts. Overlay
// whiteouts (0:0 character devices) are exempt from the device cgroup.
var allowedDevices = []deviceRule{
	{true, 1, 3}, {true, 1, 5}, {true, 1, 7}, {true, 1, 8}, {true, 1, 9}, // null zero full random urandom
	{true, 5, 0}, {true, 5, 1}, {true, 5, 2}, // tty console ptmx
	{true, 136, -1}, // /dev/pts/N
}

// v1 is the rule in the devices.allow syntax of cgroup v1 ("c 1:3 rwm").
func (r deviceRule) v1() string {
	t, minor := "b", "*"
	if r.char {
		t = "c"
	}
	if r.minor >= 0 {
		minor = strconv.FormatInt(r.minor, 10)
	}
	return t + " " + strconv.FormatInt(r.major, 10) + ":" + minor + " rwm"
}

// bpf instruction encoding (linux/bpf.h).
const (
	bpfLdxMemW  = 0x61 // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
	bpfMovImm   = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
	bpfMovReg   = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X: dst = src
	bpfAndImm   = 0x57 // BPF_ALU64 | BPF_AND | BPF_K: dst &= imm
	bpfRshImm   = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K: dst >>= imm
	bpfJneImm   = 0x55 // BPF_JMP | BPF_JNE | BPF_K: if dst != imm goto pc+off
	bpfExit     = 0x95 // BPF_JMP | BPF_EXIT
	devcgBlock  = 1    // BPF_DEVCG_DEV_BLOCK
	devcgChar   = 2    // BPF_DEVCG_DEV_CHAR
	bpfFAllowMu = 2    // BPF_F_ALLOW_MULTI
)

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst_reg:4, src_reg:4 (bit fields: order follows the byte order)
	off  int16
	imm  int32
}

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	regs := dst | src<<4
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 { // big endian
		regs = dst<<4 | src
	}
	return bpfInsn{code: code, regs: regs, off: off, imm: imm}
}

// deviceProgram is a BPF_PROG_TYPE_CGROUP_DEVICE program that allows
// exactly rules: the cgroup v2 equivalent of a v1 devices allow-list. Its
// context is struct bpf_cgroup_dev_ctx {u32 access_type (access << 16 |
// type); u32 major; u32 minor}; it returns 1 to allow, 0 to deny.
func deviceProgram(rules []deviceRule) []bpfInsn {
	p := []bpfInsn{
		insn(bpfLdxMemW, 2, 1, 0, 0), // r2 = access_type
		insn(bpfMovReg, 3, 2, 0, 0),  // r3 = r2
		insn(bpfAndImm, 3, 0, 0, 0xffff),
		insn(bpfRshImm, 2, 0, 0, 16), // r2 = access (unused: rules allow rwm)
		insn(bpfLdxMemW, 4, 1, 4, 0), // r4 = major
		insn(bpfLdxMemW, 5, 1, 8, 0), // r5 = minor
	}
	for _, r := range rules {
		typ := int32(devcgBlock)
		if r.char {
			typ = devcgChar
		}
		// Each rule: compare type, major, minor; any mismatch skips to
		// the next rule, past the "return 1".
		checks := []bpfInsn{insn(bpfJneImm, 3, 0, 0, typ), insn(bpfJneImm, 4, 0, 0, int32(r.major))}
		if r.minor >= 0 {
			checks = append(checks, insn(bpfJneImm, 5, 0, 0, int32(r.minor)))
		}
		for i := range checks {
			checks[i].off = int16(len(checks) - i - 1 + 2) // over the rest of the checks and the return
		}
		p = append(p, checks...)
		p = append(p, insn(bpfMovImm, 0, 0, 0, 1), insn(bpfExit, 0, 0, 0, 0))
	}
	return append(p, insn(bpfMovImm, 0, 0, 0, 0), insn(bpfExit, 0, 0, 0, 0))
}

// deviceProg is the loaded device program, shared by every sandbox this
// process starts: the kernel's verifier runs once.
var deviceProg struct {
	sync.Once
	fd  int
	err error
}

// loadDeviceProgram loads the allow-list program.
func loadDeviceProgram() (int, error) {
	prog := deviceProgram(allowedDevices)
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 4096)
	load := struct {
		progType, insnCnt  uint32
		insns, license     uint64
		logLevel, logSize  uint32
		logBuf             uint64
		kernVersion, flags uint32
		name               [16]byte
		ifindex            uint32
		expectedAttachType uint32
	}{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE, insnCnt: uint32(len(prog)),
		insns: uint64(uintptr(unsafe.Pointer(&prog[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1, logSize: uint32(len(logBuf)), logBuf: uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(load.name[:], "sbx_devices")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&load)), unsafe.Sizeof(load))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if errno != 0 {
		return -1, fmt.Errorf("load the device cgroup program: %w %s", errno, logBuf[:clen(logBuf)])
	}
	unix.CloseOnExec(int(fd))
	return int(fd), nil
}

// attachDeviceProgram attaches the allow-list program to the cgroup v2
// directory dir.
func attachDeviceProgram(dir string) error {
	deviceProg.Do(func() { deviceProg.fd, deviceProg.err = loadDeviceProgram() })
	if deviceProg.err != nil {
		return deviceProg.err
	}
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach the device cgroup program: %w", err)
	}
	defer unix.Close(cg)
	attach := struct{ target, prog, attachType, flags, replace uint32 }{
		target: uint32(cg), prog: uint32(deviceProg.fd), attachType: unix.BPF_CGROUP_DEVICE, flags: bpfFAllowMu,
	}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attach)), unsafe.Sizeof(attach)); errno != 0 && errno != unix.EEXIST {
		// EEXIST: this process attached it to a cgroup that was reused.
		return fmt.Errorf("attach the device cgroup program to %s: %w", dir, errno)
	}
	return nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// v1DeviceRules are allowedDevices as cgroup v1 devices.list shows them.
func v1DeviceRules() []string {
	out := make([]string, len(allowedDevices))
	for i, r := range allowedDevices {
		out[i] = r.v1()
	}
	return out
}

// v1DevicesRestricted reports whether the v1 devices cgroup dir allows
// exactly allowedDevices.
func v1DevicesRestricted(dir string) bool {
	b, err := os.ReadFile(dir + "/devices.list")
	return err == nil && strings.TrimSpace(string(b)) == strings.Join(v1DeviceRules(), "\n")
}

// writeV1Devices replaces the v1 devices cgroup dir's list with
// allowedDevices.
func writeV1Devices(dir string) error {
	if err := os.WriteFile(dir+"/devices.deny", []byte("a"), 0); err != nil {
		return fmt.Errorf("device cgroup %s: deny all: %w", dir, err)
	}
	for _, r := range v1DeviceRules() {
		if err := os.WriteFile(dir+"/devices.allow", []byte(r), 0); err != nil {
			return fmt.Errorf("device cgroup %s: allow %s: %w", dir, r, err)
		}
	}
	return nil
}

// restrictV1DevicesParent restricts the sandbox's parent cgroup, one that
// belongs to sbx (a configured cgroup parent, never the cgroup sbx itself
// runs in), when it is not yet: a new v1 cgroup starts with its parent's
// list, so later sandboxes need no writes. The kernel refuses while the
// parent has children (sandboxes started before); restrictV1Devices then
// does each sandbox's own.
func restrictV1DevicesParent(parent string) {
	if !v1DevicesRestricted(parent) {
		_ = writeV1Devices(parent)
	}
}

// restrictV1Devices makes the v1 devices cgroup dir allow only
// allowedDevices, unless it inherited that list.
func restrictV1Devices(dir string) error {
	if v1DevicesRestricted(dir) {
		return nil
	}
	return writeV1Devices(dir)
}
