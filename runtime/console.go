package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/runtime/state"
)

// Console log rotation defaults (design: rotated at 10 MiB keeping 3 files).
const (
	DefaultConsoleMaxBytes = 10 << 20
	DefaultConsoleKeep     = 3
)

// RotatingFile is an append-only log file that rotates when it reaches MaxBytes: name becomes
// name.1, name.1 becomes name.2, and so on, keeping Keep files in all (the live one included).
// Readers that follow the log detect rotation by the file's identity changing.
type RotatingFile struct {
	path     string
	maxBytes int64
	keep     int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotatingFile opens (creating) path for appending.
func OpenRotatingFile(path string, maxBytes int64, keep int) (*RotatingFile, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultConsoleMaxBytes
	}
	if keep < 1 {
		keep = 1
	}
	r := &RotatingFile{path: path, maxBytes: maxBytes, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := state.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open console log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open console log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past its limit. A single write
// larger than the limit is written whole into a fresh file rather than split.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("rotate console log: %w", err)
	}
	r.f = nil
	// Drop the oldest, shift the rest up by one.
	_ = os.Remove(RotatedName(r.path, r.keep-1))
	for i := r.keep - 2; i >= 0; i-- {
		if err := os.Rename(RotatedName(r.path, i), RotatedName(r.path, i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate console log: %w", err)
		}
	}
	if r.keep == 1 {
		_ = os.Remove(r.path)
	}
	return r.open()
}

// Close closes the live file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// RotatedName is the name of generation i of a rotated log: the live file for 0, then
// name.1, name.2...
func RotatedName(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// LogFiles lists the existing files of a rotated log, oldest first.
func LogFiles(path string, keep int) []string {
	var out []string
	for i := keep - 1; i >= 0; i-- {
		name := RotatedName(path, i)
		if _, err := os.Stat(name); err == nil {
			out = append(out, name)
		}
	}
	return out
}

// consolePath is where a sandbox's console log lives.
func consolePath(sandboxDir string) string { return filepath.Join(sandboxDir, "console.log") }

// stampLayout is the timestamp at the start of each console log line; fixed width so that
// it can be cut off without parsing.
const stampLayout = "2006-01-02T15:04:05.000000Z"

// StampWriter prefixes every line written through it with the time its first byte arrived
// (UTC, stampLayout, then a space), so logs can be shown with or without timestamps. Partial
// lines pass through at once; the next line gets its own stamp.
type StampWriter struct {
	W   io.Writer
	Now func() time.Time

	mu      sync.Mutex
	midLine bool
}

// Write stamps and writes p.
func (s *StampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	now := s.Now
	if now == nil {
		now = time.Now
	}
	buf := make([]byte, 0, len(p)+len(stampLayout)+1)
	for len(p) > 0 {
		if !s.midLine {
			buf = now().UTC().AppendFormat(buf, stampLayout)
			buf = append(buf, ' ')
			s.midLine = true
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			buf = append(buf, p...)
			break
		}
		buf = append(buf, p[:i+1]...)
		p = p[i+1:]
		s.midLine = false
	}
	if _, err := s.W.Write(buf); err != nil {
		return 0, err
	}
	return n, nil
}

// SplitStamp splits a console log line into its timestamp and its text. A line without a
// stamp (written by an older sbx, or by libkrun directly) has a zero time.
func SplitStamp(line []byte) (time.Time, []byte) {
	n := len(stampLayout)
	if len(line) > n && line[n] == ' ' {
		if t, err := time.Parse(stampLayout, string(line[:n])); err == nil {
			return t, line[n+1:]
		}
	}
	return time.Time{}, line
}
