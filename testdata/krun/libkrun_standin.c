/*
 * libkrun_standin.c — a stand-in for libkrun used only by the tests of
 * github.com/sbx-dev/sbx. It is the one fake the project allows: libkrun
 * itself cannot run here (no usable KVM), so this library exports the same
 * symbols and checks every argument the way libkrun documents it, logging one
 * JSON line per call to the file named by $KRUN_STANDIN_LOG.
 *
 * Variants (compile-time):
 *   (none)                        everything: the fork's additions and upstream's, NET built in
 *   -DSTANDIN_UPSTREAM            upstream libkrun 1.19 (also -DSTANDIN_NO_FORK_EXTRAS): no
 *                                 krun_set_overlayfs_root, krun_set_tsi_scope
 *   -DSTANDIN_NO_NET              built without NET: krun_has_feature(NET) is 0 and
 *                                 krun_add_net_tap fails with -ENOTSUP, as libkrun's stub does
 *   -DSTANDIN_FORK                microsandbox's fork as microsandbox-core 0.2.6 declares it
 *                                 (also -DSTANDIN_NO_UPSTREAM_EXTRAS): none of upstream's
 *                                 krun_disable_implicit_vsock, krun_setuid, krun_setgid,
 *                                 krun_get_max_vcpus, krun_has_feature, krun_add_net_tap,
 *                                 krun_add_vsock, krun_add_vsock_port2
 *   -DSTANDIN_NO_SET_EXEC         broken: lacks a required function (krun_set_exec)
 *
 * krun_start_enter writes "standin: guest started EXEC" to the console output
 * file (if set). Then:
 *   - $KRUN_STANDIN_ABORT=kvm: prints what libkrun prints without KVM (a Rust
 *     panic) on stderr and aborts the process, as libkrun does;
 *   - $KRUN_STANDIN_EXIT=N: exits at once with N;
 *   - $KRUN_STANDIN_RUN=1 (run mode): runs the configured guest for real
 *     without KVM, see run_guest below;
 *   - otherwise waits for SIGTERM and exits 0.
 *
 * Run mode enters the root it was given (the directory of krun_set_root, or an
 * overlay of the krun_set_overlayfs_root layers, mounted in a mount namespace
 * of its own), with new PID, mount, UTS and IPC namespaces, and a new network
 * namespace unless the guest keeps TSI (TSI is emulated by sharing the host's
 * network; each krun_set_port_map entry HOST:GUEST listens on the host's TCP
 * port HOST once the guest listens on GUEST, and relays to it on loopback). In
 * the guest root it:
 *   - binds each virtio-fs share at /.sbx/shares/TAG (the sbx init binds from
 *     there instead of mounting virtiofs);
 *   - gives the guest /dev (tmpfs with null, zero, full, random, urandom, tty,
 *     devpts, shm), /proc and /sys, as libkrun's init does, and lo up;
 *   - for each krun_add_net_tap NIC, opens the host tap as libkrun would and
 *     relays its frames to a tap eth0, eth1, … in the guest's network
 *     namespace, with the MAC given (the guest configures it);
 *   - for each krun_add_vsock_port2 port P with listen, listens on the host
 *     socket path and relays each connection to the guest unix socket
 *     /.sbx/ctl/vsock-P.sock (there is no AF_VSOCK without a VM);
 *   - applies the rlimits and workdir, sends the console to the console
 *     output file, and execs the exec path with argv and the environment.
 * The guest's exit status becomes the process's (128+N for a signal N);
 * SIGTERM and SIGINT are forwarded to it.
 */
#if defined(STANDIN_UPSTREAM) && !defined(STANDIN_NO_FORK_EXTRAS)
#define STANDIN_NO_FORK_EXTRAS
#endif
#if defined(STANDIN_FORK) && !defined(STANDIN_NO_UPSTREAM_EXTRAS)
#define STANDIN_NO_UPSTREAM_EXTRAS
#endif
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_CTX 4096
#define MAX_ARRAY 4096
#define MAX_STR 65536
#define MAX_DEV 16

#define EXPORT __attribute__((visibility("default")))

enum net_mode { NET_TSI = 0, NET_PASST, NET_GVPROXY };

struct share {
	char *tag, *path;
};

struct tap {
	char *name;
	uint8_t mac[6];
};

struct vport {
	uint32_t port;
	char *path;
	bool listen;
};

struct ctx {
	bool used;
	bool root_set;
	bool exec_set;
	bool vsock_disabled;
	bool vsock_added;
	enum net_mode net;
	char *console;
	char *exec_path;
	/* Kept for run mode. */
	char *root;
	char **layers;
	char **argv;
	char **envp; /* NULL: the environment at krun_set_exec time */
	char **rlimits;
	char *workdir;
	struct share shares[MAX_DEV];
	int nshares;
	struct tap taps[MAX_DEV];
	int ntaps;
	struct vport vports[MAX_DEV];
	int nvports;
	char **port_map;
};

static struct ctx ctxs[MAX_CTX];
static int next_ctx = 1;

