package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// SupervisorOptions tune a supervisor; the zero value is the design's behaviour.
type SupervisorOptions struct {
	Logger      *slog.Logger
	Now         func() time.Time
	StartTime   uint64 // this process's start time, recorded next to its pid
	ConsoleMax  int64
	ConsoleKeep int
	Backoff     *Backoff
}

// supervisor is the state of one Supervise call.
type supervisor struct {
	spec    *spec.RunSpec
	d       Driver
	log     *slog.Logger
	now     func() time.Time
	backoff *Backoff
	out     *StampWriter
	rec     *Record
}

// Supervise runs the sandbox of s with driver d until ctx is cancelled (SIGTERM to the
// supervisor): it starts the payload, streams its console into the rotating console log,
// runs the ready probe, applies the restart policy with backoff and records every exit in
// the supervisor record. On cancellation it stops the payload — SIGTERM, stop_timeout, then
// SIGKILL — and releases what the driver made. It returns an error only when the payload
// could not be started the first time.
func Supervise(ctx context.Context, s *spec.RunSpec, d Driver, opts SupervisorOptions) error {
	sv := &supervisor{spec: s, d: d, log: opts.Logger, now: opts.Now, backoff: opts.Backoff}
	if sv.log == nil {
		sv.log = slog.New(slog.DiscardHandler)
	}
	if sv.now == nil {
		sv.now = time.Now
	}
	if sv.backoff == nil {
		sv.backoff = NewBackoff()
	}
	console, err := OpenRotatingFile(consolePath(s.Dir), opts.ConsoleMax, max(opts.ConsoleKeep, DefaultConsoleKeep))
	if err != nil {
		return fmt.Errorf("open the console log of %s: %w", s.Name, err)
	}
	defer console.Close()
	sv.out = &StampWriter{W: console, Now: sv.now}

	sv.rec = &Record{Pid: os.Getpid(), StartTime: opts.StartTime, Generation: s.Generation, Status: planner.StatusStarting}
	if old, _ := ReadRecord(s.Dir); old != nil && old.Generation == s.Generation {
		// Same generation started again (sbx up after a crash): keep its history.
		sv.rec.Restarts, sv.rec.Exits = old.Restarts, old.Exits
	}
	sv.save()
	if err := register(projectDirOf(s), s, os.Getpid(), opts.StartTime); err != nil {
		sv.log.Warn("register as running", "err", err)
	}
	defer unregister(projectDirOf(s), s.Name, os.Getpid())

	for first := true; ; first = false {
		// A log probe judges only what this run prints, from before it starts.
		offset := consoleSize(s.Dir)
		inst, err := sv.start()
		if err != nil {
			if first {
				return err
			}
			return nil
		}
		ex, stopped := sv.run(ctx, inst, offset)
		if err := inst.Close(context.WithoutCancel(ctx)); err != nil {
			sv.note("release: %v", err)
		}
		if stopped {
			sv.rec.Status = planner.StatusStopped
			sv.save()
			sv.note("stopped (%s)", describeExit(ex))
			return nil
		}
		if !sv.waitRestart(ctx, ex) {
			return nil
		}
	}
}

func (sv *supervisor) note(format string, args ...any) {
	fmt.Fprintf(sv.out, "[sbx] "+format+"\n", args...)
}

func (sv *supervisor) save() {
	sv.rec.Updated = sv.now()
	if err := WriteRecord(sv.spec.Dir, sv.rec); err != nil {
		sv.log.Warn("write supervisor record", "err", err)
	}
}

// start starts the payload once, recording a failure.
func (sv *supervisor) start() (Instance, error) {
	sv.note("starting generation %d", sv.spec.Generation)
	// The supervisor's own context ends when it is told to stop; a start in progress runs to
	// its end, so that what it made is owned by an instance that is then closed.
	inst, err := sv.d.Start(context.Background(), sv.spec, sv.out)
	if err != nil {
		sv.note("start failed: %v", err)
		sv.rec.Status, sv.rec.Error = planner.StatusFailed, err.Error()
		sv.save()
		return nil, err
	}
	sv.rec.Status, sv.rec.Payload, sv.rec.Since, sv.rec.Error = planner.StatusStarting, inst.Pid(), sv.now(), ""
	if sv.spec.Ready == nil {
		sv.rec.Status = planner.StatusRunning
	}
	sv.save()
	return inst, nil
}

// run waits for the payload to end, probing its readiness meanwhile. When ctx ends first it
// stops the payload and reports stopped.
func (sv *supervisor) run(ctx context.Context, inst Instance, offset int64) (ex Exit, stopped bool) {
	exited := make(chan Exit, 1)
	go func() {
		ex, _ := inst.Wait(context.Background())
		exited <- ex
	}()
	probeCtx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	ready := make(chan readiness, 4)
	if probe := probeFor(sv.spec, offset, inst); probe != nil {
		go watchReadiness(probeCtx, probe, sv.spec.Ready, ready)
	}
	for {
		select {
		case r := <-ready:
			sv.readiness(r)
		case ex = <-exited:
			sv.rec.Exits = append(sv.rec.Exits, ex)
			sv.rec.Payload = 0
			return ex, false
		case <-ctx.Done():
			cancelProbe()
			sv.rec.Status = planner.StatusStopping
			sv.save()
			ex = stop(inst, exited, sv.spec.StopTimeout, sv.note)
			sv.rec.Exits = append(sv.rec.Exits, ex)
			sv.rec.Payload = 0
			return ex, true
		}
	}
}

