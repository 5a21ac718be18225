//go:build linux

package nsnet

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Preflight checks what the ns driver's networking needs from the host:
// privileges, nftables with NAT and bridge filtering, bridges and veth pairs
// (tried in a throwaway network namespace, so the host is left untouched),
// and a writable net.ipv4.ip_forward.
func Preflight(ctx context.Context) []Problem {
	if !hasNetAdmin() {
		return []Problem{{Check: "privileges", Detail: "creating network namespaces, links and firewall rules needs CAP_NET_ADMIN and CAP_SYS_ADMIN",
			Fix: "run sbx as root for the ns driver, or use the krun driver", Fatal: true}}
	}
	var ps []Problem
	fd, err := anonNetNS()
	if err != nil {
		return []Problem{{Check: "network namespaces", Detail: err.Error(), Fix: "use a kernel with CONFIG_NET_NS, or the krun driver", Fatal: true}}
	}
	defer unix.Close(fd)
	if err := probeNftables(fd); err != nil {
		ps = append(ps, Problem{Check: "nftables", Detail: "nftables with NAT, reject and bridge filtering is not usable: " + err.Error(),
			Fix: "load the modules (modprobe nf_tables nft_nat nft_masq nft_reject_inet nf_tables_bridge) or use a kernel with them", Fatal: true})
	}
	if err := probeLinks(fd); err != nil {
		ps = append(ps, Problem{Check: "bridge", Detail: "cannot create a bridge and a veth pair: " + err.Error(),
			Fix: "load the modules (modprobe bridge veth)", Fatal: true})
	}
	if c := forwardDropper(nil); c != "" {
		ps = append(ps, Problem{Check: "firewall", Detail: "the forward chain " + c + " drops packets by default (Docker sets this up); it can drop sandbox traffic that sbx's own rules accept",
			Fix: "accept traffic of sbx's bridges there, e.g. iptables -I DOCKER-USER -i sbxb+ -j ACCEPT and iptables -I DOCKER-USER -o sbxb+ -j ACCEPT"})
	}
	if b, err := os.ReadFile(ipForward); err != nil || strings.TrimSpace(string(b)) == "0" {
		if f, err := os.OpenFile(ipForward, os.O_WRONLY, 0); err != nil {
			ps = append(ps, Problem{Check: "ip_forward", Detail: "net.ipv4.ip_forward is off and cannot be turned on: " + err.Error(),
				Fix: "set net.ipv4.ip_forward=1 (sysctl); until then scopes public and any have no outside access"})
		} else {
			f.Close()
		}
	}
	return ps
}

// hasNetAdmin reports whether the effective capabilities include
// CAP_NET_ADMIN and CAP_SYS_ADMIN.
func hasNetAdmin() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return os.Geteuid() == 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false
			}
			need := uint64(1)<<unix.CAP_NET_ADMIN | uint64(1)<<unix.CAP_SYS_ADMIN
			return caps&need == need
		}
	}
	return false
}

// PreflightTap checks what [SetupTap] needs: what [Preflight] checks, and
// tap devices (/dev/net/tun and the tun module), tried in a throwaway
// network namespace. The krun driver calls it before it gives a VM a tap.
func PreflightTap(ctx context.Context) []Problem {
	ps := Preflight(ctx)
	for _, p := range ps {
		if p.Fatal {
			return ps
		}
	}
	fd, err := anonNetNS()
	if err != nil {
		return append(ps, Problem{Check: "network namespaces", Detail: err.Error(), Fix: "use a kernel with CONFIG_NET_NS", Fatal: true})
	}
	defer unix.Close(fd)
	if err := probeTap(fd); err != nil {
		ps = append(ps, Problem{Check: "tap", Detail: "cannot create a tap device: " + err.Error(),
			Fix: "load the module (modprobe tun) and make sure /dev/net/tun exists (mknod /dev/net/tun c 10 200)", Fatal: true})
	}
	return ps
}

// probeTap creates a tap device in the namespace fd, which goes with it.
func probeTap(nsfd int) error {
	return onThread(func() error {
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join the probe's network namespace: %w", err)
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("sbxprobe3")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		return nil
	})
}

func probeNftables(fd int) error {
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return err
	}
	inet := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: tableName})
	post := c.AddChain(&nftables.Chain{Table: inet, Name: "postrouting", Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	c.AddRule(&nftables.Rule{Table: inet, Chain: post, Exprs: join(ipv4(), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridgePrefix+"*"), []expr.Any{&expr.Masq{}})})
	fwd := c.AddChain(&nftables.Chain{Table: inet, Name: "forward", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: inet, Chain: fwd, Exprs: join(daddrIn(netip.MustParsePrefix("10.0.0.0/8")), ctReply(), reject())})
	br := c.AddTable(&nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName})
	pre := c.AddChain(&nftables.Chain{Table: br, Name: "prerouting", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200)})
	c.AddRule(&nftables.Rule{Table: br, Chain: pre, Exprs: join(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, "x"),
		protocol(expr.CmpOpEq, unix.ETH_P_IP), load(expr.PayloadBaseNetworkHeader, 12, 4), cmp(expr.CmpOpNeq, []byte{1, 2, 3, 4}), verdict(expr.VerdictDrop, ""))})
	return c.Flush()
}

func probeLinks(fd int) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(fd))
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "sbxprobe0"}}); err != nil {
		return err
	}
	return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sbxprobe1"}, PeerName: "sbxprobe2"})
}

// forwardDropper names a forward hook chain outside sbx's tables whose
// policy is drop (an iptables-nft FORWARD chain included), or returns "".
// c is the host's nftables when nil.
func forwardDropper(c *nftables.Conn) string {
	if c == nil {
		var err error
		if c, err = nftables.New(); err != nil {
			return ""
		}
	}
	chains, err := c.ListChains()
	if err != nil {
		return ""
	}
	for _, ch := range chains {
		if ch.Table.Name == tableName || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward ||
			ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		return fmt.Sprintf("%s %s %s", familyName(ch.Table.Family), ch.Table.Name, ch.Name)
	}
	return ""
}
