package image

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Option configures a Store.
type Option func(*options) error

type options struct {
	insecure     map[string]bool
	keychain     authn.Keychain
	transport    http.RoundTripper
	platform     v1.Platform
	jobs         int
	maxUnpack    func(compressed int64) int64
	unprivileged bool
	logger       *slog.Logger
	idle         time.Duration
	// portable makes the unpacker use its portable resolver and fsyncs
	// (see unpacker.portable): always where there is no openat2, and on
	// Linux only when a test asks for it.
	portable bool
}

func defaultOptions() options {
	return options{
		insecure:  map[string]bool{},
		keychain:  authn.DefaultKeychain,
		transport: http.DefaultTransport,
		platform:  v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		jobs:      4,
		maxUnpack: DefaultMaxUnpackSize,
		logger:    slog.New(slog.DiscardHandler),
		idle:      DefaultIdleTimeout,
		portable:  !haveOpenat2,
	}
}

// DefaultMaxUnpackSize is the default limit on a layer's decompressed size:
// ten times its compressed size plus 1 GiB.
func DefaultMaxUnpackSize(compressed int64) int64 {
	return 10*compressed + 1<<30
}

// WithInsecureRegistries lets the store speak plain HTTP to the listed
// registries ("host" or "host:port"), as with --insecure-registry.
// localhost and loopback addresses never need to be listed.
func WithInsecureRegistries(registries []string) Option {
	return func(o *options) error {
		for _, r := range registries {
			if r == "" {
				return errors.New("insecure registry: empty name")
			}
			o.insecure[r] = true
		}
		return nil
	}
}

// WithKeychain replaces authn.DefaultKeychain (the user's Docker config and
// credential helpers) as the source of registry credentials.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("keychain: nil")
		}
		o.keychain = k
		return nil
	}
}

// WithTransport sets the HTTP transport used to reach registries.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("transport: nil")
		}
		o.transport = t
		return nil
	}
}

// WithPlatform sets the platform a multi-platform index resolves to; the
// default is linux and the architecture sbx was built for.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q: os and architecture are required", p.String())
		}
		o.platform = p
		return nil
	}
}

// WithConcurrency bounds how many layers are downloaded and unpacked at
// once (default 4).
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("concurrency %d: must be at least 1", n)
		}
		o.jobs = n
		return nil
	}
}

// WithMaxUnpackSize sets the limit on a layer's decompressed size as a
// function of its compressed size (see DefaultMaxUnpackSize). A layer over
// the limit is refused.
func WithMaxUnpackSize(limit func(compressed int64) int64) Option {
	return func(o *options) error {
		if limit == nil {
			return errors.New("max unpack size: nil")
		}
		o.maxUnpack = limit
		return nil
	}
}

// WithUnprivileged makes the store unpack as an unprivileged user would,
// even when running as root: no device nodes, no ownership changes and
// whiteouts in the xattr form (see the package documentation).
func WithUnprivileged() Option {
	return func(o *options) error {
		o.unprivileged = true
		return nil
	}
}

// WithIdleTimeout sets how long a registry may send nothing (no response
// yet, or no more of a body being read) before the request is abandoned
// (default DefaultIdleTimeout, 30 s). A layer download that stalls is
// resumed where it broke off (an HTTP Range request), and the pull fails
// with an error wrapping ErrStalled, naming the blob and the registry,
// when maxResumes attempts in a row receive nothing.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("idle timeout %s: must be positive", d)
		}
		o.idle = d
		return nil
	}
}

// WithLogger sets the logger for diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger: nil")
		}
		o.logger = l
		return nil
	}
}

// DefaultRoot returns the store's default root directory: $SBX_HOME, else
// $XDG_DATA_HOME/sbx, else $HOME/.local/share/sbx. getenv is usually
// os.Getenv.
func DefaultRoot(getenv func(string) string) (string, error) {
	if d := getenv("SBX_HOME"); d != "" {
		return filepath.Abs(d)
	}
	if d := getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "sbx"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("image store: neither SBX_HOME, XDG_DATA_HOME nor HOME is set: set SBX_HOME to a directory for sbx's images")
	}
	return filepath.Join(home, ".local", "share", "sbx"), nil
}
