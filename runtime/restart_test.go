package runtime

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := NewBackoff()
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, b.Next(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays = %v, want %v seconds", got, want)
		}
	}
	if d := b.Next(61 * time.Second); d != time.Second {
		t.Errorf("after 61s up: %v, want reset to 1s", d)
	}
	if d := b.Next(0); d != 2*time.Second {
		t.Errorf("after a reset, the next failure waits %v, want 2s", d)
	}
}

func TestShouldRestart(t *testing.T) {
	cases := []struct {
		policy             string
		code               int
		signaled, stopping bool
		want               bool
	}{
		{"no", 1, false, false, false},
		{"on-failure", 0, false, false, false},
		{"on-failure", 3, false, false, true},
		{"on-failure", 0, true, false, true},
		{"always", 0, false, false, true},
		{"always", 1, false, true, false},
	}
	for _, c := range cases {
		if got := ShouldRestart(c.policy, c.code, c.signaled, c.stopping); got != c.want {
			t.Errorf("ShouldRestart(%q, %d, %v, %v) = %v", c.policy, c.code, c.signaled, c.stopping, got)
		}
	}
}
