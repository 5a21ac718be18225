/*
 * libkrun_standin.c — a stand-in for libkrun used only by the tests of
 * github.com/sbx-dev/sbx/krun. It is the one fake the project allows: libkrun
 * itself cannot run here (no usable KVM), so this library exports the same
 * symbols and checks every argument the way libkrun documents it, logging one
 * JSON line per call to the file named by $KRUN_STANDIN_LOG.
 *
 * Variants (compile-time):
 *   -DSTANDIN_NO_FORK_EXTRAS      upstream-like: no krun_set_overlayfs_root, krun_set_tsi_scope
 *   -DSTANDIN_NO_UPSTREAM_EXTRAS  fork-like: no krun_disable_implicit_vsock, krun_setuid,
 *                                 krun_setgid, krun_get_max_vcpus, krun_has_feature
 *   -DSTANDIN_NO_SET_EXEC         broken: lacks a required function (krun_set_exec)
 *
 * krun_start_enter writes one line to the console output file (if set), then
 * exits at once with $KRUN_STANDIN_EXIT if that is set, else waits for SIGTERM
 * and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_CTX 4096
#define MAX_ARRAY 4096
#define MAX_STR 65536

#define EXPORT __attribute__((visibility("default")))

enum net_mode { NET_TSI = 0, NET_PASST, NET_GVPROXY };

struct ctx {
	bool used;
	bool root_set;
	bool exec_set;
	bool vsock_disabled;
	enum net_mode net;
	char *console;
	char *exec_path;
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

/* ---- the API ------------------------------------------------------------ */

EXPORT int32_t krun_set_log_level(uint32_t level)
{
	BEGIN("krun_set_log_level");
	c_u64(&c, "level", level);
	RET(level > 5 ? -EINVAL : 0);
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
	free(k->console);
	free(k->exec_path);
	memset(k, 0, sizeof *k);
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
	if (!ok_str(root_path))
		RET(-EINVAL);
	if (k->root_set)
		RET(-EEXIST);
	k->root_set = true;
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
	NEED_CTX();
	if (c_port_map && arr_len(c_port_map) < 0)
		RET(-EINVAL);
	if (k->net == NET_PASST)
		RET(-ENOTSUP);
	for (int i = 0; c_port_map && c_port_map[i]; i++)
		if (!ok_port_entry(c_port_map[i]))
			RET(-EINVAL);
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
	k->exec_set = true;
	free(k->exec_path);
	k->exec_path = strdup(c_exec_path);
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
	if (k->vsock_disabled)
		RET(-ENOTSUP);
	RET(0);
}

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
	/* NET and BLK built in, nothing else. */
	RET(feature == 0 || feature == 1 ? 1 : 0);
}
#endif

static void on_sigterm(int sig)
{
	(void)sig;
	_exit(0);
}

EXPORT int32_t krun_start_enter(uint32_t ctx_id)
{
	BEGIN("krun_start_enter");
	CTX();
	NEED_CTX();
	if (!k->root_set || !k->exec_set)
		RET(-EINVAL);
	char *console = k->console ? strdup(k->console) : NULL;
	char *exec_path = strdup(k->exec_path);
	/* The context is consumed. */
	free(k->console);
	free(k->exec_path);
	memset(k, 0, sizeof *k);
	c_end(&c, 0);

	if (console) {
		int fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			char line[512];
			int n = snprintf(line, sizeof line, "standin: guest started %s\n", exec_path);
			ssize_t w = write(fd, line, (size_t)n);
			(void)w;
			close(fd);
		}
	}
	const char *code = getenv("KRUN_STANDIN_EXIT");
	if (code && *code)
		_exit(atoi(code));

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
