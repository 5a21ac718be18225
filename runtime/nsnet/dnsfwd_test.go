package nsnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// dnsQuery builds a query for the A record of name.
func dnsQuery(id uint16, name string) []byte {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD, one question
	for _, l := range strings.Split(name, ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	return append(q, 0, 0, 1, 0, 1) // root, type A, class IN
}

// question returns the name, type and end of the question of message m.
func question(m []byte) (string, uint16, int, error) {
	if len(m) < dnsHeader || binary.BigEndian.Uint16(m[4:6]) != 1 {
		return "", 0, 0, errors.New("not a message with one question")
	}
	var labels []string
	off := dnsHeader
	for off < len(m) && m[off] != 0 {
		l := int(m[off])
		if l&0xc0 != 0 || off+1+l > len(m) {
			return "", 0, 0, errors.New("bad name")
		}
		labels = append(labels, string(m[off+1:off+1+l]))
		off += 1 + l
	}
	off++
	if off+4 > len(m) {
		return "", 0, 0, errors.New("short question")
	}
	return strings.Join(labels, "."), binary.BigEndian.Uint16(m[off:]), off + 4, nil
}

// answerA checks that a answers q and returns its rcode and the address of
// its only A record (zero when it has none).
func answerA(q, a []byte) (rcode int, addr netip.Addr, err error) {
	if len(a) < dnsHeader || a[0] != q[0] || a[1] != q[1] || a[2]&0x80 == 0 {
		return 0, netip.Addr{}, fmt.Errorf("not an answer to the query: %x", a)
	}
	_, _, end, err := question(a)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	rcode = int(a[3] & 0x0f)
	if binary.BigEndian.Uint16(a[6:8]) == 1 && len(a) == end+16 && binary.BigEndian.Uint16(a[end+10:]) == 4 {
		addr = netip.AddrFrom4([4]byte(a[end+12:]))
	}
	return rcode, addr, nil
}

func TestServfail(t *testing.T) {
	q := dnsQuery(0xbeef, "probe.sbx.test")
	q = append(q, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0) // an EDNS OPT record
	binary.BigEndian.PutUint16(q[10:], 1)
	r := servfail(q)
	rcode, addr, err := answerA(q, r)
	if err != nil || rcode != 2 || addr.IsValid() {
		t.Fatalf("servfail: rcode %d, %s, %v (%x)", rcode, addr, err, r)
	}
	if r[2] != 0x81 || !bytes.Equal(r[4:12], []byte{0, 1, 0, 0, 0, 0, 0, 0}) || len(r) != len(q)-11 {
		t.Errorf("servfail header or size: %x", r)
	}
	for _, bad := range [][]byte{nil, q[:11], r, q[:len(q)-14]} {
		if servfail(bad) != nil {
			t.Errorf("servfail(%x) built an answer", bad)
		}
	}
}

func TestDNSUpstreams(t *testing.T) {
	conf := []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver 2620:fe::fe\nnameserver fe80::1%eth0\nnameserver 0.0.0.0\nnameserver bogus\noptions edns0\n")
	var want []netip.AddrPort
	for _, s := range []string{"127.0.0.53:53", "10.255.255.53:53", "[2620:fe::fe]:53", "[fe80::1%eth0]:53"} {
		want = append(want, netip.MustParseAddrPort(s))
	}
	if got := dnsUpstreams(conf); !slices.Equal(got, want) {
		t.Errorf("dnsUpstreams = %v, want %v", got, want)
	}
}

func TestResolvConf(t *testing.T) {
	h := &Handle{net: Net{Scope: ScopePublic, Subnet: netip.MustParsePrefix("10.88.0.0/24"), IP: netip.MustParseAddr("10.88.0.5")}}
	for _, scope := range []string{ScopePublic, ScopeAny} {
		if got := ResolvConf(scope, h); got != "nameserver 10.88.0.1\n" {
			t.Errorf("ResolvConf(%s) = %q", scope, got)
		}
	}
	for _, scope := range []string{ScopeNone, ScopeGroup} {
		for _, h := range []*Handle{nil, h} {
			if got := ResolvConf(scope, h); !strings.HasPrefix(got, "# no DNS") || strings.Contains(got, "nameserver") {
				t.Errorf("ResolvConf(%s) = %q", scope, got)
			}
		}
	}
	// Without a forwarder: the host's reachable servers, or a comment.
	got := ResolvConf(ScopePublic, nil)
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(l, "nameserver ") && !strings.HasPrefix(l, "# no DNS") {
			t.Errorf("ResolvConf(public, nil) = %q", got)
		}
	}
}

func TestServeDNSErrors(t *testing.T) {
	ctx := context.Background()
	up := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353")}
	sn := netip.MustParsePrefix("10.88.0.0/24")
	for _, tt := range []struct {
		h    *Handle
		ups  []netip.AddrPort
		opts []DNSOption
		want string
	}{
		{nil, up, nil, "no sandbox handle"},
		{&Handle{net: Net{Name: "g", Scope: ScopeGroup, Subnet: sn}}, up, nil, "scope group has no DNS"},
		{&Handle{net: Net{Name: "n", Scope: ScopeNone}}, up, nil, "scope none has no DNS"},
		{&Handle{net: Net{Name: "p", Scope: ScopePublic, Subnet: sn}}, nil, nil, "no upstream"},
		{&Handle{net: Net{Name: "p", Scope: ScopePublic, Subnet: sn}}, []netip.AddrPort{{}}, nil, "invalid upstream"},
		{&Handle{net: Net{Name: "p", Scope: ScopePublic, Subnet: sn}}, up, []DNSOption{WithDNSTimeout(0)}, "must be positive"},
		{&Handle{net: Net{Name: "p", Scope: ScopePublic, Subnet: sn}}, up, []DNSOption{WithDNSMaxQueries(0)}, "must be positive"},
	} {
		f, err := ServeDNS(ctx, tt.h, tt.ups, tt.opts...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ServeDNS: %v, want an error with %q", err, tt.want)
		}
		if f != nil {
			f.Close()
		}
	}
}
