package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime/diskfile"
	"github.com/sbx-dev/sbx/runtime/state"
)

// maxExits bounds the exit history kept in a record.
const maxExits = 20

// Record is what a supervisor writes about its sandbox to <dir>/supervisor.json: who it is,
// what its payload is doing, and every exit and restart. It is the supervisor's own file, so
// it is written without the project lock; readers combine it with liveness checks.
type Record struct {
	Pid        int            `json:"pid"`        // the supervisor
	StartTime  uint64         `json:"start_time"` // of the supervisor, in clock ticks since boot
	Generation int            `json:"generation"`
	Status     planner.Status `json:"status"`
	Payload    int            `json:"payload_pid,omitempty"`
	Since      time.Time      `json:"since"` // when the payload last started
	Restarts   int            `json:"restarts"`
	Exits      []Exit         `json:"exits,omitempty"` // newest last
	// Error says why the payload failed, stopped restarting, or is unready.
	Error   string    `json:"error,omitempty"`
	Updated time.Time `json:"updated"`
}

// RecordPath is the supervisor record of the sandbox directory dir.
func RecordPath(dir string) string { return filepath.Join(dir, "supervisor.json") }

// ReadRecord reads a supervisor record; a missing one is (nil, nil).
func ReadRecord(dir string) (*Record, error) {
	b, err := state.ReadFile(RecordPath(dir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read supervisor record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read supervisor record %s: %w", RecordPath(dir), err)
	}
	return &r, nil
}

// WriteRecord replaces the record atomically.
func WriteRecord(dir string, r *Record) error {
	if len(r.Exits) > maxExits {
		r.Exits = r.Exits[len(r.Exits)-maxExits:]
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the supervisor record: %w", err)
	}
	return diskfile.WriteAtomic(RecordPath(dir), append(b, '\n'), 0o600)
}
