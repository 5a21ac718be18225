package runtime

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/sbx-dev/sbx/lang"
)

// ImageConfig is the part of an OCI image config that decides how a sandbox runs.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

// RunSpec is everything a driver needs to start one sandbox: the declared spec, the image on
// disk and the process resolved from both. The supervisor reads it from the sandbox directory.
type RunSpec struct {
	Project string `json:"project"`
	// Dir is the sandbox's directory, .sbx/sandboxes/<name>: writable layer, console log,
	// supervisor record.
	Dir        string       `json:"dir"`
	Driver     string       `json:"driver"`
	Generation int          `json:"generation"`
	Sandbox    lang.Sandbox `json:"sandbox"`

	ImageDigest string      `json:"image_digest,omitempty"`
	Layers      []string    `json:"layers,omitempty"`   // image layer directories, bottom to top
	RootDir     string      `json:"root_dir,omitempty"` // a dir: image, used read-only
	Image       ImageConfig `json:"image"`

	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Workdir string   `json:"workdir"`
	User    string   `json:"user,omitempty"`

	// Subnet is the group's subnet when the sandbox is in one; Peers are the other sandboxes
	// of that group, name -> IP, for /etc/hosts.
	Subnet netip.Prefix      `json:"subnet,omitzero"`
	Peers  map[string]string `json:"peers,omitempty"`
}

// defaultPath is the PATH a sandbox gets when neither its image nor its spec sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrNoCommand means neither the Sandboxfile nor the image says what to run.
var ErrNoCommand = errors.New("no command to run: the image has no ENTRYPOINT or CMD; set command (or entrypoint) in the Sandboxfile")

// ResolveProcess merges a sandbox's declared process with its image's config, the way
// container engines do: a declared entrypoint replaces the image's ENTRYPOINT and drops its
// CMD; a declared command replaces CMD only; env is the image's Env with the declared values
// over it; workdir and user fall back to the image's.
func ResolveProcess(sb *lang.Sandbox, img ImageConfig) (argv, env []string, workdir, user string, err error) {
	switch {
	case sb.Entrypoint != nil:
		argv = append(append([]string{}, sb.Entrypoint...), sb.Command...)
	case sb.Command != nil:
		argv = append(append([]string{}, img.Entrypoint...), sb.Command...)
	default:
		argv = append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, nil, "", "", ErrNoCommand
	}
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	keys := make([]string, 0, len(sb.Env))
	for k := range sb.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set(k, sb.Env[k])
	}
	if _, ok := vars["PATH"]; !ok {
		env = append(env, defaultPath)
	}
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	workdir = sb.Workdir
	if workdir == "" {
		workdir = img.WorkingDir
	}
	if workdir == "" {
		workdir = "/"
	}
	user = sb.User
	if user == "" {
		user = img.User
	}
	return argv, env, workdir, user, nil
}

// Gateway is the first host address of a subnet: the bridge's address on the host side.
func Gateway(p netip.Prefix) (netip.Addr, error) {
	if !p.IsValid() {
		return netip.Addr{}, fmt.Errorf("no subnet")
	}
	return p.Masked().Addr().Next(), nil
}
