package lang

import (
	"hash/fnv"
	"math/big"
	"net/netip"
)

// subnetRange describes the usable host indexes of a subnet: the network address (index 0),
// the gateway (index 1, the first host) and, for IPv4, the broadcast address are reserved.
type subnetRange struct {
	prefix netip.Prefix
	first  uint64 // first usable index
	count  uint64 // number of usable indexes; capped for huge IPv6 subnets
}

func newSubnetRange(p netip.Prefix) (subnetRange, bool) {
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
	return subnetRange{prefix: p.Masked(), first: 2, count: size - reserved}, true
}

// addr returns the address at host index i.
func (r subnetRange) addr(i uint64) netip.Addr {
	b := r.prefix.Addr().AsSlice()
	n := new(big.Int).SetBytes(b)
	n.Add(n, new(big.Int).SetUint64(i))
	out := n.FillBytes(make([]byte, len(b)))
	a, _ := netip.AddrFromSlice(out)
	return a
}

// index returns the host index of a, and whether a is inside the prefix.
func (r subnetRange) index(a netip.Addr) (uint64, bool) {
	if !r.prefix.Contains(a) {
		return 0, false
	}
	base := new(big.Int).SetBytes(r.prefix.Addr().AsSlice())
	n := new(big.Int).SetBytes(a.AsSlice())
	n.Sub(n, base)
	if !n.IsUint64() {
		return 0, false
	}
	return n.Uint64(), true
}

// usable reports whether a is an address a sandbox may have.
func (r subnetRange) usable(a netip.Addr) bool {
	i, ok := r.index(a)
	return ok && i >= r.first && i < r.first+r.count
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
