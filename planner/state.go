package planner

import (
	"net/netip"
	"slices"
	"time"

	"github.com/sbx-dev/sbx/lang"
)

// StateVersion is the version of the state document this sbx writes and the newest it reads.
// It changes only when an older sbx would misread the new document.
const StateVersion = 1

// State is the state document (.sbx/state.json): what sbx last applied, per sandbox.
//
// The JSON encoding is the on-disk format:
//
//	{
//	  "version": 1,                 // StateVersion; a newer version is refused, never overwritten
//	  "lineage": "5b0c…",           // random id given on the first write, kept for the project's life
//	  "serial": 7,                  // incremented by every write
//	  "sandboxes": { "db": Record, … }
//	}
//
// runtime/state reads and writes it; the planner only reads it.
type State struct {
	Version   int                `json:"version"`
	Lineage   string             `json:"lineage"`
	Serial    uint64             `json:"serial"`
	Sandboxes map[string]*Record `json:"sandboxes"`
}

// NewState returns the empty state of a project that has never been applied.
func NewState() *State {
	return &State{Version: StateVersion, Sandboxes: map[string]*Record{}}
}

// Names returns the names of the sandboxes in the state, sorted.
func (s *State) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.Sandboxes))
	for n := range s.Sandboxes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Record returns the record of the sandbox named name, or nil.
func (s *State) Record(name string) *Record {
	if s == nil {
		return nil
	}
	return s.Sandboxes[name]
}

// AllocatedIPs returns the addresses recorded for sandboxes whose IP was allocated rather than
// declared, by sandbox name, so that the allocator can hand each sandbox the same address again.
func (s *State) AllocatedIPs() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	if s == nil {
		return out
	}
	for name, r := range s.Sandboxes {
		if r.Spec.Network.IPAllocated && r.Spec.Network.IP.IsValid() {
			out[name] = r.Spec.Network.IP
		}
	}
	return out
}

// Observed is the status of each state record as checked on the machine, by sandbox name.
// A record missing from it keeps its recorded Status.
type Observed map[string]Status

// Record is the state of one applied sandbox.
type Record struct {
	Name string `json:"name"`
	// Spec is the declared spec that was applied, kept so a plan can show old → new values.
	// Values of the fields listed in Spec.Sensitive are replaced by "(sensitive)": the state
	// never holds a secret in clear, and Spec is for display only (Fingerprints decide).
	Spec lang.Sandbox `json:"spec"`
	// Dependencies are the sandboxes this one depended on (depends_on and references), sorted,
	// so that an orphan is destroyed before the sandboxes it used.
	Dependencies []string `json:"dependencies,omitempty"`
	// Fingerprints maps each field path of the declared spec ("image", "env.PGUSER",
	// "mounts[0]"…) to the hex sha256 of the canonical JSON of its value.
	Fingerprints map[string]string `json:"fingerprints"`
	// ImageDigest is the manifest digest of the image the sandbox was started from.
	ImageDigest string `json:"image_digest,omitempty"`
	// Driver is the driver that runs the sandbox ("krun" or "ns").
	Driver string `json:"driver,omitempty"`
	// IP is the address the sandbox has in its network group, if any.
	IP netip.Addr `json:"ip,omitzero"`
	// Pid and StartTime identify the sandbox's supervisor process: StartTime is field 22 of
	// /proc/<pid>/stat (clock ticks since boot), so a reused pid is never taken for it.
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	// Status is the last status the runtime recorded.
	Status Status `json:"status"`
	// Generation counts the times the sandbox was created or replaced; 1 for the first.
	Generation int `json:"generation"`

	CreatedAt time.Time `json:"created_at,omitzero"` // the first create
	UpdatedAt time.Time `json:"updated_at,omitzero"` // the last write of this record
	StartedAt time.Time `json:"started_at,omitzero"` // the last start of the supervisor
}

// NewRecord returns the record of sandbox sb as it is being applied: its redacted spec, its
// dependencies, its fingerprints and the image digest. The runtime fills in the process fields,
// status, generation and timestamps.
func NewRecord(sb *lang.Sandbox, dependencies []string, imageDigest string) *Record {
	fs := fields(sb)
	fps := make(map[string]string, len(fs))
	for _, f := range fs {
		fps[f.path] = f.fingerprint()
	}
	var ip netip.Addr
	if sb.Network.IP.IsValid() {
		ip = sb.Network.IP
	}
	return &Record{
		Name:         sb.Name,
		Spec:         redact(sb),
		Dependencies: slices.Clone(dependencies),
		Fingerprints: fps,
		ImageDigest:  imageDigest,
		IP:           ip,
	}
}
