package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/runtime"
)

type logsCmd struct {
	Targets    []string `arg:"" optional:"" name:"sandbox" help:"Sandboxes whose console to show (default: all)."`
	Follow     bool     `name:"follow" help:"Keep printing new lines, across log rotation and restarts."`
	Tail       int      `help:"Show only the last N lines of each sandbox (-1: all)." default:"-1"`
	Timestamps bool     `help:"Show when each line was written."`
	Raw        bool     `help:"Pass terminal control sequences through as the sandbox wrote them (by default they are shown escaped on a terminal, so a sandbox cannot retitle, clear or forge lines of yours)."`

	escape bool // neutralise control characters: stdout is a terminal and not --raw
}

// palette colours the name prefixes of several sandboxes.
var palette = []string{"36", "33", "35", "32", "34", "96", "93", "95"}

func (c *logsCmd) Run(a *app) error {
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	st, _, err := observed(dir)
	if err != nil {
		return err
	}
	names := c.Targets
	if len(names) == 0 {
		names = st.Names()
	}
	p := runtime.NewProject("", dir)
	width := 0
	for _, n := range names {
		if st.Record(n) == nil {
			if _, err := os.Stat(p.ConsoleLog(n)); err != nil {
				return fmt.Errorf("no sandbox %q in this project (sbx ps lists them)", n)
			}
		}
		width = max(width, len(n))
	}
	c.escape = a.tty && !c.Raw
	ctx, cancel := signalContext()
	defer cancel()
	out := &lockedWriter{w: a.stdout}
	var wg sync.WaitGroup
	for i, n := range names {
		prefix := ""
		if len(names) > 1 {
			prefix = a.paint(a.color, palette[i%len(palette)], fmt.Sprintf("%-*s |", width, n)) + " "
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.show(ctx, p.ConsoleLog(n), prefix, out)
		}()
		if !c.Follow {
			wg.Wait() // one sandbox after the other, each whole
		}
	}
	wg.Wait()
	return nil
}

// show prints the console log at path: the rotated files, oldest first, then the live one,
// keeping the last Tail lines; with Follow it then polls the live file, reopening it when it
// was rotated or recreated, until ctx ends.
func (c *logsCmd) show(ctx context.Context, path, prefix string, out *lockedWriter) {
	var lines []string
	emit := func(line []byte) {
		ts, text := runtime.SplitStamp(line)
		s := prefix
		if c.Timestamps && !ts.IsZero() {
			s += ts.Local().Format(time.RFC3339Nano) + " "
		}
		if c.escape {
			s += neutralise(string(text))
		} else {
			s += string(text)
		}
		if c.Tail >= 0 && lines != nil {
			lines = append(lines, s)
			if len(lines) > c.Tail {
				lines = lines[1:]
			}
			return
		}
		out.println(s)
	}
	if c.Tail >= 0 {
		lines = make([]string, 0, c.Tail+1)
	}
	files := runtime.LogFiles(path, runtime.DefaultConsoleKeep)
	var live *os.File
	var liveIno uint64
	var rest []byte
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		rest = readLines(f, nil, emit)
		if i == len(files)-1 && name == path {
			live, liveIno = f, inode(f)
		} else {
			f.Close()
		}
	}
	for _, l := range lines {
		out.println(l)
	}
	lines = nil
	if !c.Follow {
		if live != nil {
			live.Close()
		}
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if live != nil {
			rest = readLines(live, rest, emit)
		}
		// Rotated (a new file under the name) or recreated by a new sandbox: switch over
		// after draining the old one.
		if st, err := os.Stat(path); err == nil && inodeOf(st) != liveIno {
			if live != nil {
				// The old file is complete: its unfinished last line is all there will be.
				if rest = readLines(live, rest, emit); len(rest) > 0 {
					emit(rest)
				}
				live.Close()
			}
			live, rest = nil, nil
			if f, err := os.Open(path); err == nil {
				live, liveIno = f, inode(f)
				continue
			}
		}
		select {
		case <-ctx.Done():
			if live != nil {
				live.Close()
			}
			return
		case <-tick.C:
		}
	}
}

// readLines reads whole lines from r, calling emit for each; an unfinished last line is
// returned, to be completed by the next read.
func readLines(r io.Reader, partial []byte, emit func([]byte)) []byte {
	br := bufio.NewReader(r)
	for {
		chunk, err := br.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err != nil {
			return partial
		}
		emit(partial[:len(partial)-1])
		partial = partial[:0]
	}
}

func inode(f *os.File) uint64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return inodeOf(st)
}

func inodeOf(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) println(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}

// neutralise makes a console line safe to print on a terminal: control characters (C0 but
// tab, DEL and C1, which start escape sequences, move the cursor or end lines) are shown as
// visible escapes like \x1b, so what a sandbox prints cannot retitle the window, clear the
// screen or forge a line that looks like sbx's own.
func neutralise(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\r':
			b.WriteString(`\r`)
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
