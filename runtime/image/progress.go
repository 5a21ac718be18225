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

func (s LayerState) final() bool { return s == StateDone || s == StateCached }

// LayerProgress is one progress report about one layer of a pull.
type LayerProgress struct {
	Ref    string // the canonical reference being pulled
	Index  int    // position of the layer in the image, 0 = bottom
	Layers int    // number of layers in the image
	Digest string // the layer's blob digest (its diff id for docker-archive)
	Total  int64  // compressed size in bytes (0 when unknown: docker-archive)
	Done   int64  // bytes downloaded (or read, while unpacking a stored blob)
	State  LayerState
	// Local is set for an image read from this machine (oci-layout:,
	// docker-archive:), which is imported rather than downloaded.
	Local bool
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

// plainInterval is how often a plain ProgressWriter reports an image that
// is still being fetched.
const plainInterval = 5 * time.Second

// ProgressWriter renders the progress of one or more pulls. On a terminal
// it draws (with mpb) one line per image: its reference, what is being
// done ("downloading" from a registry, "importing" from a local
// oci-layout: or docker-archive:), bytes, speed and time left; under it,
// while the image is fetched, one line per layer in flight, which goes
// when the layer is done. Otherwise it writes plain lines: one when an
// image starts, one per layer fetched, one every few seconds with the
// percentage, speed and time left, and one when the image is complete.
// Call Wait when the pulls are over.
type ProgressWriter struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu     sync.Mutex
	p      *mpb.Progress
	images map[string]*imageProgress
	bars   []*imageProgress // every image drawn, in order
}

// imageProgress is the progress of one image.
type imageProgress struct {
	ref    string
	local  bool
	layers int
	prio   int
	byKey  map[int]*layerProgress
	// total and done count the bytes to fetch (cached layers excluded);
	// size counts every layer's.
	total, done, size int64
	doneSeen          int64 // done, for the renderer (under mu)
	fetched, cached   int
	started, finished bool
	start, lastLine   time.Time
	bar               *mpb.Bar

	mu     sync.Mutex // guards status and end, read by the renderer
	status string
	end    time.Time
}

// speed renders the image's average speed since its first byte, up to its
// end once finished.
func (im *imageProgress) speed(now time.Time) string {
	im.mu.Lock()
	defer im.mu.Unlock()
	if !im.end.IsZero() {
		now = im.end
	}
	if im.start.IsZero() || !now.After(im.start) {
		return ""
	}
	return fmt.Sprintf("% .1f/s", decor.SizeB1024(float64(im.doneSeen)/now.Sub(im.start).Seconds()))
}

type layerProgress struct {
	index        int
	digest       string
	state        LayerState
	total, done  int64
	counted      bool // total is in the image's total
	bar          *mpb.Bar
	mu           sync.Mutex
	statusString string
}

func (im *imageProgress) setStatus(s string) {
	im.mu.Lock()
	im.status = s
	im.mu.Unlock()
}

func (im *imageProgress) getStatus() string {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.status
}

func (l *layerProgress) setStatus(s string) {
	l.mu.Lock()
	l.statusString = s
	l.mu.Unlock()
}

func (l *layerProgress) getStatus() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statusString
}

// verb is what is being done to the image: "downloading" or "importing",
// and with past true "downloaded" or "imported".
func (im *imageProgress) verb(past bool) string {
	switch {
	case im.local && past:
		return "imported"
	case im.local:
		return "importing"
	case past:
		return "downloaded"
	}
	return "downloading"
}

// NewProgress returns a ProgressWriter writing to w, with bars when tty.
func NewProgress(w io.Writer, tty bool) *ProgressWriter {
	pw := &ProgressWriter{w: w, tty: tty, now: time.Now, images: map[string]*imageProgress{}}
	if tty {
		// The caller decided w is a terminal; refresh even if mpb cannot tell.
		pw.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(30), mpb.WithRefreshRate(120*time.Millisecond))
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
	pw.mu.Lock()
	defer pw.mu.Unlock()
	now := pw.now()
	im, ok := pw.images[p.Ref]
	if !ok || im.finished {
		// A new image, or the same one pulled again.
		im = &imageProgress{ref: p.Ref, local: p.Local, layers: p.Layers, prio: (len(pw.bars) + 1) * 10000,
			byKey: map[int]*layerProgress{}, status: "waiting"}
		pw.images[p.Ref] = im
		if pw.tty {
			pw.addImageBar(im)
			pw.bars = append(pw.bars, im)
		}
	}
	l, ok := im.byKey[p.Index]
	if !ok {
		l = &layerProgress{index: p.Index, digest: p.Digest, state: -1}
		im.byKey[p.Index] = l
		im.size += p.Total
	}
	prev := l.state
	if prev == p.State && p.State != StateDownloading && p.State != StateUnpacking {
		return
	}
	if prev.final() {
		return
	}
	// Bytes: a cached layer is not fetched; the others count until done.
	done := p.Done
	if p.State == StateDone {
		done = max(p.Total, l.done)
	}
	switch {
	case p.State == StateCached:
		if l.counted {
			im.total -= l.total
			im.done -= l.done
			l.counted = false
		}
		im.cached++
	default:
		if !l.counted {
			im.total += p.Total
			l.counted = true
		}
		im.done += done - l.done
		l.done = done
		if p.State == StateDone {
			im.fetched++
		}
	}
	l.state, l.total = p.State, p.Total
	active := p.State == StateDownloading || p.State == StateUnpacking
	if active && !im.started {
		im.mu.Lock()
		im.start = now
		im.mu.Unlock()
		im.started, im.lastLine = true, now
		im.setStatus(im.verb(false))
		if pw.tty {
			im.bar.DecoratorAverageAdjust(now)
		} else {
			fmt.Fprintf(pw.w, "%s: %s %s (%s)\n", im.ref, im.verb(false), layersText(im.layers), HumanBytes(im.size))
		}
	}
	complete := im.fetched+im.cached == im.layers && len(im.byKey) == im.layers
	if pw.tty {
		pw.renderTTY(im, l, p, complete)
	} else {
		pw.renderPlain(im, l, p, now)
	}
	im.mu.Lock()
	im.doneSeen = im.done
	if complete {
		im.end = now
	}
	im.mu.Unlock()
	if complete {
		pw.finish(im, now)
	}
}

