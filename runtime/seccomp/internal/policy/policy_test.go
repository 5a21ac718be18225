//go:build linux

package policy

import (
	"encoding/binary"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data as the little-endian kernel lays it
// out, written so that x/net/bpf's VM (which loads big-endian words) reads
// each 32-bit word as the kernel would.
func seccompData(nr, auditArch uint32, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		off := 16 + 8*i
		binary.BigEndian.PutUint32(b[off:], uint32(a))       // low word first in memory
		binary.BigEndian.PutUint32(b[off+4:], uint32(a>>32)) // then the high word
	}
	return b
}

// TestTreeMatchesLinear checks that the binary-search filter answers like
// go-seccomp-bpf's own assembly of the same policy, for every syscall
// number, both ABIs' number spaces, a foreign architecture, and the
// arguments the conditional rules inspect.
func TestTreeMatchesLinear(t *testing.T) {
	argSets := [][6]uint64{{}, {unix.CLONE_NEWUSER}, {unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, {unix.CLONE_VM | unix.CLONE_THREAD},
		{unix.AF_INET}, {unix.AF_VSOCK}, {unix.AF_ALG}, {0x8}, {0x20008}, {0xffffffff}, {0x0040000}, {1 << 32}, {unix.CLONE_NEWUSER << 32}}
	for goarch := range Arches {
		tree, err := Assemble(goarch)
		if err != nil {
			t.Fatal(err)
		}
		linear, err := AssembleLinear(goarch)
		if err != nil {
			t.Fatal(err)
		}
		treeInsts := make([]bpf.Instruction, len(tree))
		for i, r := range tree {
			treeInsts[i] = bpf.RawInstruction{Op: r.Code, Jt: r.Jt, Jf: r.Jf, K: r.K}.Disassemble()
		}
		tvm, err := bpf.NewVM(treeInsts)
		if err != nil {
			t.Fatal(err)
		}
		lvm, err := bpf.NewVM(linear)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := arch.GetInfo(goarch)
		var nrs []uint32
		for nr := uint32(0); nr < 1100; nr++ {
			nrs = append(nrs, nr, nr|0x40000000)
		}
		nrs = append(nrs, 0xffffffff, 0x7fffffff)
		checked := 0
		for _, a := range []uint32{uint32(info.ID), 0x40000003 /* i386 */, 0xc00000b7 /* aarch64 */, 0xc000003e /* x86_64 */} {
			for _, nr := range nrs {
				for _, args := range argSets {
					in := seccompData(nr, a, args)
					got, err1 := tvm.Run(in)
					want, err2 := lvm.Run(in)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if got != want {
						t.Fatalf("%s: arch %#x nr %d (%s) args %#x: tree %#x, linear %#x", goarch, a, nr, info.SyscallNumbers[int(nr)], args[0], got, want)
					}
					checked++
				}
			}
		}
		t.Logf("%s: %d instructions (the library's linear form: %d); %d cases agree", goarch, len(tree), len(linear), checked)
	}
}
