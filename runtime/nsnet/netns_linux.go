//go:build linux

package nsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Within runs fn on an OS thread that has joined the network namespace at
// path. Sockets fn creates belong to that namespace and keep working after
// it returns. Goroutines that fn starts run in the host's namespace. The
// thread goes back to the Go scheduler only once it is back in its former
// namespace; otherwise it ends with fn.
func Within(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	return onThread(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join network namespace %s: %w", path, err)
		}
		return fn()
	})
}

// onThread runs fn on a locked OS thread, lets fn change the thread's
// network namespace, and restores it afterwards. A thread that cannot be
// restored stays locked, so Go discards it (or, for the main thread, parks
// it for good) instead of running other goroutines in the wrong namespace.
// Going back matters for the main thread: /proc/self/net shows its
// namespace.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open the current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// DialNetNS connects to address from inside the network namespace at path,
// e.g. to 127.0.0.1:port of a sandbox with scope none.
func DialNetNS(ctx context.Context, path, network, address string) (net.Conn, error) {
	var c net.Conn
	err := Within(path, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// createNetNS creates a network namespace and bind-mounts it at path.
func createNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	f.Close()
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	})
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// removeNetNS unmounts and removes a namespace file; a missing one is fine.
// The namespace itself ends once no process is in it any more.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	// The project's directory goes when it is empty; ENOTEMPTY is fine.
	_ = os.Remove(filepath.Dir(path))
	return nil
}

// listNetNS lists the namespace files of a project ("" = every project).
func listNetNS(project string) ([]string, error) {
	var projects []string
	if project != "" {
		projects = []string{project}
	} else {
		ents, err := os.ReadDir(nsDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			projects = append(projects, e.Name())
		}
	}
	var out []string
	for _, p := range projects {
		ents, err := os.ReadDir(filepath.Join(nsDir, p))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, e := range ents {
			out = append(out, filepath.Join(nsDir, p, e.Name()))
		}
	}
	return out, nil
}

// anonNetNS creates a network namespace that lives as long as the returned
// file descriptor is open.
func anonNetNS() (int, error) {
	fd := -1
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		var err error
		fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}
