// Package compose turns Compose files into a Sandboxfile. Files are read with compose-spec's
// own loader (github.com/compose-spec/compose-go/v2, the one docker compose uses), so
// interpolation, .env files, extends, profiles and the merging of several files behave exactly
// as in Compose; this package only maps the loaded project onto Sandboxfile blocks, and lists
// in Notes whatever has no equivalent.
package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sbx-dev/sbx/convert"
	"github.com/sbx-dev/sbx/convert/sandboxfile"
)

// Option configures Import.
type Option func(*options) error

type options struct {
	environ     []string
	environSet  bool
	envFiles    []string
	profiles    []string
	projectName string
	workingDir  string
	outDir      string
}

// WithEnviron sets the environment used for interpolation, as KEY=VALUE strings. The default
// is os.Environ(), as in docker compose.
func WithEnviron(env []string) Option {
	return func(o *options) error {
		o.environ = append([]string(nil), env...)
		o.environSet = true
		return nil
	}
}

// WithEnvFiles names the .env files read for interpolation (docker compose --env-file). The
// default is the .env file of the project directory, when there is one.
func WithEnvFiles(files ...string) Option {
	return func(o *options) error {
		for _, f := range files {
			if f == "" {
				return errors.New("--env-file: empty file name")
			}
		}
		o.envFiles = append(o.envFiles, files...)
		return nil
	}
}

// WithProfiles activates Compose profiles (docker compose --profile).
func WithProfiles(profiles ...string) Option {
	return func(o *options) error {
		o.profiles = append(o.profiles, profiles...)
		return nil
	}
}

// WithProjectName sets the Compose project name (docker compose -p); the default is the file's
// name: key, or the project directory's name.
func WithProjectName(name string) Option {
	return func(o *options) error {
		if name != loader.NormalizeProjectName(name) {
			return fmt.Errorf("project name %q: use lower-case letters, digits, dashes and underscores, starting with a letter or digit", name)
		}
		o.projectName = name
		return nil
	}
}

// WithWorkingDir sets the project directory (docker compose --project-directory); the default is
// the directory of the first file.
func WithWorkingDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("project directory must not be empty")
		}
		o.workingDir = dir
		return nil
	}
}

// WithOutputDir names the directory the Sandboxfile is written to: host paths (mount sources,
// env files) are written relative to it. The default is the project directory.
func WithOutputDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("output directory must not be empty")
		}
		o.outDir = dir
		return nil
	}
}

// Result is an imported Sandboxfile and what could not be carried over.
type Result struct {
	File  *sandboxfile.File
	Notes []convert.Note
}

// Bytes is the Sandboxfile's text.
func (r *Result) Bytes() []byte { return r.File.Bytes() }

// ErrNothingUsable is returned (wrapped) when no service could become a sandbox; the Result
// still carries the notes that say why.
var ErrNothingUsable = errors.New("nothing to import")

// Import reads the Compose files (later ones override earlier ones, as with docker compose -f
// a.yml -f b.yml) and converts the project. A nil error may come with notes; ErrNothingUsable
// comes with a Result whose notes say why.
func Import(ctx context.Context, files []string, opts ...Option) (*Result, error) {
	if len(files) == 0 {
		return nil, errors.New("no Compose file given")
	}
	cfgs := make([]types.ConfigFile, len(files))
	for i, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		data, err := convert.ReadFile(abs)
		if err != nil {
			return nil, fmt.Errorf("read Compose file: %w", err)
		}
		cfgs[i] = types.ConfigFile{Filename: abs, Content: data}
	}
	return load(ctx, cfgs, opts)
}

// ImportBytes converts one Compose file given as data; name is used in messages and its
// directory is the project directory unless WithWorkingDir says otherwise.
func ImportBytes(ctx context.Context, name string, data []byte, opts ...Option) (*Result, error) {
	if len(data) > convert.MaxInputSize {
		return nil, fmt.Errorf("read Compose file: %s: %w", name, convert.ErrTooLarge)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return load(ctx, []types.ConfigFile{{Filename: abs, Content: data}}, opts)
}

func load(ctx context.Context, files []types.ConfigFile, opts []Option) (res *Result, err error) {
	for _, f := range files {
		if err := convert.CheckYAML(f.Content, filepath.Base(f.Filename)); err != nil {
			return nil, fmt.Errorf("load %w", err)
		}
	}
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.workingDir == "" {
		o.workingDir = filepath.Dir(files[0].Filename)
	}
	if o.workingDir, err = filepath.Abs(o.workingDir); err != nil {
		return nil, err
	}
	if o.outDir == "" {
		o.outDir = o.workingDir
	}
	if o.outDir, err = filepath.Abs(o.outDir); err != nil {
		return nil, err
	}
	if !o.environSet {
		o.environ = os.Environ()
	}
	env := types.Mapping{}
	for _, kv := range o.environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	dotEnv := o.envFiles
	if len(dotEnv) == 0 {
		if st, err := os.Stat(filepath.Join(o.workingDir, ".env")); err == nil && st.Mode().IsRegular() {
			dotEnv = []string{filepath.Join(o.workingDir, ".env")}
		}
	}
	for i, f := range dotEnv {
		if !filepath.IsAbs(f) {
			dotEnv[i] = filepath.Join(o.workingDir, f)
		}
	}
	if len(dotEnv) > 0 {
		vals, err := dotenv.GetEnvFromFile(env, dotEnv)
		if err != nil {
			return nil, fmt.Errorf("read .env file: %w", err)
		}
		env.Merge(vals)
	}
	// compose-go is robust code, but the input is anything a user points us at: a panic deep in
	// a third-party parser must become an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("load %s: the Compose loader failed on this input (%v); check that it is a valid Compose file with 'docker compose config'", files[0].Filename, r)
		}
	}()
	name := o.projectName
	project, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  o.workingDir,
		ConfigFiles: files,
		Environment: env,
	}, func(lo *loader.Options) {
		if name != "" {
			lo.SetProjectName(name, true)
		} else {
			lo.SetProjectName(loader.NormalizeProjectName(filepath.Base(o.workingDir)), false)
		}
		lo.Profiles = o.profiles
		if len(o.profiles) == 0 && env["COMPOSE_PROFILES"] != "" {
			for _, p := range strings.Split(env["COMPOSE_PROFILES"], ",") {
				lo.Profiles = append(lo.Profiles, strings.TrimSpace(p))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", displayNames(files), err)
	}
	c := &converter{opts: o, project: project, files: files}
	return c.convert()
}

func displayNames(files []types.ConfigFile) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f.Filename)
	}
	return strings.Join(names, ", ")
}