/* ---- JSON log ---------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void b_put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void b_puts(struct buf *b, const char *s) { b_put(b, s, strlen(s)); }

static void b_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	b_put(b, tmp, (size_t)n);
}

static void b_str(struct buf *b, const char *s)
{
	if (!s) {
		b_puts(b, "null");
		return;
	}
	b_puts(b, "\"");
	for (size_t i = 0; s[i] && i < MAX_STR; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			b_put(b, e, 2);
		} else if (c < 0x20) {
			b_printf(b, "\\u%04x", c);
		} else {
			b_put(b, (const char *)&c, 1);
		}
	}
	b_puts(b, "\"");
}

/* Returns the number of entries, or -1 if the array is not NULL-terminated
 * within MAX_ARRAY entries. */
static int arr_len(const char *const *a)
{
	if (!a)
		return 0;
	for (int i = 0; i < MAX_ARRAY; i++)
		if (!a[i])
			return i;
	return -1;
}

static void b_arr(struct buf *b, const char *const *a)
{
	if (!a) {
		b_puts(b, "null");
		return;
	}
	int n = arr_len(a);
	b_puts(b, "[");
	for (int i = 0; i < (n < 0 ? 8 : n); i++) {
		if (i)
			b_puts(b, ",");
		b_str(b, a[i]);
	}
	if (n < 0)
		b_puts(b, ",\"...unterminated\"");
	b_puts(b, "]");
}

struct call {
	struct buf b;
	int nargs;
};

static void c_begin(struct call *c, const char *fn)
{
	memset(c, 0, sizeof *c);
	b_puts(&c->b, "{\"func\":");
	b_str(&c->b, fn);
	b_puts(&c->b, ",\"args\":{");
}

static void c_key(struct call *c, const char *k)
{
	if (c->nargs++)
		b_puts(&c->b, ",");
	b_str(&c->b, k);
	b_puts(&c->b, ":");
}

static void c_u64(struct call *c, const char *k, uint64_t v)
{
	c_key(c, k);
	b_printf(&c->b, "%llu", (unsigned long long)v);
}

static void c_i64(struct call *c, const char *k, int64_t v)
{
	c_key(c, k);
	b_printf(&c->b, "%lld", (long long)v);
}

static void c_bool(struct call *c, const char *k, bool v)
{
	c_key(c, k);
	b_puts(&c->b, v ? "true" : "false");
}

static void c_str(struct call *c, const char *k, const char *v)
{
	c_key(c, k);
	b_str(&c->b, v);
}

static void c_arr(struct call *c, const char *k, const char *const *v)
{
	c_key(c, k);
	b_arr(&c->b, v);
}

static int32_t c_end(struct call *c, int32_t ret)
{
	b_printf(&c->b, "},\"ret\":%d}\n", ret);
	const char *path = getenv("KRUN_STANDIN_LOG");
	if (path && *path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			ssize_t w = write(fd, c->b.p, c->b.len);
			(void)w;
			close(fd);
		}
	}
	free(c->b.p);
	return ret;
}

/* ---- validation helpers ------------------------------------------------ */

static struct ctx *get_ctx(uint32_t id)
{
	if (id == 0 || id >= MAX_CTX || !ctxs[id].used)
		return NULL;
	return &ctxs[id];
}

/* A required string: non-NULL, non-empty, bounded. */
static bool ok_str(const char *s)
{
	return s && *s && strnlen(s, MAX_STR) < MAX_STR;
}

/* An array argument that must be present and NULL-terminated. */
static bool ok_arr(const char *const *a)
{
	return a && arr_len(a) >= 0;
}

static bool parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

static bool ok_port(uint64_t p) { return p >= 1 && p <= 65535; }

/* "host_port:guest_port" */
static bool ok_port_entry(const char *s)
{
	uint64_t h, g;
	if (!parse_u64(&s, &h) || *s++ != ':' || !parse_u64(&s, &g) || *s)
		return false;
	return ok_port(h) && ok_port(g);
}

/* "RESOURCE=RLIM_CUR:RLIM_MAX" */
static bool ok_rlimit_entry(const char *s)
{
	uint64_t r, cur, max;
	if (!parse_u64(&s, &r) || *s++ != '=' || !parse_u64(&s, &cur) || *s++ != ':' ||
	    !parse_u64(&s, &max) || *s)
		return false;
	return r < 16 && cur <= max;
}

__attribute__((unused)) static bool ok_ipv4(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1;
}

__attribute__((unused)) static bool ok_cidr(const char *s)
{
	char tmp[64];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof tmp)
		return false;
	memcpy(tmp, s, (size_t)(slash - s));
	tmp[slash - s] = 0;
	const char *p = slash + 1;
	uint64_t bits;
	if (!parse_u64(&p, &bits) || *p || bits > 32)
		return false;
	return ok_ipv4(tmp);
}

#define BEGIN(name)          \
	struct call c;       \
	c_begin(&c, name)
#define RET(v) return c_end(&c, (v))
#define CTX()                          \
	c_u64(&c, "ctx", ctx_id);      \
	struct ctx *k = get_ctx(ctx_id)
#define NEED_CTX()           \
	if (!k)              \
	RET(-ENOENT)

static char **strv_dup(const char *const *a)
{
	if (!a)
		return NULL;
	int n = arr_len(a);
	char **r = calloc((size_t)n + 1, sizeof *r);
	for (int i = 0; i < n; i++)
		r[i] = strdup(a[i]);
	return r;
}

static void strv_free(char **a)
{
	for (int i = 0; a && a[i]; i++)
		free(a[i]);
	free(a);
}

