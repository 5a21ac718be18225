package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sandboxfileForExport = `variable "token" {
  type      = string
  default   = "t0ken"
  sensitive = true
}

network "lan" {
  subnet = "10.91.0.0/24"
}

sandbox "db" {
  image = "docker.io/library/postgres:16"
  env   = { POSTGRES_PASSWORD = var.token }

  network {
    scope = "group"
    group = network.lan
  }

  ready {
    tcp = 5432
  }
}

sandbox "api" {
  image   = "ghcr.io/acme/api:1"
  env     = { DB = "${sandbox.db.ip}:5432" }
  restart = "always"

  port {
    host  = 48125
    guest = 8080
  }

  network {
    scope = "public"
    group = network.lan
  }
}
`

// TestExportKubernetes: manifests on stdout, or one file per sandbox in -o DIR, never
// overwritten without --force; --runtime-class and --volumes.
func TestExportKubernetes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Sandboxfile": sandboxfileForExport})

	out, errs, code := runIn(t, dir, "export", "kubernetes")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	for _, want := range []string{"kind: RuntimeClass", "kind: Deployment", "kind: Pod", "kind: Service", "kind: NetworkPolicy", "kind: Secret", "runtimeClassName: krun", "value: db:5432", "name: wait-for-db"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "t0ken\n") && !strings.Contains(out, "POSTGRES_PASSWORD: t0ken") {
		t.Error("the sensitive value is inline outside the Secret")
	}
	if strings.Count(out, "t0ken") != 1 {
		t.Errorf("the sensitive value appears %d times", strings.Count(out, "t0ken"))
	}

	if _, errs, code := runIn(t, dir, "export", "k8s", "-o", "k8s"); code != 0 || !strings.Contains(errs, "Wrote 3 manifest files into k8s") {
		t.Fatalf("-o: %d %s", code, errs)
	}
	for _, f := range []string{"00-runtimeclass.yaml", "db.yaml", "api.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, "k8s", f)); err != nil {
			t.Error(err)
		}
	}
	if _, errs, code := runIn(t, dir, "export", "kubernetes", "-o", "k8s"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("second -o: %d %s", code, errs)
	}
	if _, errs, code := runIn(t, dir, "export", "kubernetes", "-o", "k8s", "--force", "--runtime-class=", "--volumes", "pvc"); code != 0 {
		t.Fatalf("--force: %d %s", code, errs)
	}
	api, _ := os.ReadFile(filepath.Join(dir, "k8s", "api.yaml"))
	if strings.Contains(string(api), "runtimeClassName") {
		t.Error("--runtime-class= kept runtimeClassName")
	}
	if _, errs, code := runIn(t, dir, "export", "kubernetes", "--volumes", "nfs"); code != 1 || !strings.Contains(errs, "nfs") {
		t.Errorf("bad --volumes: %d %s", code, errs)
	}
	if _, errs, code := runIn(t, t.TempDir(), "export", "kubernetes"); code != 1 || !strings.Contains(errs, "Sandboxfile") {
		t.Errorf("no Sandboxfile: %d %s", code, errs)
	}
}
