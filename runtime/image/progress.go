package image

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// LayerState is where a layer is in a pull.
type LayerState int

// The states a layer goes through. A layer reports Waiting while another
// pull (in this or another process) fetches it, then Downloading and/or
// Unpacking, and ends Done, or Cached when nothing had to be done.
const (
	StateWaiting LayerState = iota
	StateDownloading
	StateUnpacking
	StateDone
	StateCached
)

func (s LayerState) String() string {
	switch s {
	case StateWaiting:
		return "waiting"
	case StateDownloading:
		return "downloading"
	case StateUnpacking:
		return "unpacking"
	case StateDone:
		return "done"
	case StateCached:
		return "cached"
	}
	return fmt.Sprintf("LayerState(%d)", int(s))
}

// LayerProgress is one progress report about one layer of a pull.
type LayerProgress struct {
	Ref    string // the canonical reference being pulled
	Index  int    // position of the layer in the image, 0 = bottom
	Layers int    // number of layers in the image
	Digest string // the layer's blob digest (its diff id for docker-archive)
	Total  int64  // compressed size in bytes
	Done   int64  // bytes downloaded (or read, while unpacking a stored blob)
	State  LayerState
}

// Progress receives progress reports during a pull. Update is called from
// several goroutines at once and must not block for long.
type Progress interface {
	Update(LayerProgress)
}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(LayerProgress)

// Update calls f(p).
func (f ProgressFunc) Update(p LayerProgress) { f(p) }

type nopProgress struct{}

func (nopProgress) Update(LayerProgress) {}

// ProgressWriter renders pull progress: one bar per layer on a terminal,
// a line per layer state change otherwise. Call Wait when the pulls are
// over.
type ProgressWriter struct {
	w   io.Writer
	tty bool

	mu     sync.Mutex
	p      *mpb.Progress
	bars   map[string]*layerBar
	states map[string]LayerState
}

type layerBar struct {
	bar   *mpb.Bar
	mu    sync.Mutex
	state LayerState
}

func (b *layerBar) stateName() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.String()
}

// NewProgress returns a ProgressWriter writing to w, with bars when tty.
func NewProgress(w io.Writer, tty bool) *ProgressWriter {
	pw := &ProgressWriter{w: w, tty: tty, bars: map[string]*layerBar{}, states: map[string]LayerState{}}
	if tty {
		// The caller decided w is a terminal; refresh even if mpb cannot tell.
		pw.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(40), mpb.WithRefreshRate(120*time.Millisecond))
	}
	return pw
}

func short(digest string) string {
	if h := hexOf(digest); len(h) >= 12 {
		return h[:12]
	}
	return digest
}

// Update renders one report.
func (pw *ProgressWriter) Update(p LayerProgress) {
	key := p.Ref + " " + p.Digest
	if !pw.tty {
		pw.mu.Lock()
		defer pw.mu.Unlock()
		if st, ok := pw.states[key]; ok && st == p.State {
			return
		}
		pw.states[key] = p.State
		switch p.State {
		case StateDone, StateCached:
			fmt.Fprintf(pw.w, "%s: layer %d/%d %s %s (%s)\n", p.Ref, p.Index+1, p.Layers, short(p.Digest), p.State, HumanBytes(p.Total))
		default:
			fmt.Fprintf(pw.w, "%s: layer %d/%d %s %s\n", p.Ref, p.Index+1, p.Layers, short(p.Digest), p.State)
		}
		return
	}
	pw.mu.Lock()
	b, ok := pw.bars[key]
	if !ok {
		b = &layerBar{state: p.State}
		// Total 0 and then SetTotal(…, false): the bar completes when the
		// layer is done or cached, not when its bytes are all read.
		b.bar = pw.p.AddBar(0,
			mpb.PrependDecorators(
				decor.Name(short(p.Digest), decor.WC{C: decor.DindentRight | decor.DextraSpace}),
				decor.Any(func(decor.Statistics) string { return b.stateName() }, decor.WC{W: 12, C: decor.DindentRight}),
			),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
		)
		if p.Total > 0 {
			b.bar.SetTotal(p.Total, false)
		}
		pw.bars[key] = b
	}
	pw.mu.Unlock()
	b.mu.Lock()
	b.state = p.State
	b.mu.Unlock()
	switch p.State {
	case StateDone, StateCached:
		if p.Total > 0 {
			b.bar.SetCurrent(p.Total)
		}
		b.bar.SetTotal(-1, true)
	default:
		b.bar.SetCurrent(p.Done)
	}
}

// Wait completes the rendering; call it once after every pull returned.
func (pw *ProgressWriter) Wait() {
	if pw.p == nil {
		return
	}
	pw.mu.Lock()
	for _, b := range pw.bars {
		if !b.bar.Completed() {
			b.bar.Abort(false)
		}
	}
	pw.mu.Unlock()
	pw.p.Wait()
}

// HumanBytes renders a byte count with a binary unit: "512 B", "1.5 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