func (pw *ProgressWriter) renderPlain(im *imageProgress, l *layerProgress, p LayerProgress, now time.Time) {
	if p.State == StateDone {
		fmt.Fprintf(pw.w, "%s: layer %d/%d %s %s (%s)\n", im.ref, p.Index+1, p.Layers, short(p.Digest), im.verb(true), HumanBytes(p.Total))
	}
	if im.started && now.Sub(im.lastLine) >= plainInterval && im.fetched+im.cached < im.layers {
		im.lastLine = now
		line := fmt.Sprintf("%s: %s %s", im.ref, im.verb(false), HumanBytes(im.done))
		if im.total > 0 {
			line += fmt.Sprintf(" of %s (%d%%)", HumanBytes(im.total), im.done*100/im.total)
		}
		if el := now.Sub(im.start); el > 0 && im.done > 0 {
			rate := float64(im.done) / el.Seconds()
			line += fmt.Sprintf(", %s/s", HumanBytes(int64(rate)))
			if im.total > im.done {
				left := time.Duration(float64(im.total-im.done) / rate * float64(time.Second))
				line += fmt.Sprintf(", about %s left", left.Round(time.Second))
			}
		}
		fmt.Fprintln(pw.w, line)
	}
}

func (pw *ProgressWriter) addImageBar(im *imageProgress) {
	im.bar = pw.p.AddBar(0,
		mpb.BarPriority(im.prio),
		mpb.PrependDecorators(
			decor.Name(im.ref, decor.WCSyncSpaceR),
			decor.Any(func(decor.Statistics) string { return im.getStatus() }, decor.WC{W: 11, C: decor.DindentRight | decor.DextraSpace}),
		),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.Any(func(decor.Statistics) string { return im.speed(pw.now()) }, decor.WCSyncSpace),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), ""),
		),
	)
}

func (pw *ProgressWriter) renderTTY(im *imageProgress, l *layerProgress, p LayerProgress, complete bool) {
	if im.total > 0 {
		im.bar.SetTotal(im.total, false)
	}
	im.bar.SetCurrent(im.done)
	switch {
	case p.State == StateDownloading || p.State == StateUnpacking:
		status := im.verb(false)
		if p.State == StateUnpacking && !im.local {
			status = "unpacking"
		}
		if l.bar == nil && !complete {
			l.bar = pw.p.AddBar(max(p.Total, 0),
				mpb.BarPriority(im.prio+1+p.Index),
				mpb.BarRemoveOnComplete(),
				mpb.PrependDecorators(
					decor.Name(fmt.Sprintf("  layer %d/%d %s", p.Index+1, p.Layers, short(p.Digest)), decor.WCSyncSpaceR),
					decor.Any(func(decor.Statistics) string { return l.getStatus() }, decor.WC{W: 11, C: decor.DindentRight | decor.DextraSpace}),
				),
				mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace)),
			)
		}
		l.setStatus(status)
		if l.bar != nil {
			l.bar.SetCurrent(p.Done)
		}
	case p.State.final():
		if l.bar != nil {
			l.bar.SetTotal(-1, true)
		}
	}
}

// finish marks an image complete: a last line, or its bar completed.
func (pw *ProgressWriter) finish(im *imageProgress, now time.Time) {
	im.finished = true
	nothing := im.fetched == 0
	if pw.tty {
		if nothing {
			im.setStatus("cached")
		} else {
			im.setStatus(im.verb(true))
		}
		switch {
		case nothing:
			// All there: show the image's size, full.
			im.bar.SetTotal(im.size, false)
			im.bar.SetCurrent(im.size)
		case im.total <= 0:
			// Sizes unknown (docker-archive): show what was read.
			im.bar.SetTotal(im.done, false)
		}
		im.bar.SetTotal(-1, true)
		return
	}
	if nothing {
		fmt.Fprintf(pw.w, "%s: cached (%s, %s)\n", im.ref, layersText(im.layers), HumanBytes(im.size))
		return
	}
	line := fmt.Sprintf("%s: %s %s in %s", im.ref, im.verb(true), HumanBytes(im.done), now.Sub(im.start).Round(10*time.Millisecond))
	if el := now.Sub(im.start); el > 0 {
		line += fmt.Sprintf(" (%s/s)", HumanBytes(int64(float64(im.done)/el.Seconds())))
	}
	if im.cached > 0 {
		line += fmt.Sprintf(", %d of %d layers cached", im.cached, im.layers)
	}
	fmt.Fprintln(pw.w, line)
}

// Wait completes the rendering; call it once after every pull returned.
// An image that did not complete (its pull failed) is shown as failed.
func (pw *ProgressWriter) Wait() {
	if pw.p == nil {
		return
	}
	pw.mu.Lock()
	for _, im := range pw.bars {
		for _, l := range im.byKey {
			if l.bar != nil && !l.bar.Completed() {
				l.bar.Abort(true)
			}
		}
		if !im.bar.Completed() {
			im.setStatus("failed")
			im.bar.Abort(false)
		}
	}
	pw.mu.Unlock()
	pw.p.Wait()
}

func layersText(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
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
