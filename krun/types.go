package krun

import (
	"fmt"
	"strconv"
)

// LogLevel is libkrun's log verbosity (krun_set_log_level).
type LogLevel uint32

// Log levels, as libkrun numbers them.
const (
	LogOff LogLevel = iota
	LogError
	LogWarn
	LogInfo
	LogDebug
	LogTrace
)

// Scope is the TSI network scope of krun_set_tsi_scope.
type Scope uint8

// Network scopes, as microsandbox's libkrun numbers them.
const (
	// ScopeNone blocks all IP communication.
	ScopeNone Scope = 0
	// ScopeGroup allows communication within the subnet only.
	ScopeGroup Scope = 1
	// ScopePublic allows public addresses only (no private, loopback or
	// link-local ranges).
	ScopePublic Scope = 2
	// ScopeAny allows any address.
	ScopeAny Scope = 3
)

var scopeNames = [...]string{"none", "group", "public", "any"}

// String returns the scope's name ("none", "group", "public", "any").
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}

// ParseScope parses a scope name.
func ParseScope(name string) (Scope, error) {
	for i, n := range scopeNames {
		if n == name {
			return Scope(i), nil
		}
	}
	return 0, fmt.Errorf("unknown network scope %q (want none, group, public or any): %w", name, ErrInvalidArgument)
}

// MarshalText encodes the scope by name.
func (s Scope) MarshalText() ([]byte, error) {
	if int(s) >= len(scopeNames) {
		return nil, fmt.Errorf("invalid scope %d: %w", s, ErrInvalidArgument)
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a scope name.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// PortMapping maps a host TCP port to a guest TCP port (krun_set_port_map).
type PortMapping struct {
	Host  uint16 `json:"host"`
	Guest uint16 `json:"guest"`
}

// String returns the "host:guest" form libkrun expects.
func (p PortMapping) String() string {
	return strconv.Itoa(int(p.Host)) + ":" + strconv.Itoa(int(p.Guest))
}

// RlimInfinity is RLIM_INFINITY.
const RlimInfinity = ^uint64(0)

// Rlimit is one resource limit for the guest (krun_set_rlimits).
type Rlimit struct {
	// Resource is the RLIMIT_* number, e.g. 7 for RLIMIT_NOFILE on Linux.
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// String returns the "RESOURCE=CUR:MAX" form libkrun expects.
func (r Rlimit) String() string {
	return strconv.Itoa(r.Resource) + "=" + strconv.FormatUint(r.Cur, 10) + ":" + strconv.FormatUint(r.Max, 10)
}

// Feature is a build-time feature of libkrun (krun_has_feature).
type Feature uint64

// Features, as libkrun.h numbers them.
const (
	FeatureNet              Feature = 0
	FeatureBlk              Feature = 1
	FeatureGPU              Feature = 2
	FeatureInput            Feature = 4
	FeatureTEE              Feature = 6
	FeatureAMDSEV           Feature = 7
	FeatureIntelTDX         Feature = 8
	FeatureAWSNitro         Feature = 9
	FeatureVirglResourceMap Feature = 10
	FeatureInitBlob         Feature = 11
)

var featureNames = map[Feature]string{
	FeatureNet:              "NET",
	FeatureBlk:              "BLK",
	FeatureGPU:              "GPU",
	FeatureInput:            "INPUT",
	FeatureTEE:              "TEE",
	FeatureAMDSEV:           "AMD_SEV",
	FeatureIntelTDX:         "INTEL_TDX",
	FeatureAWSNitro:         "AWS_NITRO",
	FeatureVirglResourceMap: "VIRGL_RESOURCE_MAP2",
	FeatureInitBlob:         "INIT_BLOB",
}

// featureOptions are the make variables of libkrun's build that turn a
// feature on, where they differ from the feature's name.
var featureOptions = map[Feature]string{
	FeatureAMDSEV:   "SEV=1",
	FeatureIntelTDX: "TDX=1",
	FeatureAWSNitro: "NITRO=1",
	FeatureTEE:      "SEV=1 or TDX=1",
	FeatureInitBlob: "(on by default)",
}

// Features lists every feature krun_has_feature knows, in number order.
func Features() []Feature {
	return []Feature{FeatureNet, FeatureBlk, FeatureGPU, FeatureInput, FeatureTEE, FeatureAMDSEV,
		FeatureIntelTDX, FeatureAWSNitro, FeatureVirglResourceMap, FeatureInitBlob}
}

// String returns libkrun's name of the feature, e.g. "NET".
func (f Feature) String() string {
	if n, ok := featureNames[f]; ok {
		return n
	}
	return "feature(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// BuildOption returns the libkrun build option that enables the feature,
// e.g. "NET=1" (make NET=1).
func (f Feature) BuildOption() string {
	if o, ok := featureOptions[f]; ok {
		return o
	}
	return f.String() + "=1"
}

// Tap is one virtio-net device backed by a host tap device
// (krun_add_net_tap). In the guest the devices are eth0, eth1, … in order.
type Tap struct {
	// Name is the host tap device, which must exist (e.g. created by the
	// caller on a bridge).
	Name string `json:"name"`
	// MAC is the guest NIC's address, "aa:bb:cc:dd:ee:ff".
	MAC string `json:"mac"`
}

// VsockPort connects a guest vsock port to a host unix socket
// (krun_add_vsock_port2).
type VsockPort struct {
	Port uint32 `json:"port"`
	// Path is the host unix socket.
	Path string `json:"path"`
	// Listen is set when the guest listens and the host connects: libkrun
	// then creates the socket at Path.
	Listen bool `json:"listen,omitempty"`
}