static void ctx_reset(struct ctx *k)
{
	free(k->console);
	free(k->exec_path);
	free(k->root);
	free(k->workdir);
	strv_free(k->layers);
	strv_free(k->argv);
	strv_free(k->envp);
	strv_free(k->rlimits);
	strv_free(k->port_map);
	for (int i = 0; i < k->nshares; i++) {
		free(k->shares[i].tag);
		free(k->shares[i].path);
	}
	for (int i = 0; i < k->ntaps; i++)
		free(k->taps[i].name);
	for (int i = 0; i < k->nvports; i++)
		free(k->vports[i].path);
	memset(k, 0, sizeof *k);
}

/* libkrun puts argv and env on the kernel command line inside double quotes,
 * without escaping: such a value breaks the command line. */
static bool ok_cmdline(const char *const *a)
{
	for (int i = 0; a && a[i]; i++)
		if (strpbrk(a[i], "\"\n"))
			return false;
	return true;
}

static bool add_share(struct ctx *k, const char *tag, const char *path)
{
	if (k->nshares >= MAX_DEV)
		return false;
	for (int i = 0; i < k->nshares; i++)
		if (!strcmp(k->shares[i].tag, tag))
			return false;
	k->shares[k->nshares].tag = strdup(tag);
	k->shares[k->nshares].path = strdup(path);
	k->nshares++;
	return true;
}

static bool log_level_set;

/* ---- the API ------------------------------------------------------------ */

EXPORT int32_t krun_set_log_level(uint32_t level)
{
	BEGIN("krun_set_log_level");
	c_u64(&c, "level", level);
	if (level > 5)
		RET(-EINVAL);
	/* libkrun installs its logger once per process; a second call fails
	 * (or, in some releases, panics). */
	if (log_level_set)
		RET(-EEXIST);
	log_level_set = true;
	RET(0);
}

EXPORT int32_t krun_create_ctx(void)
{
	BEGIN("krun_create_ctx");
	if (next_ctx >= MAX_CTX)
		RET(-ENOMEM);
	int id = next_ctx++;
	memset(&ctxs[id], 0, sizeof ctxs[id]);
	ctxs[id].used = true;
	RET(id);
}

EXPORT int32_t krun_free_ctx(uint32_t ctx_id)
{
	BEGIN("krun_free_ctx");
	CTX();
	NEED_CTX();
	ctx_reset(k);
	RET(0);
}

