package sbxinit

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteTar writes p (a file, a symlink or a directory tree) as a tar stream whose top entry
// is named top and the rest top/… (or from "." down when top is "."), with modes, owners and times; fix, when set, edits each
// header before it is written. Special files are skipped. The init sends copies out of a
// sandbox with it, and sbx cp sends host files in with it.
func WriteTar(w io.Writer, p, top string, fix func(*tar.Header)) error {
	tw := tar.NewWriter(w)
	p = filepath.Clean(p)
	err := filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case fi.Mode().IsRegular(), fi.IsDir():
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(name); err != nil {
				return err
			}
		default:
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(p, name)
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
			hdr.Name = top
		case top == ".": // the root directory: its entries are named from it down
			hdr.Name = filepath.ToSlash(rel)
		default:
			hdr.Name = top + "/" + filepath.ToSlash(rel)
		}
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if fix != nil {
			fix(hdr)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
