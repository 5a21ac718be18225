package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layoutImage reads the one image of an OCI layout.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withFile returns img with one more layer holding name.
func withFile(t *testing.T, img v1.Image, name, content string) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeLayout writes img as the only image of a new OCI layout at dir, tagged latest.
func writeLayout(t *testing.T, dir string, img v1.Image) string {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// TestE2ENewDigestReplaces: a rebuilt local image replaces its sandboxes with the reason
// "image digest"; a registry tag that moved does so after sbx pull (never silently on a plan),
// or with up --pull.
func TestE2ENewDigestReplaces(t *testing.T) {
	_, testImage := e2eSetup(t)
	base := layoutImage(t, testImage)

	t.Run("oci-layout", func(t *testing.T) {
		p := newProject(t, `
project { driver = "ns" }
sandbox "app" {
  image   = "oci-layout:./img:latest"
  command = ["sh", "-c", "cat /version.txt; exec sleep 3600"]
  network { scope = "none" }
}
`)
		writeLayout(t, filepath.Join(p.dir, "img"), withFile(t, base, "version.txt", "v1\n"))
		p.must("up")
		before := p.ps()["app"].Digest
		if out := p.must("plan"); !strings.Contains(out, "No changes.") {
			t.Fatalf("plan right after up:\n%s", out)
		}
		d2 := writeLayout(t, filepath.Join(p.dir, "img"), withFile(t, base, "version.txt", "v2\n"))
		out := p.must("plan")
		if !strings.Contains(out, "-/+ replace sandbox.app (image digest)") || !strings.Contains(out, d2) {
			t.Fatalf("plan after the rebuild:\n%s", out)
		}
		p.must("up")
		if after := p.ps()["app"].Digest; after != d2 || after == before {
			t.Errorf("ps digest %s, want %s (was %s)", after, d2, before)
		}
		p.eventually("v2 runs", func() bool { return strings.Contains(p.must("logs", "app"), "v2") })
	})

	t.Run("registry tag moved", func(t *testing.T) {
		srv := httptest.NewServer(registry.New())
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		ref, err := name.ParseReference(host+"/test/app:1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		push := func(img v1.Image) string {
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			return d.String()
		}
		d1 := push(withFile(t, base, "version.txt", "v1\n"))
		p := newProject(t, `
project { driver = "ns" }
sandbox "app" {
  image   = "`+host+`/test/app:1"
  command = ["sh", "-c", "cat /version.txt; exec sleep 3600"]
  network { scope = "none" }
}
`)
		p.must("up")
		if got := p.ps()["app"].Digest; got != d1 {
			t.Fatalf("digest %s, want %s", got, d1)
		}
		d2 := push(withFile(t, base, "version.txt", "v2\n"))
		if out := p.must("plan"); !strings.Contains(out, "No changes.") {
			t.Fatalf("a plan reached the registry:\n%s", out)
		}
		p.must("pull")
		if out := p.must("plan"); !strings.Contains(out, "(image digest)") || !strings.Contains(out, d2) {
			t.Fatalf("plan after sbx pull:\n%s", out)
		}
		p.must("up")
		if got := p.ps()["app"].Digest; got != d2 {
			t.Errorf("digest after up %s, want %s", got, d2)
		}
		d3 := push(withFile(t, base, "version.txt", "v3\n"))
		if out := p.must("up", "--pull"); !strings.Contains(out, "(image digest)") {
			t.Fatalf("up --pull:\n%s", out)
		}
		if got := p.ps()["app"].Digest; got != d3 {
			t.Errorf("digest after up --pull %s, want %s", got, d3)
		}
	})
}

// TestE2EUnreadyIsAState: a probe that fails within its timeout leaves the sandbox unready
// (not starting forever), with the probe's reason in ps; up exits 1 and says so, and the next
// up reports it again rather than "No changes." with exit 0. A late listener makes it ready.
// An http probe means the sandbox's own port, also when it is published on another one.
func TestE2EUnreadyIsAState(t *testing.T) {
	p := newProject(t, `
project { driver = "ns" }
sandbox "web" {
  image   = "IMAGE"
  command = ["sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.1; done; exec httpd -f -p 8080 -h /etc"]
  mount {
    source = "./ctl"
    target = "/ctl"
  }
  port {
    host  = 18090
    guest = 8080
  }
  ready {
    http    = "http://localhost:8080/passwd"
    timeout = "1s"
  }
}
`)
	if err := os.Mkdir(filepath.Join(p.dir, "ctl"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := p.sbx("up")
	if r.code != 1 || !strings.Contains(r.stderr, "not ready after 1s") || strings.Contains(r.stderr, "31s") {
		t.Fatalf("up of a sandbox that is not ready: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	row := p.ps()["web"]
	if row.State != "unready" || !strings.Contains(row.Reason, "not ready after 1s") {
		t.Fatalf("ps: %+v", row)
	}
	r = p.sbx("up")
	if r.code != 1 || !strings.Contains(r.stderr, "sandbox web: not ready: http guest port 8080/passwd: not ready after 1s") {
		t.Fatalf("a second up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "ctl", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p.eventually("web ready", func() bool { return p.ps()["web"].State == "ready" })
	if r := p.sbx("up"); r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("up once ready: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if body, err := httpGet("http://127.0.0.1:18090/passwd"); err != nil || !strings.Contains(body, "root:") {
		t.Errorf("published port: %q %v", body, err)
	}
}

// A restarted or replaced sandbox keeps its IP and is reachable at once: its MAC derives from
// the IP, so the host's neighbour cache never points at a gone interface. Three restarts in a
// row each answer the first request.
func TestE2ERestartReachableAtOnce(t *testing.T) {
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := newProject(t, fmt.Sprintf(`
project { driver = "ns" }
network "lan" {
  subnet = "10.98.9.0/24"
}
sandbox "web" {
  image   = "IMAGE"
  command = ["httpd", "-f", "-p", "8080", "-h", "/srv"]
  mount {
    source    = %q
    target    = "/srv"
    read_only = true
  }
  port {
    host  = %d
    guest = 8080
  }
  network {
    scope = "group"
    group = network.lan
  }
  ready {
    http    = "http://web:8080/index.html"
    timeout = "5s"
  }
}
# A second sandbox on the group keeps its bridge, and the host's neighbour cache, alive
# across web's restarts.
sandbox "client" {
  image   = "IMAGE"
  command = ["sleep", "3600"]
  network {
    scope = "group"
    group = network.lan
  }
}
`, site, port))
	p.must("up")
	defer p.sbx("down")
	for i := 0; i < 3; i++ {
		if r := p.sbx("restart", "web"); r.code != 0 {
			t.Fatalf("restart %d: exit %d\n%s%s", i+1, r.code, r.stdout, r.stderr)
		}
		if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || body != "hello\n" {
			t.Fatalf("restart %d: first request: %q, %v", i+1, body, err)
		}
	}
}
