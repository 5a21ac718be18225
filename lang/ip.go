package lang

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// subnetRange describes the addresses of a subnet that sandboxes may have: the network
// address, the first host (the gateway) and, for IPv4, the broadcast address are reserved.
// Allocation uses host indexes first..first+count-1; for IPv6 that is capped at 2^32
// addresses, which only limits allocation, not declared addresses.
type subnetRange struct {
	prefix netip.Prefix
	first  uint64
	count  uint64
}

func newSubnetRange(p netip.Prefix) (subnetRange, bool) {
	p = p.Masked()
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > 32 {
		hostBits = 32
	}
	size := uint64(1) << hostBits
	reserved := uint64(2)
	if p.Addr().Is4() {
		reserved = 3
	}
	if size <= reserved {
		return subnetRange{}, false
	}
	return subnetRange{prefix: p, first: 2, count: size - reserved}, true
}

// addr returns the address at host index i (i < 2^32).
func (r subnetRange) addr(i uint64) netip.Addr {
	b := r.prefix.Addr().As16()
	lo := binary.BigEndian.Uint64(b[8:]) + i
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if r.prefix.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// usable reports whether a sandbox may have address a.
func (r subnetRange) usable(a netip.Addr) bool {
	if !r.prefix.Contains(a) {
		return false
	}
	network := r.prefix.Addr()
	if a == network || a == network.Next() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		host := binary.BigEndian.Uint32(b[:])
		mask := uint32(1)<<(32-r.prefix.Bits()) - 1
		if host&mask == mask {
			return false // broadcast
		}
	}
	return true
}

// allocate picks the address of name: FNV-1a of the name chooses a start index, then linear
// probing skips taken addresses. It returns false when the subnet is full.
func (r subnetRange) allocate(name string, taken map[netip.Addr]string) (netip.Addr, bool) {
	h := fnv.New64a()
	h.Write([]byte(name))
	start := h.Sum64() % r.count
	for k := uint64(0); k < r.count; k++ {
		a := r.addr(r.first + (start+k)%r.count)
		if _, used := taken[a]; !used {
			return a, true
		}
	}
	return netip.Addr{}, false
}
