package lang

import (
	"errors"
	"net/netip"
)

// Option configures Load.
type Option func(*options) error

type options struct {
	vars       map[string]string
	varFiles   []string
	environ    []string
	environSet bool
	cwd        string
	sticky     map[string]netip.Addr
}

// WithVars sets variable values given on the command line (--var name=value). For a variable
// of type string (or without a type) the raw text is the value; for any other type it is parsed
// as an HCL expression, as Terraform does for -var.
func WithVars(vars map[string]string) Option {
	return func(o *options) error {
		if o.vars == nil {
			o.vars = make(map[string]string, len(vars))
		}
		for k, v := range vars {
			if k == "" {
				return errors.New("--var: empty variable name")
			}
			o.vars[k] = v
		}
		return nil
	}
}

// WithVarFiles adds variable files (--var-file), applied in order after the auto files.
// Relative paths are resolved against the working directory (see WithCwd).
func WithVarFiles(files []string) Option {
	return func(o *options) error {
		for _, f := range files {
			if f == "" {
				return errors.New("--var-file: empty file name")
			}
		}
		o.varFiles = append(o.varFiles, files...)
		return nil
	}
}

// WithEnviron sets the environment, as KEY=VALUE strings, used for SBX_VAR_<name> and the
// env() function. The default is os.Environ().
func WithEnviron(env []string) Option {
	return func(o *options) error {
		o.environ = append([]string(nil), env...)
		o.environSet = true
		return nil
	}
}

// WithCwd sets path.cwd and the base of relative --var-file paths. The default is os.Getwd().
func WithCwd(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("working directory must not be empty")
		}
		o.cwd = dir
		return nil
	}
}

// WithStickyIPs passes the addresses allocated on earlier runs, by sandbox name (from the
// state), so that an allocated address stays stable while it remains inside the group's subnet
// and free.
func WithStickyIPs(ips map[string]netip.Addr) Option {
	return func(o *options) error {
		o.sticky = make(map[string]netip.Addr, len(ips))
		for k, v := range ips {
			o.sticky[k] = v
		}
		return nil
	}
}