EXPORT int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib)
{
	BEGIN("krun_set_vm_config");
	CTX();
	c_u64(&c, "num_vcpus", num_vcpus);
	c_u64(&c, "ram_mib", ram_mib);
	NEED_CTX();
	if (num_vcpus == 0 || ram_mib == 0)
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_set_root(uint32_t ctx_id, const char *root_path)
{
	BEGIN("krun_set_root");
	CTX();
	c_str(&c, "root_path", root_path);
	NEED_CTX();
	if (!ok_str(root_path) || root_path[0] != '/')
		RET(-EINVAL);
	if (k->root_set)
		RET(-EEXIST);
	k->root_set = true;
	k->root = strdup(root_path);
	RET(0);
}

#ifndef STANDIN_NO_FORK_EXTRAS
EXPORT int32_t krun_set_overlayfs_root(uint32_t ctx_id, const char *const *root_layers)
{
	BEGIN("krun_set_overlayfs_root");
	CTX();
	c_arr(&c, "root_layers", root_layers);
	NEED_CTX();
	if (!ok_arr(root_layers) || arr_len(root_layers) == 0)
		RET(-EINVAL);
	for (int i = 0; root_layers[i]; i++)
		if (!ok_str(root_layers[i]))
			RET(-EINVAL);
	if (k->root_set)
		RET(-EEXIST);
	k->root_set = true;
	k->layers = strv_dup(root_layers);
	RET(0);
}
#endif

EXPORT int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only)
{
	BEGIN("krun_add_disk");
	CTX();
	c_str(&c, "block_id", block_id);
	c_str(&c, "disk_path", disk_path);
	c_bool(&c, "read_only", read_only);
	NEED_CTX();
	if (!ok_str(block_id) || !ok_str(disk_path))
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_add_virtiofs(uint32_t ctx_id, const char *c_tag, const char *c_path)
{
	BEGIN("krun_add_virtiofs");
	CTX();
	c_str(&c, "c_tag", c_tag);
	c_str(&c, "c_path", c_path);
	NEED_CTX();
	if (!ok_str(c_tag) || !ok_str(c_path))
		RET(-EINVAL);
	if (!add_share(k, c_tag, c_path))
		RET(-EEXIST);
	RET(0);
}

EXPORT int32_t krun_add_virtiofs2(uint32_t ctx_id, const char *c_tag, const char *c_path, uint64_t shm_size)
{
	BEGIN("krun_add_virtiofs2");
	CTX();
	c_str(&c, "c_tag", c_tag);
	c_str(&c, "c_path", c_path);
	c_u64(&c, "shm_size", shm_size);
	NEED_CTX();
	if (!ok_str(c_tag) || !ok_str(c_path))
		RET(-EINVAL);
	if (!add_share(k, c_tag, c_path))
		RET(-EEXIST);
	RET(0);
}

EXPORT int32_t krun_set_passt_fd(uint32_t ctx_id, int fd)
{
	BEGIN("krun_set_passt_fd");
	CTX();
	c_i64(&c, "fd", fd);
	NEED_CTX();
	if (fd < 0)
		RET(-EINVAL);
	if (k->net != NET_TSI)
		RET(-EEXIST);
	k->net = NET_PASST;
	RET(0);
}

EXPORT int32_t krun_set_gvproxy_path(uint32_t ctx_id, char *c_path)
{
	BEGIN("krun_set_gvproxy_path");
	CTX();
	c_str(&c, "c_path", c_path);
	NEED_CTX();
	if (!ok_str(c_path))
		RET(-EINVAL);
	if (k->net != NET_TSI)
		RET(-EEXIST);
	k->net = NET_GVPROXY;
	RET(0);
}

EXPORT int32_t krun_set_net_mac(uint32_t ctx_id, uint8_t *const c_mac)
{
	BEGIN("krun_set_net_mac");
	CTX();
	c_key(&c, "c_mac");
	if (c_mac)
		b_printf(&c.b, "\"%02x:%02x:%02x:%02x:%02x:%02x\"", c_mac[0], c_mac[1], c_mac[2], c_mac[3],
			 c_mac[4], c_mac[5]);
	else
		b_puts(&c.b, "null");
	NEED_CTX();
	if (!c_mac)
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_set_port_map(uint32_t ctx_id, const char *const *c_port_map)
{
	BEGIN("krun_set_port_map");
	CTX();
	c_arr(&c, "c_port_map", c_port_map);
	if (!c_port_map) {
		/* libkrun dereferences it: the VMM dies. */
		c_end(&c, -EFAULT);
		fprintf(stderr, "standin: krun_set_port_map(NULL) dereferences NULL in libkrun\n");
		abort();
	}
	NEED_CTX();
	if (arr_len(c_port_map) < 0)
		RET(-EINVAL);
	if (k->net == NET_PASST)
		RET(-ENOTSUP);
	for (int i = 0; c_port_map && c_port_map[i]; i++)
		if (!ok_port_entry(c_port_map[i]))
			RET(-EINVAL);
	strv_free(k->port_map);
	k->port_map = strv_dup(c_port_map);
	RET(0);
}

#ifndef STANDIN_NO_FORK_EXTRAS
EXPORT int32_t krun_set_tsi_scope(uint32_t ctx_id, const char *c_ip, const char *c_subnet, uint8_t scope)
{
	BEGIN("krun_set_tsi_scope");
	CTX();
	c_str(&c, "c_ip", c_ip);
	c_str(&c, "c_subnet", c_subnet);
	c_u64(&c, "scope", scope);
	NEED_CTX();
	if (scope > 3)
		RET(-EINVAL);
	if ((c_ip && !ok_ipv4(c_ip)) || (c_subnet && !ok_cidr(c_subnet)))
		RET(-EINVAL);
	if (k->net != NET_TSI || k->vsock_disabled)
		RET(-ENOTSUP);
	RET(0);
}
#endif

EXPORT int32_t krun_set_gpu_options(uint32_t ctx_id, uint32_t virgl_flags)
{
	BEGIN("krun_set_gpu_options");
	CTX();
	c_u64(&c, "virgl_flags", virgl_flags);
	NEED_CTX();
	if (virgl_flags >= (1u << 11))
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_set_gpu_options2(uint32_t ctx_id, uint32_t virgl_flags, uint64_t shm_size)
{
	BEGIN("krun_set_gpu_options2");
	CTX();
	c_u64(&c, "virgl_flags", virgl_flags);
	c_u64(&c, "shm_size", shm_size);
	NEED_CTX();
	if (virgl_flags >= (1u << 11))
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_set_snd_device(uint32_t ctx_id, bool enable)
{
	BEGIN("krun_set_snd_device");
	CTX();
	c_bool(&c, "enable", enable);
	NEED_CTX();
	RET(0);
}

EXPORT int32_t krun_set_rlimits(uint32_t ctx_id, const char *const *c_rlimits)
{
	BEGIN("krun_set_rlimits");
	CTX();
	c_arr(&c, "c_rlimits", c_rlimits);
	NEED_CTX();
	if (c_rlimits && arr_len(c_rlimits) < 0)
		RET(-EINVAL);
	for (int i = 0; c_rlimits && c_rlimits[i]; i++)
		if (!ok_rlimit_entry(c_rlimits[i]))
			RET(-EINVAL);
	strv_free(k->rlimits);
	k->rlimits = strv_dup(c_rlimits);
	RET(0);
}

EXPORT int32_t krun_set_smbios_oem_strings(uint32_t ctx_id, const char *const *c_oem_strings)
{
	BEGIN("krun_set_smbios_oem_strings");
	CTX();
	c_arr(&c, "c_oem_strings", c_oem_strings);
	NEED_CTX();
	if (!ok_arr(c_oem_strings))
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_set_workdir(uint32_t ctx_id, const char *c_workdir_path)
{
	BEGIN("krun_set_workdir");
	CTX();
	c_str(&c, "c_workdir_path", c_workdir_path);
	NEED_CTX();
	if (!ok_str(c_workdir_path))
		RET(-EINVAL);
	free(k->workdir);
	k->workdir = strdup(c_workdir_path);
	RET(0);
}

#ifndef STANDIN_NO_SET_EXEC
EXPORT int32_t krun_set_exec(uint32_t ctx_id, const char *c_exec_path, const char *const *c_argv,
			     const char *const *c_envp)
{
	BEGIN("krun_set_exec");
	CTX();
	c_str(&c, "c_exec_path", c_exec_path);
	c_arr(&c, "c_argv", c_argv);
	/* NULL envp means "inherit the caller's environment": log it as null
	 * rather than expanding the test process's environment. */
	c_arr(&c, "c_envp", c_envp);
	NEED_CTX();
	if (!ok_str(c_exec_path))
		RET(-EINVAL);
	if ((c_argv && arr_len(c_argv) < 0) || (c_envp && arr_len(c_envp) < 0))
		RET(-EINVAL);
	if (strpbrk(c_exec_path, "\" \n") || !ok_cmdline(c_argv) || !ok_cmdline(c_envp))
		RET(-EINVAL);
	k->exec_set = true;
	free(k->exec_path);
	k->exec_path = strdup(c_exec_path);
	strv_free(k->argv);
	k->argv = strv_dup(c_argv);
	strv_free(k->envp);
	k->envp = strv_dup(c_envp ? c_envp : (const char *const *)environ);
	RET(0);
}
#endif

EXPORT int32_t krun_set_env(uint32_t ctx_id, const char *const *c_envp)
{
	BEGIN("krun_set_env");
	CTX();
	c_arr(&c, "c_envp", c_envp);
	NEED_CTX();
	if (c_envp && arr_len(c_envp) < 0)
		RET(-EINVAL);
	if (!ok_cmdline(c_envp))
		RET(-EINVAL);
	strv_free(k->envp);
	k->envp = strv_dup(c_envp ? c_envp : (const char *const *)environ);
	RET(0);
}

EXPORT int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *c_filepath)
{
	BEGIN("krun_set_tee_config_file");
	CTX();
	c_str(&c, "c_filepath", c_filepath);
	NEED_CTX();
	if (!ok_str(c_filepath))
		RET(-EINVAL);
	RET(0);
}

EXPORT int32_t krun_add_vsock_port(uint32_t ctx_id, uint32_t port, const char *c_filepath)
{
	BEGIN("krun_add_vsock_port");
	CTX();
	c_u64(&c, "port", port);
	c_str(&c, "c_filepath", c_filepath);
	NEED_CTX();
	if (!ok_str(c_filepath))
		RET(-EINVAL);
	if (k->vsock_disabled && !k->vsock_added)
		RET(-ENOTSUP);
	if (k->nvports >= MAX_DEV)
		RET(-ENOSPC);
	k->vports[k->nvports].port = port;
	k->vports[k->nvports].path = strdup(c_filepath);
	k->vports[k->nvports].listen = false;
	k->nvports++;
	RET(0);
}

#ifndef STANDIN_NO_UPSTREAM_EXTRAS
EXPORT int32_t krun_add_vsock_port2(uint32_t ctx_id, uint32_t port, const char *c_filepath, bool listen)
{
	BEGIN("krun_add_vsock_port2");
	CTX();
	c_u64(&c, "port", port);
	c_str(&c, "c_filepath", c_filepath);
	c_bool(&c, "listen", listen);
	NEED_CTX();
	if (!ok_str(c_filepath) || c_filepath[0] != '/' || strlen(c_filepath) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		RET(-EINVAL);
	if (k->vsock_disabled && !k->vsock_added)
		RET(-ENOTSUP);
	if (k->nvports >= MAX_DEV)
		RET(-ENOSPC);
	for (int i = 0; i < k->nvports; i++)
		if (k->vports[i].port == port)
			RET(-EEXIST);
	k->vports[k->nvports].port = port;
	k->vports[k->nvports].path = strdup(c_filepath);
	k->vports[k->nvports].listen = listen;
	k->nvports++;
	RET(0);
}

EXPORT int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features)
{
	BEGIN("krun_add_vsock");
	CTX();
	c_u64(&c, "tsi_features", tsi_features);
	NEED_CTX();
	if (tsi_features > 3)
		RET(-EINVAL);
	/* Only after krun_disable_implicit_vsock, and only one device. */
	if (!k->vsock_disabled)
		RET(-EINVAL);
	if (k->vsock_added)
		RET(-EEXIST);
	k->vsock_added = true;
	RET(0);
}

EXPORT int32_t krun_add_net_tap(uint32_t ctx_id, char *c_tap_name, uint8_t *const c_mac, uint32_t features,
				uint32_t flags)
{
	BEGIN("krun_add_net_tap");
	CTX();
	c_str(&c, "c_tap_name", c_tap_name);
	c_key(&c, "c_mac");
	if (c_mac)
		b_printf(&c.b, "\"%02x:%02x:%02x:%02x:%02x:%02x\"", c_mac[0], c_mac[1], c_mac[2], c_mac[3],
			 c_mac[4], c_mac[5]);
	else
		b_puts(&c.b, "null");
	c_u64(&c, "features", features);
	c_u64(&c, "flags", flags);
	NEED_CTX();
#ifdef STANDIN_NO_NET
	RET(-ENOTSUP);
#endif
	if (!ok_str(c_tap_name) || strlen(c_tap_name) >= IFNAMSIZ || !c_mac)
		RET(-EINVAL);
	/* Multicast or all-zero MACs are not unicast NIC addresses. */
	if ((c_mac[0] & 1) || !(c_mac[0] | c_mac[1] | c_mac[2] | c_mac[3] | c_mac[4] | c_mac[5]))
		RET(-EINVAL);
	/* Known virtio-net feature bits (NET_FEATURE_*) and flags (VFKIT, DHCP). */
	if (features & ~((1u << 0) | (1u << 1) | (1u << 7) | (1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 14)))
		RET(-EINVAL);
	if (flags & ~3u)
		RET(-EINVAL);
	if (k->net != NET_TSI && k->ntaps == 0)
		RET(-EEXIST);
	if (k->ntaps >= MAX_DEV)
		RET(-ENOSPC);
	for (int i = 0; i < k->ntaps; i++)
		if (!strcmp(k->taps[i].name, c_tap_name))
			RET(-EEXIST);
	k->taps[k->ntaps].name = strdup(c_tap_name);
	memcpy(k->taps[k->ntaps].mac, c_mac, 6);
	k->ntaps++;
	RET(0);
}
#endif

EXPORT int32_t krun_get_shutdown_eventfd(uint32_t ctx_id)
{
	BEGIN("krun_get_shutdown_eventfd");
	CTX();
	NEED_CTX();
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	RET(fd < 0 ? -errno : fd);
}

EXPORT int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath)
{
	BEGIN("krun_set_console_output");
	CTX();
	c_str(&c, "c_filepath", c_filepath);
	NEED_CTX();
	if (!ok_str(c_filepath))
		RET(-EINVAL);
	free(k->console);
	k->console = strdup(c_filepath);
	RET(0);
}

#ifndef STANDIN_NO_UPSTREAM_EXTRAS
EXPORT int32_t krun_disable_implicit_vsock(uint32_t ctx_id)
{
	BEGIN("krun_disable_implicit_vsock");
	CTX();
	NEED_CTX();
	k->vsock_disabled = true;
	RET(0);
}

EXPORT int32_t krun_setuid(uint32_t ctx_id, uid_t uid)
{
	BEGIN("krun_setuid");
	CTX();
	c_u64(&c, "uid", uid);
	NEED_CTX();
	RET(0);
}

EXPORT int32_t krun_setgid(uint32_t ctx_id, gid_t gid)
{
	BEGIN("krun_setgid");
	CTX();
	c_u64(&c, "gid", gid);
	NEED_CTX();
	RET(0);
}

EXPORT int32_t krun_get_max_vcpus(void)
{
	BEGIN("krun_get_max_vcpus");
	RET(16);
}

EXPORT int32_t krun_has_feature(uint64_t feature)
{
	BEGIN("krun_has_feature");
	c_u64(&c, "feature", feature);
	if (feature > 11 || feature == 3 || feature == 5)
		RET(-EINVAL);
#ifdef STANDIN_NO_NET
	/* BLK built in, nothing else. */
	RET(feature == 1 ? 1 : 0);
#else
	/* NET and BLK built in, nothing else. */
	RET(feature == 0 || feature == 1 ? 1 : 0);
#endif
}
#endif

static void on_sigterm(int sig)
{
	(void)sig;
	_exit(0);
}

/* ---- run mode ----------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "standin: %s: %s\n", what, strerror(errno));
	_exit(125);
}

static void mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static volatile pid_t guest_pid;

static void forward_signal(int sig)
{
	if (guest_pid > 0)
		kill(guest_pid, sig);
}

struct relay {
	int from, to;
	bool frames; /* tap: one read is one frame */
};

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	char buf[65536];
	for (;;) {
		ssize_t n = read(r->from, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(r->to, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				if (r->frames)
					break; /* drop the frame, as a NIC would */
				goto out;
			}
			off += w;
		}
	}
out:
	if (!r->frames) {
		/* Each direction holds its own descriptors (dups): the connection
		 * closes when both directions are done. */
		shutdown(r->to, SHUT_WR);
		close(r->from);
		close(r->to);
	}
	free(r);
	return NULL;
}

static void start_relay(int from, int to, bool frames)
{
	struct relay *r = malloc(sizeof *r);
	r->from = from;
	r->to = to;
	r->frames = frames;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &at, relay_thread, r);
	pthread_attr_destroy(&at);
}

