//go:build ignore

// gen writes the hostile layer fixtures of runtime/image's tests:
//
//	go run gen.go
//
// Each NAME.tar (or NAME.tar.gz) is one layer that the image store must
// refuse, naming the entry given in the fixture's comment. Every escape
// aims at a path named sbx-hostile-* so a test can check it was not
// created.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"log"
	"os"
	"time"
)

type entry struct {
	name, link string
	typ        byte
	body       []byte
	major      int64
	size       int64 // for bodies streamed as zeros
}

var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func file(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: []byte(body)} }

func layer(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeReg:
			h.Size = int64(len(e.body))
			if e.size > 0 {
				h.Size = e.size
			}
		case tar.TypeChar:
			h.Devmajor, h.Devminor = e.major, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			log.Fatal(err)
		}
		if e.size > 0 {
			zeros := make([]byte, 1<<20)
			for left := e.size; left > 0; left -= int64(len(zeros)) {
				n := min(left, int64(len(zeros)))
				if _, err := tw.Write(zeros[:n]); err != nil {
					log.Fatal(err)
				}
			}
		} else if _, err := tw.Write(e.body); err != nil {
			log.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	ok := file("etc/ok", "harmless\n")
	// Refused entry: "../sbx-hostile-dotdot".
	write("dotdot.tar", layer(ok, file("../sbx-hostile-dotdot", "escaped\n")))
	// Refused entry: "/tmp/sbx-hostile-absolute".
	write("absolute.tar", layer(ok, file("/tmp/sbx-hostile-absolute", "escaped\n")))
	// Refused entry: "link/sbx-hostile-symlink", written through the
	// symlink planted by the entry before it.
	write("symlink-write.tar", layer(ok,
		entry{name: "link", typ: tar.TypeSymlink, link: "../../../../../../../../../../tmp"},
		file("link/sbx-hostile-symlink", "escaped\n")))
	// Refused entry: "abs/sbx-hostile-symlink-abs", through an absolute
	// symlink.
	write("symlink-absolute.tar", layer(ok,
		entry{name: "abs", typ: tar.TypeSymlink, link: "/tmp"},
		file("abs/sbx-hostile-symlink-abs", "escaped\n")))
	// Refused entry: "passwd", a hard link to "../../../../etc/passwd".
	write("hardlink-outside.tar", layer(ok,
		entry{name: "passwd", typ: tar.TypeLink, link: "../../../../../../../../../../etc/passwd"}))
	// Refused entry: "shadow", a hard link through a symlink to /etc.
	write("hardlink-symlink.tar", layer(ok,
		entry{name: "etcdir", typ: tar.TypeSymlink, link: "/etc"},
		entry{name: "shadow", typ: tar.TypeLink, link: "etcdir/passwd"}))
	// Refused (unprivileged only) entry: "dev/sbx-null", a character device.
	write("device.tar", layer(ok,
		entry{name: "dev/", typ: tar.TypeDir},
		entry{name: "dev/sbx-null", typ: tar.TypeChar, major: 1}))
	// Refused entry: "etc/.wh...", a whiteout of "..".
	write("whiteout-dotdot.tar", layer(ok, file("etc/.wh...", "")))
	// Refused entry: "bomb": 32 MiB of zeros in a gzip of about 32 KiB,
	// over a limit of ten times the compressed size.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(layer(ok, entry{name: "bomb", typ: tar.TypeReg, size: 32 << 20}))
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	write("bomb.tar.gz", gz.Bytes())
}
