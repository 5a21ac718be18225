package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// testRegistry is a registry on loopback, behind a handler that counts
// blob fetches and can fail them.
type testRegistry struct {
	name string
	host string

	mu     sync.Mutex
	counts map[string]int
	// fail, when set, is consulted for every blob GET; returning true
	// makes the handler send half the body and cut the connection.
	fail func(digest string) bool
}

var blobPathRE = regexp.MustCompile(`/blobs/(sha256:[0-9a-f]{64})$`)

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request, next http.Handler) {
	m := blobPathRE.FindStringSubmatch(req.URL.Path)
	if m == nil || req.Method != http.MethodGet {
		next.ServeHTTP(w, req)
		return
	}
	r.mu.Lock()
	r.counts[m[1]]++
	fail := r.fail
	r.mu.Unlock()
	if fail != nil && fail(m[1]) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		panic(http.ErrAbortHandler)
	}
	next.ServeHTTP(w, req)
}

func (r *testRegistry) count(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[digest]
}

func (r *testRegistry) resetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts = map[string]int{}
}

func (r *testRegistry) setFail(f func(string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

// registries returns the in-process registry and, when SBX_TEST_REGISTRY
// names one (Debian's docker-registry on loopback), that one too.
func registries(t testing.TB) []*testRegistry {
	out := []*testRegistry{newRegistry(t, "in-process", registry.New(registry.Logger(log.New(io.Discard, "", 0))))}
	if ext := os.Getenv("SBX_TEST_REGISTRY"); ext != "" {
		u, err := url.Parse("http://" + ext)
		if err != nil {
			t.Fatalf("SBX_TEST_REGISTRY=%q: %v", ext, err)
		}
		out = append(out, newRegistry(t, "docker-registry", httputil.NewSingleHostReverseProxy(u)))
	}
	return out
}

// forEachRegistry runs f against every registry variant.
func forEachRegistry(t *testing.T, f func(t *testing.T, reg *testRegistry)) {
	for _, reg := range registries(t) {
		t.Run(reg.name, func(t *testing.T) { f(t, reg) })
	}
}

func newRegistry(t testing.TB, name string, h http.Handler) *testRegistry {
	r := &testRegistry{name: name, counts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.ServeHTTP(w, req, h) }))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push writes img to the registry under repo:tag and returns the reference.
func (r *testRegistry) push(t testing.TB, repo string, img v1.Image) string {
	t.Helper()
	// Repositories are unique per test: the external registry persists.
	ref := fmt.Sprintf("%s/%s/%s:latest", r.host, strings.ToLower(sanitize(t.Name())), repo)
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

func sanitize(s string) string {
	return regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(s, "-")
}

// tentry is one entry of a test layer.
type tentry struct {
	name, link string
	typ        byte
	body       string
	mode       int64
	uid, gid   int
	xattrs     map[string]string
	major      int64
	minor      int64
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func dirE(name string, mode int64) tentry { return tentry{name: name, typ: tar.TypeDir, mode: mode} }
func fileE(name, body string, mode int64) tentry {
	return tentry{name: name, typ: tar.TypeReg, body: body, mode: mode}
}
func symlinkE(name, target string) tentry {
	return tentry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlinkE(name, target string) tentry {
	return tentry{name: name, typ: tar.TypeLink, link: target}
}

func tarBytes(t testing.TB, entries []tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: testTime, Format: tar.FormatPAX, Devmajor: e.major, Devminor: e.minor}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds a linux/GOARCH image from layers with a config.
func imageOf(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func busybox(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox-static is needed (apt-get install -y busybox-static): %v", err)
	}
	return string(b)
}

// The test image: a busybox base, then a layer with whiteouts of both
// kinds and hard links, over files of the base.
func baseLayer(t testing.TB) []tentry {
	return []tentry{
		dirE("bin/", 0o755),
		fileE("bin/busybox", busybox(t), 0o755),
		symlinkE("bin/sh", "busybox"),
		symlinkE("bin/ls", "/bin/busybox"),
		dirE("etc/", 0o755),
		fileE("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
		{name: "etc/shadow", typ: tar.TypeReg, body: "root:*:1::::::\n", mode: 0o640, gid: 42},
		{name: "bin/su", typ: tar.TypeReg, body: "not really su\n", mode: 0o4755},
		dirE("home/", 0o755),
		{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		{name: "home/user/notes", typ: tar.TypeReg, body: "mine\n", mode: 0o600, uid: 1000, gid: 1000,
			xattrs: map[string]string{"user.sbx.test": "kept", "trusted.overlay.opaque": "y"}},
		dirE("data/", 0o755),
		fileE("data/a", "version 1\n", 0o644),
		hardlinkE("data/b", "data/a"),
		dirE("opaque/", 0o755),
		fileE("opaque/old1", "old\n", 0o644),
		fileE("opaque/old2", "old\n", 0o644),
		fileE("gone", "soon gone\n", 0o644),
		dirE("ro/", 0o555),
		fileE("ro/file", "read-only dir\n", 0o444),
		{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
	}
}

func topLayer() []tentry {
	return []tentry{
		fileE(".wh.gone", "", 0o644),
		dirE("opaque/", 0o755),
		fileE("opaque/.wh..wh..opq", "", 0o644),
		fileE("opaque/new", "new\n", 0o644),
		dirE("data/", 0o755),
		fileE("data/a", "version 2\n", 0o644),
		hardlinkE("data/a2", "data/a"),
		fileE("data/.wh.b", "", 0o644),
		fileE("data/c", "c\n", 0o600),
		hardlinkE("data/c2", "data/c"),
		hardlinkE("data/c3", "data/c2"),
	}
}

var testConfig = v1.Config{
	Entrypoint:   []string{"/bin/sh", "-c"},
	Cmd:          []string{"echo hello"},
	Env:          []string{"PATH=/bin", "GREETING=hi"},
	WorkingDir:   "/home/user",
	User:         "1000:1000",
	ExposedPorts: map[string]struct{}{"8080/tcp": {}},
}

func testImage(t testing.TB) v1.Image {
	return imageOf(t, testConfig, layerOf(t, tarBytes(t, baseLayer(t))), layerOf(t, tarBytes(t, topLayer())))
}

// treeOf describes every entry under dir, one line each, for comparison:
// type, permissions, content digest or link target, owner when root,
// and which entries share an inode.
func treeOf(t testing.TB, dir string, owners bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		mode := fs.FileMode(st.Mode & 0o777)
		if st.Mode&syscall.S_ISUID != 0 {
			mode |= fs.ModeSetuid
		}
		var desc string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			desc = "dir " + mode.String()
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc = fmt.Sprintf("file %s %x", mode.String(), sha256.Sum256(b))[:30]
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " =" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc = "symlink " + target
		case unix.S_IFCHR:
			desc = fmt.Sprintf("char %d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
		case unix.S_IFIFO:
			desc = "fifo " + mode.String()
		default:
			desc = fmt.Sprintf("mode %o", st.Mode)
		}
		if owners {
			desc += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %s: got %q, want %q", what, k, got[k], want[k])
		}
	}
}

func fileDesc(mode fs.FileMode, body string) string {
	return fmt.Sprintf("file %s %x", mode.String(), sha256.Sum256([]byte(body)))[:30]
}

func xattr(t testing.TB, p, attr string) (string, bool) {
	t.Helper()
	b := make([]byte, 256)
	n, err := unix.Lgetxattr(p, attr, b)
	if err != nil {
		return "", false
	}
	return string(b[:n]), true
}

func openStore(t testing.TB, root string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leftovers lists what an interrupted or refused pull might leave behind.
func leftovers(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, g := range []string{"tmp/*", "layers/tmp-*"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		out = append(out, m...)
	}
	return out
}
