package sbxinit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel file system magics (statfs f_type), to skip what is mounted already.
var fsMagic = map[MountType]int64{
	Proc:     unix.PROC_SUPER_MAGIC,
	Sysfs:    unix.SYSFS_MAGIC,
	Devtmpfs: unix.TMPFS_MAGIC,
	Dev:      unix.TMPFS_MAGIC,
	Devpts:   unix.DEVPTS_SUPER_MAGIC,
	Mqueue:   0x19800202, // MQUEUE_MAGIC
	Cgroup2:  unix.CGROUP2_SUPER_MAGIC,
}

// doMount performs one configured mount.
func doMount(m Mount) error {
	if magic, ok := fsMagic[m.Type]; ok && mountedAs(m.Target, magic) {
		return nil
	}
	if err := ensureDir(m.Target); err != nil {
		return err
	}
	var ro uintptr
	if m.ReadOnly {
		ro = unix.MS_RDONLY
	}
	data := strings.Join(m.Options, ",")
	const hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	switch m.Type {
	case Proc:
		return unix.Mount("proc", m.Target, "proc", hardened|ro, data)
	case Sysfs:
		return unix.Mount("sysfs", m.Target, "sysfs", hardened|ro, data)
	case Devtmpfs:
		return unix.Mount("devtmpfs", m.Target, "devtmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|ro, data)
	case Devpts:
		if data == "" {
			data = "newinstance,ptmxmode=0666,mode=0620,gid=5"
		}
		return unix.Mount("devpts", m.Target, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC|ro, data)
	case Mqueue:
		return unix.Mount("mqueue", m.Target, "mqueue", hardened|ro, data)
	case Cgroup2:
		return unix.Mount("cgroup2", m.Target, "cgroup2", hardened|ro, data)
	case Tmpfs:
		return unix.Mount("tmpfs", m.Target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|ro, data)
	case Dev:
		return minimalDev(m.Target)
	case Bind:
		return bind(m.Source, m.Target, m.ReadOnly)
	case Virtiofs:
		share := path.Join(ShareDir, m.Source)
		if isMountPoint(share) {
			return bind(share, m.Target, m.ReadOnly)
		}
		if err := unix.Mount(m.Source, m.Target, "virtiofs", unix.MS_NOSUID|unix.MS_NODEV|ro, data); err != nil {
			return fmt.Errorf("virtiofs share %q: %w", m.Source, err)
		}
		return nil
	}
	return fmt.Errorf("unknown mount type %q", m.Type)
}

// bind binds src onto target, read-only (recursively) when asked. A file source gets a file
// target.
func bind(src, target string, ro bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		if err := ensureFile(target); err != nil {
			return err
		}
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if !ro {
		return nil
	}
	// MS_RDONLY on a bind needs a remount; mount_setattr makes every submount read-only too.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err = unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, attr)
	if errors.Is(err, unix.ENOSYS) {
		err = unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	if err != nil {
		return fmt.Errorf("make read-only: %w", err)
	}
	return nil
}

// minimalDev gives the sandbox a /dev without the host's devices.
func minimalDev(target string) error {
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := path.Join(target, d.name)
		// The init's umask is 0 while it sets up: the mode is exact.
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	for _, sub := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir(path.Join(target, sub), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", path.Join(target, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("%s/pts: %w", target, err)
	}
	if err := unix.Mount("shm", path.Join(target, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("%s/shm: %w", target, err)
	}
	// POSIX message queues of the sandbox's own IPC namespace; optional.
	_ = unix.Mount("mqueue", path.Join(target, "mqueue"), "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	for _, l := range [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}} {
		if err := os.Symlink(l[0], path.Join(target, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// mountedAs says whether p is a mount point of the file system with that magic.
func mountedAs(p string, magic int64) bool {
	var st unix.Statfs_t
	if unix.Statfs(p, &st) != nil || int64(st.Type) != magic {
		return false
	}
	return isMountPoint(p)
}

// isMountPoint says whether p is the root of a mount: its device differs from its parent's,
// or (a bind of the same file system) its mount id does.
func isMountPoint(p string) bool {
	var st, parent unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st) != nil {
		return false
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	if unix.Statx(unix.AT_FDCWD, path.Dir(p), 0, unix.STATX_MNT_ID, &parent) != nil {
		return false
	}
	return st.Dev_major != parent.Dev_major || st.Dev_minor != parent.Dev_minor || st.Mnt_id != parent.Mnt_id
}

func ensureDir(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			// Symlinks are followed as the kernel does, but never into the kernel's own
			// file systems, where a mount could unmask what the sandbox must not change.
			real, err := realPath(p)
			if err != nil {
				return err
			}
			for _, bad := range []string{"/proc", "/sys", "/dev"} {
				if real == bad || strings.HasPrefix(real, bad+"/") {
					return fmt.Errorf("mount target %s is a symlink to %s", p, real)
				}
			}
		}
		return nil
	}
	return os.MkdirAll(p, 0o755)
}

func realPath(p string) (string, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
}

func ensureFile(p string) error {
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// linkWait bounds the wait for a network interface to appear (a virtio-net device probed
// late).
const linkWait = 2 * time.Second

// configureNetwork brings lo up and configures the interface statically, over one netlink
// socket.
func configureNetwork(n *Network) error {
	if n == nil || n.Interface == "" {
		// Only lo: one ioctl, which costs less than setting up netlink (the ns driver's
		// sandboxes, whose interfaces the host configured).
		if err := loUp(); err != nil {
			return fmt.Errorf("network: bring lo up: %w", err)
		}
		return nil
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network: netlink: %w", err)
	}
	defer h.Close()
	// lo is always index 1 in a network namespace: no lookup.
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}); err != nil {
		return fmt.Errorf("network: bring lo up: %w", err)
	}
	if n == nil || n.Interface == "" {
		return nil
	}
	var link netlink.Link
	deadline := time.Now().Add(linkWait)
	for {
		link, err = h.LinkByName(n.Interface)
		if err == nil {
			break
		}
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) || time.Now().After(deadline) {
			return fmt.Errorf("network: interface %s: %w (is the sandbox's network device attached?)", n.Interface, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n.MTU != 0 && link.Attrs().MTU != n.MTU {
		if err := h.LinkSetMTU(link, n.MTU); err != nil {
			return fmt.Errorf("network: %s mtu %d: %w", n.Interface, n.MTU, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Address.Addr().AsSlice(), Mask: net.CIDRMask(n.Address.Bits(), n.Address.Addr().BitLen())}}
	// The configuration is the only one: an address something else gave the interface
	// (libkrun's own init runs DHCP since 1.18) goes.
	family := netlink.FAMILY_V4
	if n.Address.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	if old, err := h.AddrList(link, family); err == nil {
		for _, a := range old {
			if a.IP.IsLinkLocalUnicast() || a.IPNet.String() == addr.IPNet.String() {
				continue
			}
			if err := h.AddrDel(link, &a); err != nil {
				return fmt.Errorf("network: %s: remove address %s: %w", n.Interface, a.IPNet, err)
			}
		}
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("network: %s address %s: %w", n.Interface, n.Address, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: bring %s up: %w", n.Interface, err)
	}
	if n.Gateway.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.Gateway.AsSlice()}
		if !n.Address.Contains(n.Gateway) {
			// A gateway outside the subnet is reached on the link itself.
			onlink := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: hostNet(n.Gateway.AsSlice()), Scope: netlink.SCOPE_LINK}
			if err := h.RouteReplace(onlink); err != nil {
				return fmt.Errorf("network: route to gateway %s: %w", n.Gateway, err)
			}
		}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("network: default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// loUp brings lo up, unless it is.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func hostNet(ip net.IP) *net.IPNet {
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(len(ip)*8, len(ip)*8)}
}

// writeEtc writes hosts, resolv.conf and hostname into a tmpfs at RunDir and binds them over
// the image's files, so the image and its writable layer are not changed.
func writeEtc(cfg *Config) error {
	files := map[string]string{}
	if cfg.Hostname != "" {
		files["hostname"] = cfg.Hostname + "\n"
	}
	if n := cfg.Network; n != nil {
		var b strings.Builder
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		if cfg.Hostname != "" {
			if n.Address.IsValid() {
				fmt.Fprintf(&b, "%s\t%s\n", n.Address.Addr(), cfg.Hostname)
			} else {
				fmt.Fprintf(&b, "127.0.1.1\t%s\n", cfg.Hostname)
			}
		}
		for _, h := range n.Hosts {
			fmt.Fprintf(&b, "%s\t%s\n", h.Addr, h.Name)
		}
		files["hosts"] = b.String()
		if len(n.DNS) > 0 {
			var r strings.Builder
			for _, s := range n.DNS {
				fmt.Fprintf(&r, "nameserver %s\n", s)
			}
			if len(n.Search) > 0 {
				fmt.Fprintf(&r, "search %s\n", strings.Join(n.Search, " "))
			}
			files["resolv.conf"] = r.String()
		}
	}
	if len(files) == 0 {
		return nil
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return fmt.Errorf("write /etc files: %w", err)
	}
	if err := unix.Mount("sbx-run", RunDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("write /etc files: tmpfs on %s: %w", RunDir, err)
	}
	names := make([]string, 0, 3)
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		if content, ok := files[name]; ok {
			names = append(names, name)
			if err := os.WriteFile(path.Join(RunDir, name), []byte(content), 0o644); err != nil {
				return fmt.Errorf("write /etc/%s: %w", name, err)
			}
		}
	}
	// Read-only once written: the binds of its files inherit that, one call for all.
	if err := unix.Mount("", RunDir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("write /etc files: make %s read-only: %w", RunDir, err)
	}
	for _, name := range names {
		dst := "/etc/" + name
		if fi, err := os.Lstat(dst); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			// Images link resolv.conf to systemd's; replace the link in the writable layer.
			if err := os.Remove(dst); errors.Is(err, unix.EROFS) {
				continue // a read-only root (the ns driver without a writable layer) keeps it
			} else if err != nil {
				return fmt.Errorf("write %s: %w", dst, err)
			}
		}
		if err := ensureFile(dst); errors.Is(err, unix.EROFS) {
			continue // a read-only root without the file: nothing to bind over
		} else if err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
		if err := unix.Mount(path.Join(RunDir, name), dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
	}
	return nil
}
