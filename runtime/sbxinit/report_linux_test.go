package sbxinit

import (
	"encoding/json"
	"syscall"
	"testing"
)

// TestEventJSON: the init's hand-written events are what encoding/json writes and reads.
func TestEventJSON(t *testing.T) {
	for _, ev := range []Event{
		{Event: "started", Pid: 7},
		{Event: "error", Error: "user \"ghost\" not found\\ in\t/etc/passwd\n\x01 é <a&b> \u2028", Errno: syscall.ENOENT, Code: ExitSetup},
		{Event: "exit", Status: &ExitStatus{Code: 143, Signal: syscall.SIGTERM}},
		{Event: "exit", Status: &ExitStatus{}},
	} {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON:\n%s\nwant\n%s", got, want)
		}
	}
	var back Event
	if err := json.Unmarshal(Event{Event: "error", Error: "bad \xff utf-8"}.appendJSON(nil), &back); err != nil || back.Error != "bad \uFFFD utf-8" {
		t.Errorf("invalid UTF-8: %q, %v", back.Error, err)
	}
}
