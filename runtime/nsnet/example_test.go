package nsnet_test

import (
	"context"
	"log"
	"net/netip"

	"github.com/sbx-dev/sbx/runtime/nsnet"
)

// A supervisor sets up the sandbox's network, hands the namespace to the
// payload, publishes its ports, and tears everything down at the end.
func Example() {
	ctx := context.Background()
	h, err := nsnet.Setup(ctx, nsnet.Net{
		Project: "shop", Name: "db", Scope: nsnet.ScopeGroup, Group: "backend",
		Subnet: netip.MustParsePrefix("10.88.0.0/24"), IP: netip.MustParseAddr("10.88.0.10"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer nsnet.Teardown(ctx, "shop", "db") // also what `sbx down` runs after a crash

	// The payload's child joins h.NetNSPath() with setns(2).
	_ = h.NetNSPath()

	// port { host = 5432, guest = 5432 }
	px, err := nsnet.ListenProxy(ctx, "tcp", "127.0.0.1:5432", h.Dialer("tcp", 5432))
	if err != nil {
		log.Fatal(err) // *nsnet.PortInUseError names the process holding the port
	}
	go px.Serve(ctx)
}

// A sandbox of scope public or any resolves names through a forwarder on its
// gateway; the others get a resolv.conf without name servers.
func ExampleServeDNS() {
	ctx := context.Background()
	h, err := nsnet.Setup(ctx, nsnet.Net{Project: "shop", Name: "web", Scope: nsnet.ScopePublic})
	if err != nil {
		log.Fatal(err)
	}
	defer nsnet.Teardown(ctx, "shop", "web")

	var served *nsnet.Handle // nil: no forwarder, the host's reachable servers
	if f, err := nsnet.ServeDNS(ctx, h, nsnet.DNSUpstreams()); err != nil {
		log.Print(err) // port 53 taken by another DNS server, say
	} else {
		defer f.Close() // before Teardown
		served = h
	}
	// The payload's /etc/resolv.conf:
	_ = nsnet.ResolvConf(nsnet.ScopePublic, served)
}
