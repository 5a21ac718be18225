package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"
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

// Supervise runs the sandbox of spec with driver d until ctx is cancelled (SIGTERM to the
// supervisor): it starts the payload, streams its console into the rotating console log,
// runs the ready probe, applies the restart policy with backoff and records every exit in
// the supervisor record. On cancellation it stops the payload — SIGTERM, stop_timeout, then
// SIGKILL — and cleans up after it. It returns an error only when the payload could not be
// started the first time.
func Supervise(ctx context.Context, spec *RunSpec, d Driver, opts SupervisorOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	backoff := opts.Backoff
	if backoff == nil {
		backoff = NewBackoff()
	}
	console, err := OpenRotatingFile(consolePath(spec.Dir), opts.ConsoleMax, max(opts.ConsoleKeep, DefaultConsoleKeep))
	if err != nil {
		return err
	}
	defer console.Close()
	out := &StampWriter{W: console, Now: now}
	note := func(format string, args ...any) {
		fmt.Fprintf(out, "[sbx] "+format+"\n", args...)
	}

	rec := &Record{Pid: os.Getpid(), StartTime: opts.StartTime, Generation: spec.Generation, Status: StatusStarting}
	if old, _ := ReadRecord(spec.Dir); old != nil && old.Generation == spec.Generation {
		// Same generation started again (sbx up after a crash): keep its history.
		rec.Restarts, rec.Exits = old.Restarts, old.Exits
	}
	save := func() {
		rec.Updated = now()
		if err := WriteRecord(spec.Dir, rec); err != nil {
			log.Warn("write supervisor record", "err", err)
		}
	}
	save()
	defer func() {
		if err := d.Cleanup(context.WithoutCancel(ctx), spec); err != nil {
			log.Warn("cleanup", "err", err)
			note("cleanup: %v", err)
		}
	}()

	for first := true; ; first = false {
		offset := consoleSize(spec.Dir)
		note("starting generation %d", spec.Generation)
		inst, err := d.Start(context.WithoutCancel(ctx), spec, out)
		if err != nil {
			note("start failed: %v", err)
			rec.Status, rec.Error = StatusFailed, err.Error()
			save()
			if first {
				return err
			}
			return nil
		}
		started := now()
		rec.Status, rec.Payload, rec.Since, rec.Error = StatusRunning, inst.Pid(), started, ""
		save()

		exited := make(chan Exit, 1)
		go func() { exited <- inst.Wait() }()

		probeCtx, cancelProbe := context.WithCancel(ctx)
		probeDone := make(chan error, 1)
		if probe := probeFor(spec, offset, d); probe != nil {
			go func() {
				probeDone <- WaitReady(probeCtx, probe, spec.Sandbox.Ready.Timeout, spec.Sandbox.Ready.Interval, nil)
			}()
		} else {
			probeDone <- nil
		}

		var ex Exit
	wait:
		for {
			select {
			case err := <-probeDone:
				probeDone = nil
				if err == nil {
					rec.Status = StatusReady
					save()
				} else if ctx.Err() == nil {
					note("not ready: %v", err)
					rec.Error = err.Error()
					save()
				}
			case ex = <-exited:
				break wait
			case <-ctx.Done():
				cancelProbe()
				rec.Status = StatusStopping
				save()
				ex = stop(inst, exited, spec.Sandbox.StopTimeout, note)
				rec.Exits = append(rec.Exits, ex)
				rec.Status, rec.Payload = StatusStopped, 0
				save()
				note("stopped (%s)", describeExit(ex))
				return nil
			}
		}
		cancelProbe()
		rec.Exits = append(rec.Exits, ex)
		rec.Payload = 0
		if !ShouldRestart(spec.Sandbox.Restart, ex.Code, ex.Signal != "", false) {
			rec.Status = StatusExited
			save()
			note("%s; restart policy %q: not restarting", describeExit(ex), spec.Sandbox.Restart)
			return nil
		}
		delay := backoff.Next(ex.At.Sub(started))
		rec.Status = StatusRestarting
		save()
		note("%s; restarting in %s (policy %q)", describeExit(ex), delay, spec.Sandbox.Restart)
		// The payload is gone, but what it left outside its process (a cgroup, a link) must
		// not leak into the next run.
		if err := d.Cleanup(ctx, spec); err != nil {
			note("cleanup: %v", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			rec.Status = StatusStopped
			save()
			note("stopped while waiting to restart")
			return nil
		case <-t.C:
		}
		rec.Restarts++
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

// probeFor builds the ready probe of spec, as seen from the host: a tcp probe connects to the
// guest port through the driver when it can (GuestDialer), else to the published host port
// of that guest port, else to the sandbox's IP in its group. logOffset makes a log probe
// ignore what earlier runs printed.
func probeFor(spec *RunSpec, logOffset int64, d Driver) Probe {
	r := spec.Sandbox.Ready
	if r == nil {
		return nil
	}
	switch {
	case r.TCP != 0:
		if gd, ok := d.(GuestDialer); ok {
			return TCPProbe{Addr: "guest port " + strconv.Itoa(r.TCP), Dial: func(ctx context.Context) (net.Conn, error) {
				return gd.DialGuest(ctx, spec, r.TCP)
			}}
		}
		for _, p := range spec.Sandbox.Ports {
			if p.Guest == r.TCP && p.Protocol != "udp" {
				host := p.HostIP
				if host == "" || host == "0.0.0.0" {
					host = "127.0.0.1"
				} else if host == "::" {
					host = "::1"
				}
				return TCPProbe{Addr: net.JoinHostPort(host, strconv.Itoa(p.Host))}
			}
		}
		if ip := spec.Sandbox.Network.IP; ip.IsValid() {
			return TCPProbe{Addr: net.JoinHostPort(ip.String(), strconv.Itoa(r.TCP))}
		}
		return unreachableProbe{port: r.TCP}
	case r.HTTP != "":
		return HTTPProbe{URL: r.HTTP}
	case r.Log != "":
		re, err := regexp.Compile(r.Log)
		if err != nil {
			return unreachableProbe{err: err}
		}
		return LogProbe{Path: consolePath(spec.Dir), Pattern: re, Offset: logOffset}
	}
	return nil
}

// unreachableProbe never succeeds: the probe cannot be checked from the host.
type unreachableProbe struct {
	port int
	err  error
}

func (p unreachableProbe) Check(context.Context) error {
	if p.err != nil {
		return p.err
	}
	return fmt.Errorf("guest port %d is neither published with a port block nor reachable by a group IP", p.port)
}

func (p unreachableProbe) String() string { return "tcp " + strconv.Itoa(p.port) }
