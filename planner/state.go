package planner

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/sbx-dev/sbx/lang"
)

// StateVersion is the version of the state document this sbx writes and the newest it reads.
// It changes only when an older sbx would misread the new document.
//
// Version 2 keeps each record's spec as planner-owned display values (RecordSpec) instead of
// lang's Sandbox, so lang's types are free to change; version 1 documents are still read.
const StateVersion = 2

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
		if r.Spec.AllocatedIP.IsValid() {
			out[name] = r.Spec.AllocatedIP
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
	Spec RecordSpec `json:"spec"`
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

// RecordSpec is what the state keeps of an applied spec: the value of each declared field as
// plans show it (redacted), and the few facts other commands read back.
type RecordSpec struct {
	Image     string   `json:"image"`
	Ports     []Port   `json:"ports,omitempty"`
	Sensitive []string `json:"sensitive,omitempty"` // field paths whose values are hidden
	// IP is the sandbox's address when it was allocated (not declared), so the next plan
	// hands it the same one.
	AllocatedIP netip.Addr    `json:"allocated_ip,omitzero"`
	StopTimeout time.Duration `json:"stop_timeout"`
	// Fields maps each field path ("image", "env.PGUSER", "mounts[0]"…) to its value as plans
	// show it, as JSON; "(sensitive)" for sensitive values.
	Fields map[string]json.RawMessage `json:"fields"`
}

// Port is a published port as the state records it.
type Port struct {
	HostIP   string `json:"host_ip"`
	Host     int    `json:"host"`
	Guest    int    `json:"guest"`
	Protocol string `json:"protocol"`
}

// SpecOf returns the record spec of sb, redacted.
func SpecOf(sb *lang.Sandbox) RecordSpec {
	r := redact(sb)
	rs := RecordSpec{Image: r.Image, StopTimeout: r.StopTimeout, Sensitive: slices.Clone(sb.Sensitive), Fields: map[string]json.RawMessage{}}
	if sb.Network.IPAllocated {
		rs.AllocatedIP = sb.Network.IP
	}
	for _, p := range r.Ports {
		rs.Ports = append(rs.Ports, Port(portValue(p)))
	}
	for _, f := range fields(&r) {
		b, err := json.Marshal(f.value)
		if err != nil {
			b = []byte(`"?"`)
		}
		rs.Fields[f.path] = b
	}
	return rs
}

// values returns the record's field values for display: nil for an undeclared one.
func (rs *RecordSpec) values() map[string]any {
	m := make(map[string]any, len(rs.Fields))
	for k, v := range rs.Fields {
		if string(v) == "null" {
			m[k] = nil
			continue
		}
		m[k] = v
	}
	return m
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
		Spec:         SpecOf(sb),
		Dependencies: slices.Clone(dependencies),
		Fingerprints: fps,
		ImageDigest:  imageDigest,
		IP:           ip,
	}
}

// DecodeState decodes a state document of a version this sbx reads: the current one, or
// version 1, whose records kept lang's Sandbox as their spec (converted here).
func DecodeState(b []byte, version int) (*State, error) {
	st := NewState()
	if version >= 2 {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, err
		}
		return st, nil
	}
	type v1Record struct {
		Record
		Spec lang.Sandbox `json:"spec"`
	}
	var v1 struct {
		Version   int                  `json:"version"`
		Lineage   string               `json:"lineage"`
		Serial    uint64               `json:"serial"`
		Sandboxes map[string]*v1Record `json:"sandboxes"`
	}
	if err := json.Unmarshal(b, &v1); err != nil {
		return nil, err
	}
	st.Version, st.Lineage, st.Serial = v1.Version, v1.Lineage, v1.Serial
	for name, r := range v1.Sandboxes {
		if r == nil {
			st.Sandboxes[name] = nil
			continue
		}
		rec := r.Record
		rec.Spec = SpecOf(&r.Spec)
		st.Sandboxes[name] = &rec
	}
	return st, nil
}