// readiness records a probe outcome: ready, or unready with the reason (said once).
func (sv *supervisor) readiness(r readiness) {
	if r.err == nil {
		if sv.rec.Status == planner.StatusUnready {
			sv.note("ready after all (%s)", sv.spec.Ready)
		}
		sv.rec.Status, sv.rec.Error = planner.StatusReady, ""
	} else {
		if sv.rec.Status != planner.StatusUnready {
			sv.note("unready: %v; probing again every %s", r.err, retryInterval(sv.spec.Ready))
		}
		sv.rec.Status, sv.rec.Error = planner.StatusUnready, r.err.Error()
	}
	sv.save()
}

// waitRestart applies the restart policy to ex and waits out the backoff. It reports
// whether to start again.
func (sv *supervisor) waitRestart(ctx context.Context, ex Exit) bool {
	if !ShouldRestart(string(sv.spec.Restart), ex.Code, ex.Signal != "", false) {
		sv.rec.Status = planner.StatusExited
		if !ex.Failed() {
			sv.rec.Status = planner.StatusStopped
		}
		sv.save()
		sv.note("%s; restart policy %q: not restarting", describeExit(ex), sv.spec.Restart)
		return false
	}
	delay := sv.backoff.Next(ex.At.Sub(sv.rec.Since))
	sv.rec.Status = planner.StatusRestarting
	sv.save()
	sv.note("%s; restarting in %s (policy %q)", describeExit(ex), delay, sv.spec.Restart)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		sv.rec.Status = planner.StatusStopped
		sv.save()
		sv.note("stopped while waiting to restart")
		return false
	case <-t.C:
	}
	sv.rec.Restarts++
	return true
}

// readiness is one outcome of the ready probe.
type readiness struct{ err error }

// retryInterval is how often an unready sandbox is probed again: its interval, at least a
// second, so a sandbox that never becomes ready costs little.
func retryInterval(r *spec.Ready) time.Duration { return max(r.Interval, time.Second) }

// watchReadiness waits for the probe to pass within the ready timeout. When it does not, the
// sandbox is unready and the probe is tried again every retryInterval until it passes (or ctx
// ends), so a sandbox that got there late is seen ready.
func watchReadiness(ctx context.Context, probe Probe, r *spec.Ready, out chan<- readiness) {
	err := WaitReady(ctx, probe, r.Timeout, r.Interval, nil)
	if ctx.Err() != nil {
		return
	}
	out <- readiness{err}
	if err == nil {
		return
	}
	t := time.NewTicker(retryInterval(r))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		attempt, cancel := context.WithTimeout(ctx, retryInterval(r))
		err := probe.Check(attempt)
		cancel()
		if err == nil {
			out <- readiness{nil}
			return
		}
	}
}

// stop asks the payload to end (SIGTERM), waits timeout, then kills it.
func stop(inst Instance, exited <-chan Exit, timeout time.Duration, note func(string, ...any)) Exit {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = inst.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ex := <-exited:
		return ex
	case <-t.C:
	}
	note("still running %s after SIGTERM: killing it", timeout)
	_ = inst.Signal(syscall.SIGKILL)
	return <-exited
}

func describeExit(ex Exit) string {
	switch {
	case ex.Err != "":
		return "lost: " + ex.Err
	case ex.Signal != "":
		return "killed by " + ex.Signal
	default:
		return "exited with code " + strconv.Itoa(ex.Code)
	}
}

func consoleSize(dir string) int64 {
	st, err := os.Stat(consolePath(dir))
	if err != nil {
		return 0
	}
	return st.Size()
}

// probeFor builds the ready probe of s. Probes reach the sandbox itself through the
// instance (its group IP or its network namespace), never a published host port, whose proxy
// accepts before the guest listens. logOffset makes a log probe ignore what earlier runs
// printed.
func probeFor(s *spec.RunSpec, logOffset int64, inst Instance) Probe {
	r := s.Ready
	switch {
	case r == nil:
		return nil
	case r.TCP != 0:
		return TCPProbe{Addr: "guest port " + strconv.Itoa(r.TCP), Dial: func(ctx context.Context) (net.Conn, error) {
			return inst.DialGuest(ctx, r.TCP)
		}}
	case r.HTTP != nil:
		return HTTPProbe{Spec: *r.HTTP, Dial: func(ctx context.Context) (net.Conn, error) {
			return inst.DialGuest(ctx, r.HTTP.Port)
		}}
	case r.Log != "":
		re, err := regexp.Compile(r.Log)
		if err != nil {
			return failingProbe{what: "log /" + r.Log + "/", err: err}
		}
		return LogProbe{Path: consolePath(s.Dir), Pattern: re, Offset: logOffset}
	}
	return nil
}

// failingProbe never succeeds.
type failingProbe struct {
	what string
	err  error
}

func (p failingProbe) Check(context.Context) error { return p.err }
func (p failingProbe) String() string              { return p.what }

// errNoReport means the supervisor never said how its sandbox is doing.
var errNoReport = errors.New("the supervisor did not report")
