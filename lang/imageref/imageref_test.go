package imageref

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	digest := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "alpine", want: Ref{Kind: Registry, Name: "alpine"}},
		{in: "localhost:5000/x/y@" + digest, want: Ref{Kind: Registry, Name: "localhost:5000/x/y@" + digest}},
		{in: "oci-layout:./img", want: Ref{Kind: OCILayout, Path: "./img"}},
		{in: "oci-layout:img:v1", want: Ref{Kind: OCILayout, Path: "img", Tag: "v1"}},
		{in: "oci-layout:/a/b@" + digest, want: Ref{Kind: OCILayout, Path: "/a/b", Digest: digest}},
		{in: "oci-layout:../x.y/img", want: Ref{Kind: OCILayout, Path: "../x.y/img"}},
		{in: "docker-archive:x.tar", want: Ref{Kind: DockerArchive, Path: "x.tar"}},
		{in: "docker-archive:x.tar:repo/app:1", want: Ref{Kind: DockerArchive, Path: "x.tar", Tag: "repo/app:1"}},
		{in: "docker-archive:odd:name.tar", want: Ref{Kind: DockerArchive, Path: "odd:name.tar"}},
		{in: "dir:rootfs", want: Ref{Kind: Dir, Path: "rootfs"}},
		{in: "", err: "must not be empty"},
		{in: "Bad/Upper", err: "not a valid image reference"},
		{in: "oci-layout:", err: "names no directory"},
		{in: "oci-layout:x@sha256:1", err: "invalid digest"},
		{in: "oci-layout:x:bad tag", err: "invalid tag"},
		{in: "docker-archive:", err: "names no file"},
		{in: "dir:", err: "names no directory"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.in {
			t.Errorf("Parse(%q).String() = %q", tt.in, got.String())
		}
		if IsLocal(tt.in) != (got.Kind != Registry) {
			t.Errorf("IsLocal(%q) = %v", tt.in, IsLocal(tt.in))
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	half := filepath.Join(dir, "half")
	file := filepath.Join(dir, "file.tar")
	for _, d := range []string{layout, half} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(layout, "oci-layout"), filepath.Join(layout, "index.json"), filepath.Join(half, "oci-layout"), file} {
		if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ref  Ref
		want string // "" for no error
	}{
		{Ref{Kind: Registry, Name: "alpine"}, ""},
		{Ref{Kind: OCILayout, Path: layout}, ""},
		{Ref{Kind: OCILayout, Path: filepath.Join(dir, "imgae")}, "no OCI layout at SHOWN"},
		{Ref{Kind: OCILayout, Path: half}, "SHOWN is not an OCI layout: it has no index.json file"},
		{Ref{Kind: OCILayout, Path: file}, "SHOWN is a file, not an OCI layout"},
		{Ref{Kind: DockerArchive, Path: file}, ""},
		{Ref{Kind: DockerArchive, Path: dir}, "SHOWN is a directory, not a docker archive"},
		{Ref{Kind: DockerArchive, Path: filepath.Join(dir, "x.tar")}, "no docker archive at SHOWN"},
		{Ref{Kind: Dir, Path: dir}, ""},
		{Ref{Kind: Dir, Path: file}, "SHOWN is not a directory"},
	}
	for _, tt := range tests {
		err := tt.ref.Check("SHOWN")
		var me *MissingError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%+v) = %v", tt.ref, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.As(err, &me)):
			t.Errorf("Check(%+v) = %v, want %q", tt.ref, err, tt.want)
		}
	}
}
