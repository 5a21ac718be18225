package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	Since      string   `help:"Show only lines written since a time: a duration ago (10m, 1h30m) or a time (2026-11-29T16:00:00Z, RFC 3339)." placeholder:"WHEN"`
	Timestamps bool     `help:"Show when each line was written."`
	JSON       bool     `help:"Print one JSON object a line: {\"sandbox\", \"time\", \"line\"}."`
	Raw        bool     `help:"Pass terminal control sequences through as the sandbox wrote them (by default they are shown escaped on a terminal, so a sandbox cannot retitle, clear or forge lines of yours)."`

	escape bool      // neutralise control characters: stdout is a terminal and not --raw
	since  time.Time // lines before it are left out
}

// palette colours the name prefixes of several sandboxes.
var palette = []string{"36", "33", "35", "32", "34", "96", "93", "95"}

// logSource is the console of one sandbox being shown.
type logSource struct {
	name   string
	path   string
	prefix string // "web | " before each line of several sandboxes' logs
}

// logLine is one console line: when it was written (zero when the line carries no stamp)
// and its text without the stamp.
type logLine struct {
	at   time.Time
	text string
}

// followPos is where following a console log goes on: the live file, its inode, and an
// unfinished last line.
type followPos struct {
	f    *os.File
	ino  uint64
	rest []byte
}

func (c *logsCmd) Run(a *app) error {
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	if c.since, err = parseSince(c.Since, time.Now()); err != nil {
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
	sources := make([]logSource, len(names))
	for i, n := range names {
		sources[i] = logSource{name: n, path: p.ConsoleLog(n)}
		if len(names) > 1 && !c.JSON {
			sources[i].prefix = a.paint(a.color, palette[i%len(palette)], fmt.Sprintf("%-*s |", width, n)) + " "
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	c.showAll(ctx, sources, &lockedWriter{w: a.stdout})
	return nil
}

// parseSince reads --since: a duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration ago is positive, like 10m", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration ago (10m, 1h30m) or a time (2026-11-29T16:00:00Z)", s)
}

// showAll prints the logs of sources: what they hold, the lines of all of them merged in the
// order they were written, then, with Follow, new lines as they come until ctx ends.
func (c *logsCmd) showAll(ctx context.Context, sources []logSource, out *lockedWriter) {
	histories := make([][]logLine, len(sources))
	positions := make([]*followPos, len(sources))
	for i, src := range sources {
		histories[i], positions[i] = c.history(src.path)
	}
	mergeLogs(histories, func(i int, l logLine) { out.println(c.format(sources[i], l)) })
	if !c.Follow {
		return
	}
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.follow(ctx, src, positions[i], out)
		}()
	}
	wg.Wait()
}

// show prints the console log at path as the only one shown, with prefix before each line.
func (c *logsCmd) show(ctx context.Context, path, prefix string, out *lockedWriter) {
	c.showAll(ctx, []logSource{{path: path, prefix: prefix}}, out)
}

// mergeLogs calls emit for every line of the histories, oldest first; each history keeps
// its own order, and equal times go to the earlier history.
func mergeLogs(histories [][]logLine, emit func(int, logLine)) {
	next := make([]int, len(histories))
	for {
		pick := -1
		for i, h := range histories {
			if next[i] == len(h) {
				continue
			}
			if pick < 0 || h[next[i]].at.Before(histories[pick][next[pick]].at) {
				pick = i
			}
		}
		if pick < 0 {
			return
		}
		emit(pick, histories[pick][next[pick]])
		next[pick]++
	}
}

// format renders a line for output: a JSON object, or the prefix, the time with
// --timestamps, and the text, escaped on a terminal.
func (c *logsCmd) format(src logSource, l logLine) string {
	if c.JSON {
		v := struct {
			Sandbox string `json:"sandbox,omitempty"`
			Time    string `json:"time,omitempty"`
			Line    string `json:"line"`
		}{Sandbox: src.name, Line: l.text}
		if !l.at.IsZero() {
			v.Time = l.at.UTC().Format(time.RFC3339Nano)
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	s := src.prefix
	if c.Timestamps && !l.at.IsZero() {
		s += l.at.Local().Format(time.RFC3339Nano) + " "
	}
	if c.escape {
		return s + neutralise(l.text)
	}
	return s + l.text
}

// history reads the console log at path: the rotated files, oldest first, then the live
// one, keeping the lines since --since and of those the last Tail. A line without a stamp
// (written before stamps, or cut by rotation) counts as written with the line before it.
// With Follow, the live file stays open at its end for follow.
func (c *logsCmd) history(path string) ([]logLine, *followPos) {
	var lines []logLine
	var last time.Time
	emit := func(raw []byte) {
		at, text := runtime.SplitStamp(raw)
		if at.IsZero() {
			at = last
		}
		last = at
		if !c.since.IsZero() && at.Before(c.since) {
			return
		}
		lines = append(lines, logLine{at: at, text: string(text)})
		if c.Tail >= 0 && len(lines) > 2*c.Tail+64 {
			lines = append(lines[:0], lines[len(lines)-c.Tail:]...)
		}
	}
	pos := &followPos{}
	files := runtime.LogFiles(path, runtime.DefaultConsoleKeep)
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		rest := readLines(f, nil, emit)
		if i == len(files)-1 && name == path && c.Follow {
			pos.f, pos.ino, pos.rest = f, inode(f), rest
		} else {
			f.Close()
		}
	}
	if c.Tail >= 0 && len(lines) > c.Tail {
		lines = lines[len(lines)-c.Tail:]
	}
	return lines, pos
}

// follow polls the live console log from pos, reopening it when it was rotated or
// recreated, until ctx ends.
func (c *logsCmd) follow(ctx context.Context, src logSource, pos *followPos, out *lockedWriter) {
	live, liveIno, rest := pos.f, pos.ino, pos.rest
	path := src.path
	emit := func(raw []byte) {
		at, text := runtime.SplitStamp(raw)
		if !c.since.IsZero() && !at.IsZero() && at.Before(c.since) {
			return
		}
		out.println(c.format(src, logLine{at: at, text: string(text)}))
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
