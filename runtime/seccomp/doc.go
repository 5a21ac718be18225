// Package seccomp is sbx's default seccomp filter for sandboxes that run with
// Linux namespaces: the syscall allow-list of Docker's and podman's default
// profile, for a payload without CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_BOOT,
// CAP_SYS_MODULE and the other capabilities the ns driver drops.
//
// Everything not listed fails with EPERM; clone3 fails with ENOSYS so that
// C libraries fall back to clone, whose flags a seccomp filter can inspect:
// clone is allowed only without namespace flags, so a payload cannot create a
// user namespace (and with it mount a cgroup file system or undo its
// confinement). keyctl, add_key and request_key are not listed, so the
// kernel keyrings are out of reach, as in Docker.
//
// The filter is assembled with github.com/elastic/go-seccomp-bpf (pure Go)
// into a classic BPF program; [Install] loads it with no_new_privs on the
// calling thread.
//
// The package is Linux only.
package seccomp
