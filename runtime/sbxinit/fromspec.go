package sbxinit

import (
	"net/netip"
	"sort"

	"github.com/sbx-dev/sbx/runtime/spec"
)

// DefaultInterface is the sandbox's network interface: libkrun's first virtio-net device,
// and the name the ns driver gives its veth end.
const DefaultInterface = "eth0"

// FromSpec is the part of a sandbox's run config that follows from its resolved spec alone:
// the process, host name and rlimits; for scopes other than none the address on
// DefaultInterface and the group's peers in /etc/hosts; the unix control socket at
// ControlDir/ControlSocket; /.sbx hidden. The driver adds its mounts (kernel file systems,
// shares), the gateway, MTU and DNS servers, its Security, and on krun the vsock port.
func FromSpec(rs *spec.RunSpec) Config {
	cfg := Config{
		Version: Version,
		Process: Process{
			Argv: rs.Process.Argv,
			Env:  rs.Process.Env,
			Cwd:  rs.Process.Workdir,
			User: User{Spec: rs.Process.User},
		},
		Hostname: rs.Process.Hostname,
		Control:  Control{UnixPath: ControlDir + "/" + ControlSocket},
		HideDir:  true,
	}
	for _, r := range rs.Resources.Rlimits {
		cfg.Rlimits = append(cfg.Rlimits, Rlimit{Name: r.Name, Resource: r.Resource, Soft: r.Soft, Hard: r.Hard})
	}
	n := &Network{}
	if rs.Network.Scope != spec.ScopeNone && rs.Network.IP.IsValid() {
		n.Interface = DefaultInterface
		n.Address = netip.PrefixFrom(rs.Network.IP, rs.Network.Subnet.Bits())
	}
	names := make([]string, 0, len(rs.Network.Peers))
	for name := range rs.Network.Peers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n.Hosts = append(n.Hosts, Host{Name: name, Addr: rs.Network.Peers[name]})
	}
	cfg.Network = n
	return cfg
}