struct vsock_listener {
	int fd;
	uint32_t port;
	char dir[4200]; /* the guest's /.sbx/ctl, from the host */
};

static void *vsock_accept_thread(void *arg)
{
	struct vsock_listener *l = arg;
	for (;;) {
		int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		/* The path can be longer than sun_path: go through the directory's fd. */
		int d = open(l->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		int g = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/vsock-%u.sock", d, l->port);
		if (d < 0 || g < 0 || connect(g, (struct sockaddr *)&sa, sizeof sa) < 0) {
			/* Nothing listens on the guest port yet: the connection is reset. */
			if (g >= 0)
				close(g);
			if (d >= 0)
				close(d);
			close(c);
			continue;
		}
		close(d);
		int c2 = dup(c), g2 = dup(g);
		start_relay(c, g, false);
		start_relay(g2, c2, false);
	}
}

struct tsi_port {
	int host, guest;
};

static bool guest_listens(int port)
{
	int g = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = g >= 0 && connect(g, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (g >= 0)
		close(g);
	return ok;
}

/* TSI, emulated: the guest shares the host's network, and a mapped host port
 * is relayed to the guest's port on loopback. As with TSI, the host port
 * listens only once the guest listens. */
static void *tsi_accept_thread(void *arg)
{
	struct tsi_port *tp = arg;
	while (!guest_listens(tp->guest))
		usleep(20000);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tp->host)};
	if (l < 0 || bind(l, (struct sockaddr *)&la, sizeof la) < 0 || listen(l, 64) < 0) {
		fprintf(stderr, "standin: listen on mapped TSI port %d: %s\n", tp->host, strerror(errno));
		return NULL;
	}
	for (;;) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		int g = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tp->guest)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (g < 0 || connect(g, (struct sockaddr *)&sa, sizeof sa) < 0) {
			if (g >= 0)
				close(g);
			close(c);
			continue;
		}
		int c2 = dup(c), g2 = dup(g);
		start_relay(c, g, false);
		start_relay(g2, c2, false);
	}
}

