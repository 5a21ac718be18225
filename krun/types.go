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
