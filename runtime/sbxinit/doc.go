// Package sbxinit is sbx's in-sandbox init, shared by both drivers, and the client of its
// control socket.
//
// The init is a small static program, cmd/sbx-init (built and installed next to sbx by
// `make build`/`make install`; [FindInit] locates it). It is a separate binary rather than
// a mode of sbx because it is copied or linked into every sandbox's root and runs on every
// start: about 3.5 MB against sbx's 15 MB, and sbx's package initialisation alone takes
// about 3 ms, most of the 5 ms the init may take from its exec to its payload's.
//
// # The init layer
//
// The runtime resolves a sandbox into a [Config] and writes it with [WriteConfig] into a
// directory that becomes the topmost read-only lower layer of the sandbox's root (above the
// image's layers, below the writable layer), with the program placed by [InstallInit]:
//
//	<layer>/.sbx/init         the sbx-init binary (static, no cgo): a hard link, or a 0555 copy
//	<layer>/.sbx/config.json  the run config, mode 0600 (it holds the environment)
//	<layer>/.sbx/shares/TAG/  empty mount points, one per virtiofs share
//	<layer>/.sbx/run/         mount point of the init's tmpfs (hosts, resolv.conf, hostname)
//	<layer>/.sbx/ctl/         mount point for the host directory holding the unix socket
//
// Nothing of the config travels as arguments or environment: libkrun writes those on the
// kernel command line without escaping. The init takes no arguments: krun_set_exec(ctx,
// "/.sbx/init", argv {NULL}, envp {NULL}) — an empty envp, not a NULL one, which libkrun
// documents as "collect the VMM process's own environment" (sbx's, onto the command line).
//
//	layer := filepath.Join(rs.Dir, "init")             // e.g. .sbx/sandboxes/web/init
//	bin, err := sbxinit.FindInit()                     // $SBX_INIT, or sbx-init next to sbx
//	err = sbxinit.InstallInit(layer, bin)              // hard link, else copy
//	cfg := sbxinit.FromSpec(rs)                        // process, host name, rlimits, address,
//	                                                   // peers, unix control socket, HideDir
//	cfg.Mounts = mounts                                // per driver, see below
//	cfg.Network.Gateway, cfg.Network.MTU = gw, 1500    // when the scope has a gateway
//	cfg.Network.DNS = []netip.Addr{gw}                 // the DNS forwarder
//	cfg.Control.VsockPort = 1024                       // krun only
//	cfg.Security = &sbxinit.Security{...}              // ns: capabilities, seccomp
//	err = sbxinit.WriteConfig(layer, cfg)
//
// # What the init does
//
// In order: read the config; mount [Config.Mounts] (a kernel file system already mounted at
// its target is skipped, so libkrun's own init or the ns driver may have mounted it); set
// the host name; bring lo up and configure [Network] with netlink (the address, replacing
// any other of its family but link-local ones, e.g. from libkrun's DHCP; MTU, link up,
// default route via the gateway when there is one, an on-link route first when the gateway
// is outside the subnet; a missing interface is waited for up to 2 s); write hosts,
// resolv.conf and hostname into a tmpfs at RunDir and bind them read-only over /etc's (the
// image and its writable layer are not changed); apply the rlimits to itself (inherited);
// resolve the user in the image's /etc/passwd and /etc/group; start the thread that starts
// processes, confined by [Security]; hide /.sbx under an empty tmpfs; start the payload as
// its child (PATH looked up in the payload's own environment, HOME from passwd when unset,
// the working directory created); then listen on the control socket (the unix one through a
// descriptor of its directory kept from before /.sbx was hidden), so the payload starts
// without waiting for it: a client retries its dial until the socket answers.
//
// It then reaps every child (orphans included; it makes itself a child subreaper when it
// is not PID 1), forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
// SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPWR and SIGALRM to the payload, and when the
// payload ends delivers its [ExitStatus] to control clients blocked in [Client.Wait] (up to
// 2 s) and exits with the payload's code, or 128+signal. Its own failures are one line on
// its stderr (the console), "sbx-init: <what>: <why>", and exit codes [ExitSetup] (125),
// [ExitNotExecutable] (126) or [ExitNotFound] (127), as Docker's.
//
// # Mounts per driver
//
// krun: the VM has nothing mounted yet (or libkrun's init mounted some; those are skipped):
//
//	{Type: Proc, Target: "/proc"}, {Type: Sysfs, Target: "/sys"},
//	{Type: Devtmpfs, Target: "/dev"}, {Type: Devpts, Target: "/dev/pts"},
//	{Type: Tmpfs, Target: "/dev/shm", Options: []string{"mode=1777"}},
//	{Type: Virtiofs, Source: "m0", Target: "/data", ReadOnly: true}, ...  // one per share
//
// A virtiofs share's tag is what krun_add_virtiofs was given. The stand-in libkrun, which
// has no virtio, binds the shared host directory at <root>/.sbx/shares/TAG instead; the init
// sees that directory is a mount point and binds it onto the target (read-only when asked),
// so the config is the same with the real libkrun and the stand-in.
//
// ns: the ns driver keeps building the root (overlay of the image layers, the init layer and
// the writable layer), binding host paths (they are only visible before pivot_root), masking
// /proc and making its minimal /dev, then pivots and execs /.sbx/init as PID 1 without
// dropping capabilities: the init needs them for its mounts, and confines what it starts
// itself through [Security] (Docker's default capabilities without CAP_MKNOD, as the ns
// driver keeps today, and a seccomp filter when there is one). Its mounts are then
// typically only tmpfs ones, or none; a [Dev] mount gives a minimal /dev if the driver
// prefers the init to make it. The ns driver also hands the init its report pipe
// ([Config.ReportFD] = 3): the init writes [Event]s there — started, a setup error with its
// exit code, the payload's exact [ExitStatus] — so the supervisor tells an exit code of 143
// from a SIGTERM and setup errors surface from the driver's Start.
//
// # Network
//
// Scope none: Network{} (lo only) — or Network{DNS: ...} for a resolv.conf. Other scopes:
//
//	&sbxinit.Network{Interface: "eth0", Address: netip.PrefixFrom(spec.Network.IP, spec.Network.Subnet.Bits()),
//		Gateway: gw /* invalid for group-only scopes */, MTU: 1500, DNS: []netip.Addr{gw},
//		Hosts: []sbxinit.Host{{Name: "db", Addr: ...}} /* spec.Network.Peers */}
//
// The interface is the krun tap device's guest side (virtio-net, eth0) or the ns veth end in
// the sandbox's network namespace; configuring an address already set by the host side is
// harmless (replace semantics).
//
// # Control socket
//
// ns: bind the host directory <sandbox dir>/ctl (mode 0700) at <root>/.sbx/ctl before
// pivot_root; Control.UnixPath = "/.sbx/ctl/init.sock"; the host dials
// <sandbox dir>/ctl/init.sock. Only peers outside the sandbox's PID namespace (SO_PEERCRED
// pid 0) are served, and /.sbx is hidden from the payload, so nothing in the sandbox can
// reach it.
//
// krun: Control.VsockPort = P, and krun_add_vsock_port2(ctx, P, "<sandbox dir>/ctl/init.sock",
// listen=true): libkrun listens on that host path and forwards each connection to the
// guest's port P; only CID 2 (the host) is served. Setting Control.UnixPath as well (same
// name, "/.sbx/ctl/init.sock") lets the stand-in libkrun, which has no vsock, bind
// "<sandbox dir>/ctl" at <root>/.sbx/ctl so that the host path is the same in both cases; an
// endpoint that cannot listen is fatal only when the other cannot either.
//
// Either way the runtime speaks to it with the client:
//
//	c, err := sbxinit.DialUnix(ctx, filepath.Join(spec.Dir, "ctl", sbxinit.ControlSocket))
//	// or: c, err := sbxinit.Dial(ctx, conn) over any net.Conn
//	defer c.Close()
//	st, err := c.Status(ctx)                         // starting, running (pid), exited, failed
//	st, err = c.Wait(ctx)                            // blocks until the payload ends: st.Exit
//	err = c.Signal(ctx, syscall.SIGTERM)             // to the payload
//	code, err := c.Exec(ctx, sbxinit.ExecRequest{Argv: []string{"sh"}, TTY: true,
//		Size: sbxinit.WindowSize{Rows: 24, Cols: 80}, Resize: resizes, Signals: sigs},
//		os.Stdin, os.Stdout, os.Stderr)              // code: exit code or 128+signal
//	err = c.CopyFrom(ctx, "/etc/app", tarWriter)     // tar of the path, named from its base
//	err = c.CopyTo(ctx, "/srv", tarReader)           // extract into an existing directory
//
// A failed exec start is a *[RemoteError] with Code 127 (not found), 126 (not executable) or
// 125. Requests on one connection run one after the other; open another connection for a
// concurrent exec. Cancelling ctx during an exec closes the connection, and the init kills
// the process. A supervisor that wants the payload's exit status from the init (krun, where
// the VMM's own exit code may not carry it) keeps a connection blocked in Wait.
//
// # Protocol
//
// Frames: one type byte, a big-endian uint32 length, the payload (at most 1 MiB). A request
// is a JSON frame; the reply is a JSON frame; exec and copies then stream data frames (see
// the constants in proto.go). The first request on a connection is a version handshake
// ([ProtocolVersion]), done by Dial.
package sbxinit
