package lang

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestParseInPiecesMatchesWholeParse checks that a file parsed in pieces has exactly the
// blocks, ranges and attributes of a whole parse, on files built to trip the cutter: strings
// with braces and newlines in templates, heredocs holding block-like text, comments of every
// kind.
func TestParseInPiecesMatchesWholeParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("# a Sandboxfile big enough to be cut\n")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, `
/* sandbox "fake%d" { */
sandbox "s%d" { // }
  image = "docker.io/library/alpine:3"
  command = ["sh", "-c", "echo '{' ${"}"} %%{ if true }x%%{ endif } $${literal}"]
  env = {
    A = <<-EOT
      sandbox "inside" {
      }
    EOT
    B = "${upper("x")}-é"
  }
}
`, i, i)
	}
	src := []byte(b.String())
	if len(src) < parallelParseMin {
		t.Fatalf("test file too small (%d bytes) to be cut", len(src))
	}
	if cuts := topLevelCuts(src, 8, minPiece); len(cuts) < 2 {
		t.Fatalf("the file was not cut: %v", cuts)
	}
	whole, wd := hclsyntax.ParseConfig(src, "Sandboxfile", hcl.InitialPos)
	pieces, pd := parseConfig(src, "Sandboxfile")
	if wd.HasErrors() || pd.HasErrors() {
		t.Fatalf("diagnostics: whole %v, pieces %v", wd, pd)
	}
	wb, pb := whole.Body.(*hclsyntax.Body), pieces.Body.(*hclsyntax.Body)
	if len(wb.Blocks) != len(pb.Blocks) {
		t.Fatalf("%d blocks in pieces, %d whole", len(pb.Blocks), len(wb.Blocks))
	}
	for i := range wb.Blocks {
		w, p := wb.Blocks[i], pb.Blocks[i]
		if w.Type != p.Type || strings.Join(w.Labels, ",") != strings.Join(p.Labels, ",") || w.Range() != p.Range() || w.Body.SrcRange != p.Body.SrcRange {
			t.Fatalf("block %d: pieces %s %v %v, whole %s %v %v", i, p.Type, p.Labels, p.Range(), w.Type, w.Labels, w.Range())
		}
		for name, wa := range w.Body.Attributes {
			pa := p.Body.Attributes[name]
			if pa == nil || pa.SrcRange != wa.SrcRange || pa.Expr.Range() != wa.Expr.Range() {
				t.Fatalf("block %d attribute %s differs", i, name)
			}
		}
	}
	if wb.SrcRange != pb.SrcRange || wb.EndRange != pb.EndRange {
		t.Errorf("body ranges: pieces %v %v, whole %v %v", pb.SrcRange, pb.EndRange, wb.SrcRange, wb.EndRange)
	}
	off := wb.Blocks[123].Body.Attributes["image"].SrcRange.Start.Byte
	if got, want := pieces.Nav.(interface{ ContextString(int) string }).ContextString(off), `sandbox "s123"`; got != want {
		t.Errorf("context = %q, want %q", got, want)
	}
}

// TestParseInPiecesErrorsAsWhole checks that a broken big file reports what a whole parse does.
func TestParseInPiecesErrorsAsWhole(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "sandbox \"s%d\" {\n  image = \"docker.io/library/alpine:3\"\n  memory = 64\n}\n", i)
	}
	b.WriteString("sandbox \"bad\" {\n  image = \n}\n")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "sandbox \"t%d\" {\n  image = \"x\"\n}\n", i)
	}
	src := []byte(b.String())
	_, wd := hclsyntax.ParseConfig(src, "Sandboxfile", hcl.InitialPos)
	_, pd := parseConfig(src, "Sandboxfile")
	if wd.Error() != pd.Error() {
		t.Errorf("pieces: %v\nwhole: %v", pd, wd)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Sandboxfile")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, diags := Load(path); !diags.HasErrors() || diags[0].Subject.Start.Line != 1602 {
		t.Errorf("Load of a broken big file: %v", diags)
	}
}

// FuzzParsePieces checks that parsing in pieces never differs from a whole parse: the input,
// repeated a few times and cut into pieces as small as a few lines, must give the same
// diagnostics and, without errors, the same blocks at the same places.
func FuzzParsePieces(f *testing.F) {
	addSandboxfiles(f)
	f.Add([]byte("a = <<EOT\n}\nEOT\n"))
	f.Add([]byte("b = \"${\"}\"}\"\n"))
	f.Fuzz(func(t *testing.T, unit []byte) {
		if len(unit) == 0 {
			return
		}
		var b bytes.Buffer
		for i := 0; i < 4; i++ {
			b.Write(unit)
			b.WriteByte('\n')
		}
		src := b.Bytes()
		whole, wd := hclsyntax.ParseConfig(src, "Sandboxfile", hcl.InitialPos)
		pieces, pd := parsePieces(src, "Sandboxfile", 0, 16)
		if wd.Error() != pd.Error() {
			t.Fatalf("diagnostics differ:\npieces: %v\nwhole:  %v", pd, wd)
		}
		if wd.HasErrors() {
			return
		}
		wb, pb := whole.Body.(*hclsyntax.Body), pieces.Body.(*hclsyntax.Body)
		if len(wb.Blocks) != len(pb.Blocks) || len(wb.Attributes) != len(pb.Attributes) {
			t.Fatalf("pieces: %d blocks %d attributes; whole: %d blocks %d attributes",
				len(pb.Blocks), len(pb.Attributes), len(wb.Blocks), len(wb.Attributes))
		}
		for i := range wb.Blocks {
			if wb.Blocks[i].Range() != pb.Blocks[i].Range() || wb.Blocks[i].Body.SrcRange != pb.Blocks[i].Body.SrcRange {
				t.Fatalf("block %d: pieces %v, whole %v", i, pb.Blocks[i].Range(), wb.Blocks[i].Range())
			}
		}
		for name, wa := range wb.Attributes {
			if pa := pb.Attributes[name]; pa == nil || pa.SrcRange != wa.SrcRange {
				t.Fatalf("attribute %s differs", name)
			}
		}
	})
}
