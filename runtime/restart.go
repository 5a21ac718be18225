package runtime

import "time"

// Backoff computes the delay before a sandbox is restarted: 1 s, doubling up to 60 s, and back
// to 1 s once the sandbox had stayed up for ResetAfter.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	ResetAfter time.Duration

	next time.Duration
}

// NewBackoff returns the policy of the design: 1 s doubling to 60 s, reset after 60 s up.
func NewBackoff() *Backoff {
	return &Backoff{Initial: time.Second, Max: time.Minute, ResetAfter: time.Minute}
}

// Next returns the delay before the restart that follows a run that lasted uptime.
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	if b.next == 0 || uptime >= b.ResetAfter {
		b.next = b.Initial
	}
	d := b.next
	b.next = min(b.next*2, b.Max)
	return d
}

// ShouldRestart applies a restart policy ("no", "on-failure", "always") to an exit. stopping
// is true when the exit was asked for (sbx down, restart, replace): never restarted.
func ShouldRestart(policy string, exitCode int, signaled bool, stopping bool) bool {
	if stopping {
		return false
	}
	switch policy {
	case "always":
		return true
	case "on-failure":
		return exitCode != 0 || signaled
	default:
		return false
	}
}
