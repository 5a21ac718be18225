// Package ns is sbx's namespace driver: it runs a resolved sandbox spec with
// Linux namespaces instead of a libkrun microVM, for hosts without KVM.
//
// The isolation is weaker than a VM's, so the driver is only ever chosen
// explicitly. It needs root (or CAP_SYS_ADMIN), overlayfs and, for resource
// limits, cgroups; [Preflight] checks all three and says how to fix what is
// missing.
//
// # Two processes
//
// The parent side, [Start], writes the sandbox's init layer (below), then
// runs a binary that calls RunChild ("sbx-init __ns" for the ns driver —
// sbx-init starts in a fraction of sbx's time —, sbx __ns, or a test
// binary) in fresh mount, PID, UTS, IPC and network namespaces, places it in its
// cgroups, writes the [Config] as JSON on its stdin and waits for a
// handshake on a report pipe (fd 3 in the child). The child side,
// [RunChild], builds the root filesystem in its private mount namespace,
// pivots into it and executes sbx's in-sandbox init, cmd/sbx-init (package
// runtime/sbxinit, shared with the krun driver), which stays PID 1 and runs
// the payload. Every step that can fail, the child's and the init's,
// reports a structured [StepError] ("mount overlay: ...", "init: user ...")
// back to the parent before the payload starts, so configuration errors
// surface from Start and not as a dead sandbox.
//
// # Root filesystem
//
// The layers are overlayfs lower directories (top first on the mount
// line), the sandbox's UpperDir and WorkDir its writable layer. Layer
// directories hold whiteouts in overlayfs form already (0:0 character devices
// and trusted.overlay.opaque xattrs), so the kernel applies them. The mount
// data of mount(2) is limited to one page; when the lowerdir list would not
// fit, the child chdirs to the layers' longest common parent directory and
// names them relative to it, the way Docker's overlay2 driver shortens its
// lowerdir option. When even that does not fit (or a path holds a comma or
// colon, which the option syntax cannot carry), the overlay is mounted with
// the new mount API instead, one fsconfig "lowerdir+" per layer (Linux 6.8
// and later); older kernels get an error naming the limit.
//
// Everything is mounted inside the child's private mount namespace on a
// tmpfs laid over a fixed, otherwise unused directory (/run/sbx-ns); the
// host's mount table never sees any of it, and nothing has to be unmounted
// when the sandbox ends. Bind mount targets are resolved inside the new root
// (openat2 RESOLVE_IN_ROOT), so a symlink in an image cannot redirect a mount
// onto the host.
//
// # Init
//
// Start writes the init layer into [Config.InitLayer]: the sbx-init program
// at /.sbx/init ([Config.Init], or sbxinit.FindInit: $SBX_INIT, or sbx-init
// next to sbx; a hard link, kept while it is one) and its run config at
// /.sbx/config.json — the payload (argv, environment, working directory,
// user), host name, rlimits, the /etc/hosts and resolv.conf contents
// ([Config.Network]), the control socket and the confinement below. The
// layer is the topmost lower layer of the overlay, so no image hides it.
// With [Config.ControlDir] the child binds that host directory at /.sbx/ctl
// before pivot_root, and the init listens there: the host dials
// ControlDir/init.sock (sbxinit.DialUnix) for exec, copies, status and
// signals, exactly as with the krun driver.
//
// The child then executes /.sbx/init with every capability (it mounts, and
// serves exec), stdin /dev/null, no environment and the report pipe. The
// init sets the host name, writes /etc/hosts, resolv.conf and hostname in a
// tmpfs and binds them over the image's, applies the rlimits, resolves the
// user in the image's /etc/passwd, hides /.sbx, starts the payload from a
// thread confined as below, reaps every orphan, forwards SIGTERM, SIGINT,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and the job control signals to it, and
// reports "started" and, when the payload ends, its exact status (an exit
// code of 143 is not a SIGTERM) on the report pipe, then exits with the
// payload's code or 128+signal. When it exits the kernel kills whatever
// else still runs in the namespace.
//
// # Cgroups
//
// The sandbox is placed in CgroupParent/Name in each hierarchy before its
// configuration is even read: cgroup v2 where /sys/fs/cgroup is a cgroup2
// file system offering the cpu and memory controllers, else every v1
// hierarchy of the cpu, memory, pids, devices and freezer controllers. A
// relative CgroupParent is resolved under the cgroup the calling process
// runs in, so a sandbox never escapes the limits sbx itself runs under; an absolute one ("/sbx/shop") starts at the hierarchy's root.
// The limits are cpu and memory as configured, a pids limit (Config.Pids,
// [DefaultPids] when 0) and a device allow-list: /dev/null, zero, full,
// random, urandom, tty, console, ptmx and /dev/pts (v1: the devices
// controller; v2: a BPF_PROG_TYPE_CGROUP_DEVICE program, assembled by hand
// and loaded once per process). When no cgroup is usable the sandbox runs
// without limits and [Process.Warnings] says why.
//
// # Confinement
//
// What the payload, and every process exec'd through the control socket,
// runs under, as in Docker's and podman's defaults (see runtime/isotest for
// the probe that compares them). The init applies the capability bounding
// set, no_new_privs and the seccomp filter to the thread it starts
// processes from; the rest is the child's:
//   - its own cgroup namespace, made once it is in its cgroups, so it sees
//     nothing above them;
//   - the root file system (every layer and the writable one) mounted
//     nodev and nosuid, on top of the device cgroup (the layers' own
//     directories are never visible inside: the old root is detached);
//   - podman's capability set (Docker's without CAP_MKNOD, CAP_NET_RAW and
//     CAP_AUDIT_WRITE), so no CAP_SYS_ADMIN; ping uses ICMP datagram
//     sockets, which every group of the sandbox may open;
//   - no_new_privs and the seccomp filter of runtime/seccomp, which denies
//     namespace creation (so no user namespace from which to mount a
//     cgroup file system), keyctl, add_key and request_key, mount, bpf,
//     module loading, reboot and the rest of what Docker denies;
//   - a session keyring of its own (joined before the init starts);
//   - runc's masked paths in /proc and /sys (kcore, keys, timer_list,
//     sched_debug, interrupts, acpi, scsi, firmware...), /proc/sys,
//     /proc/sysrq-trigger and all of /sys read-only.
//
// The directory holding the writable layer is made 0700, so no other host
// user can run a setuid file the sandbox wrote.
package ns
