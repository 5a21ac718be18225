package convert

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Output is where an importer's Sandboxfile goes, and where its warnings are said.
type Output struct {
	Path   string // the file to write; "" for Stdout
	Force  bool   // overwrite Path when it exists
	Stdout io.Writer
	Stderr io.Writer
	// Warning is the prefix of warning lines ("Warning:", possibly coloured).
	Warning string
}

// Dir is the directory the Sandboxfile is written to: host paths in it are relative to it.
func (o Output) Dir() (string, error) {
	if o.Path != "" {
		return filepath.Dir(o.Path), nil
	}
	return os.Getwd()
}

// Write prints the notes on Stderr, one line each, and writes src (a Sandboxfile of n
// sandboxes) unless nothing usable came out (importErr), which is then the error. An existing
// Path is never overwritten without Force.
func (o Output) Write(src []byte, n int, notes []Note, importErr error) error {
	warn := o.Warning
	if warn == "" {
		warn = "Warning:"
	}
	for _, note := range notes {
		fmt.Fprintf(o.Stderr, "%s %s\n", warn, note)
	}
	if importErr != nil {
		return fmt.Errorf("import: %w", importErr)
	}
	if o.Path == "" {
		_, err := o.Stdout.Write(src)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	shown := display(o.Path)
	file, err := os.OpenFile(o.Path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists: sbx import never overwrites a file (use --force to replace it, or -o another file)", shown)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if _, err := file.Write(src); err != nil {
		file.Close()
		return fmt.Errorf("import: write %s: %w", shown, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("import: write %s: %w", shown, err)
	}
	fmt.Fprintf(o.Stderr, "Wrote %s (%s", shown, count(n, "sandbox", "sandboxes"))
	if len(notes) > 0 {
		fmt.Fprintf(o.Stderr, ", %s listed at its top", count(len(notes), "warning", "warnings"))
	}
	fmt.Fprintln(o.Stderr, "). Next: sbx validate, then sbx plan.")
	return nil
}

// display shows path relative to the working directory when it lies below it.
func display(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
