package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// compose50 is a 50-service Compose file of the usual shapes: web, api, db and cache
// quartets with healthchecks, depends_on, env, ports, bind mounts, limits and two networks.
func compose50(dir string) string {
	var b strings.Builder
	b.WriteString("name: big\nservices:\n")
	for i := 0; i < 50; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  db%d:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: dev\n      POSTGRES_DB: app%d\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready -U postgres\"]\n      interval: 5s\n    networks: [back]\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  cache%d:\n    image: redis:7\n    command: [\"redis-server\", \"--save\", \"\"]\n    healthcheck:\n      test: [\"CMD\", \"redis-cli\", \"ping\"]\n    networks: [back]\n    ulimits:\n      nofile: {soft: 1024, hard: 4096}\n", i)
		case 2:
			fmt.Fprintf(&b, "  api%d:\n    image: ghcr.io/acme/api:1.%d\n    environment:\n      - DATABASE_URL=postgres://postgres:dev@db%d:5432/app\n      - REDIS_URL=redis://cache%d:6379\n    depends_on:\n      db%d: {condition: service_healthy}\n      cache%d: {condition: service_healthy}\n    healthcheck:\n      test: [\"CMD-SHELL\", \"curl -f http://localhost:8080/health\"]\n    deploy:\n      resources:\n        limits: {cpus: \"1.5\", memory: 512M}\n    networks: [back, front]\n    restart: unless-stopped\n", i, i, i-2, i-1, i-2, i-1)
		case 3:
			fmt.Fprintf(&b, "  web%d:\n    image: nginx:1.27\n    ports: [\"%d:80\"]\n    volumes: [\"./site:/usr/share/nginx/html:ro\"]\n    depends_on: [api%d]\n    networks: [front]\n", i, 20000+i, i-1)
		}
	}
	b.WriteString("networks:\n  back:\n    ipam:\n      config:\n        - subnet: 10.60.0.0/24\n  front: {}\n")
	return b.String()
}

func benchDir(b *testing.B) (string, []byte) {
	dir := filepath.Join(b.TempDir(), "big")
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		b.Fatal(err)
	}
	data := []byte(compose50(dir))
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, data
}

// BenchmarkImport50 is sbx import compose of a 50-service file: read, load with compose-go,
// map, write the Sandboxfile's text.
func BenchmarkImport50(b *testing.B) {
	dir, _ := benchDir(b)
	file := filepath.Join(dir, "docker-compose.yml")
	b.ReportAllocs()
	for b.Loop() {
		res, err := Import(context.Background(), []string{file}, WithEnviron(nil))
		if err != nil {
			b.Fatal(err)
		}
		if len(res.File.Sandboxes) != 50 {
			b.Fatalf("%d sandboxes", len(res.File.Sandboxes))
		}
		_ = res.Bytes()
	}
}

// BenchmarkComposeLoad50 is compose-go's loader alone on the same file, what docker compose
// config spends: the floor under BenchmarkImport50.
func BenchmarkComposeLoad50(b *testing.B) {
	dir, data := benchDir(b)
	b.ReportAllocs()
	for b.Loop() {
		_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  dir,
			ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml"), Content: data}},
			Environment: types.Mapping{},
		}, func(o *loader.Options) { o.SetProjectName("big", true) })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestImport50 keeps the benchmark's input valid: it imports, validates and plans.
func TestImport50(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := ImportBytes(context.Background(), filepath.Join(dir, "docker-compose.yml"), []byte(compose50(dir)), WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkSandboxfile(t, dir, res.Bytes())
	if len(cfg.Sandboxes) != 50 {
		t.Fatalf("%d sandboxes", len(cfg.Sandboxes))
	}
}