static int open_tap(const char *name)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void send_fd(int sock, int fd)
{
	char dummy = 0;
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	if (sendmsg(sock, &msg, 0) < 0)
		die("send tap fd");
}

static int recv_fd(int sock)
{
	char dummy;
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

static void if_up(int sock, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(sock, SIOCSIFFLAGS, &ifr);
	}
}

/* guest_main runs as PID 1 of the guest's namespaces and never returns. */
static void guest_main(struct ctx *k, const char *root, bool newnet, int fdsock, int console, pid_t parent)
{
	/* The guest dies with the VMM. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)parent;
	if (newnet) {
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if_up(s, "lo");
		for (int i = 0; i < k->ntaps; i++) {
			char name[IFNAMSIZ];
			snprintf(name, sizeof name, "eth%d", i);
			int fd = open_tap(name);
			if (fd < 0)
				die("create guest NIC");
			struct ifreq ifr;
			memset(&ifr, 0, sizeof ifr);
			snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
			ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
			memcpy(ifr.ifr_hwaddr.sa_data, k->taps[i].mac, 6);
			if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0)
				die("set guest MAC");
			send_fd(fdsock, fd);
			close(fd);
		}
		close(s);
	}
	close(fdsock);

	char p[4200];
	/* /dev as libkrun's guest has it, without the host's devices. */
	snprintf(p, sizeof p, "%s/dev", root);
	mkdirs(p);
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k") < 0)
		die("mount /dev");
	static const char *const devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
		char host[64];
		snprintf(host, sizeof host, "/dev/%s", devs[i]);
		snprintf(p, sizeof p, "%s/dev/%s", root, devs[i]);
		touch(p);
		if (mount(host, p, NULL, MS_BIND, NULL) < 0)
			die("bind device");
	}
	snprintf(p, sizeof p, "%s/dev/pts", root);
	mkdir(p, 0755);
	if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
		die("mount /dev/pts");
	snprintf(p, sizeof p, "%s/dev/ptmx", root);
	if (symlink("pts/ptmx", p) < 0)
		die("link /dev/ptmx");
	snprintf(p, sizeof p, "%s/dev/shm", root);
	mkdir(p, 01777);
	mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		snprintf(p, sizeof p, "%s/dev/%s", root, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			die("link /dev");
	}
	snprintf(p, sizeof p, "%s/proc", root);
	mkdir(p, 0555);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("mount /proc");
	snprintf(p, sizeof p, "%s/sys", root);
	mkdir(p, 0555);
	if (mount("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0)
		die("mount /sys");

	if (chdir(root) < 0)
		die("enter root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		die("detach the host's root");
	if (chdir("/") < 0)
		die("chdir /");

	for (int i = 0; k->rlimits && k->rlimits[i]; i++) {
		unsigned long long r, cur, max;
		if (sscanf(k->rlimits[i], "%llu=%llu:%llu", &r, &cur, &max) == 3) {
			struct rlimit rl = {.rlim_cur = cur, .rlim_max = max};
			if (setrlimit((int)r, &rl) < 0)
				die("setrlimit");
		}
	}
	if (k->workdir && chdir(k->workdir) < 0)
		die("chdir workdir");

	int null = open("/dev/null", O_RDONLY);
	if (null >= 0) {
		dup2(null, 0);
		if (null > 2)
			close(null);
	}
	if (console >= 0) {
		dup2(console, 1);
		dup2(console, 2);
		if (console > 2)
			close(console);
	}
	int argc = arr_len((const char *const *)k->argv);
	char **argv = calloc((size_t)argc + 2, sizeof *argv);
	argv[0] = k->exec_path;
	for (int i = 0; i < argc; i++)
		argv[i + 1] = k->argv[i];
	int envc = arr_len((const char *const *)k->envp);
	char **envp = calloc((size_t)envc + 3, sizeof *envp);
	int n = 0;
	bool home = false, term = false;
	for (int i = 0; i < envc; i++) {
		home |= !strncmp(k->envp[i], "HOME=", 5);
		term |= !strncmp(k->envp[i], "TERM=", 5);
		envp[n++] = k->envp[i];
	}
	/* What the kernel gives init, as in a libkrun guest. */
	if (!home)
		envp[n++] = "HOME=/";
	if (!term)
		envp[n++] = "TERM=linux";
	execve(k->exec_path, argv, envp);
	fprintf(stderr, "standin: exec %s: %s\n", k->exec_path, strerror(errno));
	_exit(127);
}

/* run_guest runs the configured guest for real (run mode) and never returns:
 * it exits with the guest's status. */
static void run_guest(struct ctx *k, int console)
{
	if (unshare(CLONE_NEWNS) < 0)
		die("unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("make mounts private");

	static char root[4096];
	if (k->layers) {
		/* The fork's overlay: layers lowest first, the last one writable. */
		int n = arr_len((const char *const *)k->layers);
		if (n < 2) {
			fprintf(stderr, "standin: run mode needs at least a read-only and a writable layer\n");
			_exit(125);
		}
		const char *upper = k->layers[n - 1];
		char work[4096], opts[4096];
		snprintf(work, sizeof work, "%s.standin-work", upper);
		snprintf(root, sizeof root, "%s.standin-merged", upper);
		mkdirs(work);
		mkdirs(root);
		int off = snprintf(opts, sizeof opts, "lowerdir=");
		for (int i = n - 2; i >= 0; i--)
			off += snprintf(opts + off, sizeof opts - (size_t)off, "%s%s", k->layers[i], i ? ":" : "");
		snprintf(opts + off, sizeof opts - (size_t)off, ",upperdir=%s,workdir=%s", upper, work);
		if (mount("overlay", root, "overlay", MS_NODEV, opts) < 0)
			die("mount overlay layers");
	} else {
		snprintf(root, sizeof root, "%s", k->root);
		/* pivot_root wants a mount point. */
		if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
			die("bind root");
	}
	char p[4200];
	for (int i = 0; i < k->nshares; i++) {
		snprintf(p, sizeof p, "%s/.sbx/shares/%s", root, k->shares[i].tag);
		mkdirs(p);
		if (mount(k->shares[i].path, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			die("bind virtio-fs share");
	}

	/* TSI is emulated by the host's network; without it the guest has its own. */
	bool newnet = k->ntaps > 0 || k->vsock_disabled;
	int hostfds[MAX_DEV];
	for (int i = 0; i < k->ntaps; i++) {
		hostfds[i] = open_tap(k->taps[i].name);
		if (hostfds[i] < 0)
			die("open tap device");
	}
	for (int i = 0; i < k->nvports; i++) {
		if (!k->vports[i].listen)
			continue;
		int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", k->vports[i].path);
		unlink(sa.sun_path);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 64) < 0)
			die("listen on vsock port socket");
		struct vsock_listener *vl = calloc(1, sizeof *vl);
		vl->fd = l;
		vl->port = k->vports[i].port;
		snprintf(vl->dir, sizeof vl->dir, "%s/.sbx/ctl", root);
		pthread_t t;
		pthread_create(&t, NULL, vsock_accept_thread, vl);
		pthread_detach(t);
	}

	for (int i = 0; !newnet && k->port_map && k->port_map[i]; i++) {
		unsigned h, g;
		if (sscanf(k->port_map[i], "%u:%u", &h, &g) != 2 || h == g)
			continue; /* the same port needs no relay: the guest listens on it */
		struct tsi_port *tp = calloc(1, sizeof *tp);
		tp->host = (int)h;
		tp->guest = (int)g;
		pthread_t t;
		pthread_create(&t, NULL, tsi_accept_thread, tp);
		pthread_detach(t);
	}

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair");
	pid_t parent = getpid();
	long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (newnet ? CLONE_NEWNET : 0);
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		die("clone the guest");
	if (pid == 0) {
		close(sp[0]);
		guest_main(k, root, newnet, sp[1], console, parent);
	}
	guest_pid = pid;
	close(sp[1]);
	if (console >= 0)
		close(console);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_signal;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (int i = 0; i < k->ntaps; i++) {
		int g = recv_fd(sp[0]);
		if (g < 0)
			break; /* the guest died; its status says why */
		start_relay(hostfds[i], g, true);
		start_relay(g, hostfds[i], true);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("wait for the guest");
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

EXPORT int32_t krun_start_enter(uint32_t ctx_id)
{
	BEGIN("krun_start_enter");
	CTX();
	NEED_CTX();
	if (!k->root_set || !k->exec_set)
		RET(-EINVAL);
	/* The context is consumed: keep it for run mode, free the slot. */
	static struct ctx run;
	run = *k;
	memset(k, 0, sizeof *k);
	c_end(&c, 0);

	int console = -1;
	if (run.console) {
		console = open(run.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (console >= 0) {
			char line[512];
			int n = snprintf(line, sizeof line, "standin: guest started %s\n", run.exec_path);
			ssize_t w = write(console, line, (size_t)n);
			(void)w;
		}
	}
	const char *abrt = getenv("KRUN_STANDIN_ABORT");
	if (abrt && !strcmp(abrt, "kvm")) {
		fprintf(stderr, "thread '<unnamed>' panicked at src/vmm/src/linux/vstate.rs:1224:53:\n"
				"called `Result::unwrap()` on an `Err` value: Kvm(Error(2)): Failed to open /dev/kvm\n"
				"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
		abort();
	}
	const char *code = getenv("KRUN_STANDIN_EXIT");
	if (code && *code)
		_exit(atoi(code));
	const char *runmode = getenv("KRUN_STANDIN_RUN");
	if (runmode && !strcmp(runmode, "1"))
		run_guest(&run, console);
	if (console >= 0)
		close(console);

	/* Go's runtime requires SA_ONSTACK for handlers installed by C code. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigterm;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;)
		pause();
}
