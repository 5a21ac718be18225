// Package planner turns a resolved Sandboxfile (lang.Config) and the state of the last apply
// (State) into a Plan: the ordered steps that would make the machine match the file.
//
// Computing a plan has no side effects: nothing is pulled, written, started or created. What
// the planner needs to know about the machine comes in as data (Observed statuses, image
// Digests) or through the small Machine interface, implemented in runtime/state.
package planner

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/sbx-dev/sbx/lang"
)

// Action is what a step does to a sandbox.
type Action string

// Actions, in the order a plan lists them.
const (
	ActionDestroy Action = "destroy" // in the state, no longer in the Sandboxfile
	ActionCreate  Action = "create"  // in the Sandboxfile, not in the state
	ActionReplace Action = "replace" // a field that forces replacement changed
	ActionStart   Action = "start"   // unchanged but not running (stopped or crashed)
	ActionUpdate  Action = "update"  // only fields applied in place changed (watch): the record is rewritten, nothing restarts
)

// Plan is what sbx up would do: the steps, in the order they would be applied, each with the
// steps it waits for, and the state it was computed from. It is a value: computing it changed
// nothing, and applying it to a state with another lineage or serial must be refused (Stale).
type Plan struct {
	// Lineage and Serial identify the state the plan was computed from.
	Lineage string
	Serial  uint64
	// Targets are the sandboxes named on the command line, as given; NoDeps tells whether
	// their dependencies were left out. No targets means the whole Sandboxfile.
	Targets []string
	NoDeps  bool
	// Steps are ordered: destroys in reverse dependency order, then the other actions in
	// dependency order, ties by name. Sandboxes with nothing to do have no step.
	Steps []Step
	// Problems are the static checks that failed; a plan with problems must not be applied.
	Problems []Problem
	// Selected are the sandboxes of the Sandboxfile the plan is about: every one, or the
	// targets and (unless NoDeps) their dependencies; in dependency order.
	Selected []string
}

// Step is one action on one sandbox. A sandbox has at most one step per plan, so steps are
// named by their sandbox.
type Step struct {
	Sandbox string
	Action  Action
	// Reason says why, in words: "not in the Sandboxfile", "crashed: supervisor pid 412 is
	// gone", "stopped"… Empty for a create.
	Reason string
	// Status is the observed status of the sandbox before the step; "" for a create.
	Status Status
	// Changes are the changed fields of a replace or update, ordered by field.
	Changes []Change
	// DependsOn names the steps of this plan that must be done before this one, sorted.
	DependsOn []string
	// Desired is the spec to apply (nil for a destroy); Prior is the state record (nil for a
	// create). ImageDigest is the known digest of the desired image, or "".
	Desired     *lang.Sandbox
	Prior       *Record
	ImageDigest string
	// Discards names the data the step deletes, for the plan to say so before it happens:
	// DiscardWritableLayer when a replace changes the image under the writable layer.
	Discards []string
}

// DiscardWritableLayer is what a replace onto another image deletes: every file written
// inside the sandbox since it was created (its overlay's upper layer).
const DiscardWritableLayer = "writable layer"

// DiscardConsoleLog is what a destroy deletes besides the writable layer.
const DiscardConsoleLog = "console log"

// Change is one changed field of a sandbox.
type Change struct {
	Field string
	// Old and New are the values as shown in plans; nil when the field was not declared.
	// Both are nil when Sensitive.
	Old, New          any
	Sensitive         bool
	ForcesReplacement bool
}

// Problem is a static check that failed: the plan cannot be applied as it is.
type Problem struct {
	Sandbox string
	Field   string // "ports[0]", "mounts[1]", "network.ip"…
	Message string
	// Range is the range of the sandbox block, to point diagnostics at the Sandboxfile.
	Range hcl.Range
}

// String is the problem in one line, naming the sandbox and field.
func (p Problem) String() string {
	return fmt.Sprintf("sandbox %q, %s: %s", p.Sandbox, p.Field, p.Message)
}

// ProblemsError is returned by Plan.Err when static checks failed.
type ProblemsError struct {
	Problems []Problem
}

// Error lists the problems.
func (e *ProblemsError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "the plan cannot be applied: " + strings.Join(parts, "; ")
}

// Machine answers the questions about the host that static checks need. runtime/state has the
// real implementation; the planner itself never touches the machine.
type Machine interface {
	// PortInUse reports whether hostIP:port/proto is bound by some process.
	PortInUse(hostIP string, port int, proto string) bool
	// PathExists reports whether the host path exists.
	PathExists(path string) bool
}

// Option configures Compute.
type Option func(*options) error

type options struct {
	targets  []string
	noDeps   bool
	observed Observed
	digests  map[string]string
	driver   string
	machine  Machine
}

// WithTargets limits the plan to the named sandboxes and, unless WithNoDeps, their
// dependencies. A name that is in the state but no longer in the Sandboxfile targets its destroy.
func WithTargets(names ...string) Option {
	return func(o *options) error {
		for _, n := range names {
			if n == "" {
				return errors.New("empty target name")
			}
		}
		o.targets = append(o.targets, names...)
		return nil
	}
}

// WithNoDeps leaves the dependencies of the targets out of the plan.
func WithNoDeps(noDeps bool) Option {
	return func(o *options) error { o.noDeps = noDeps; return nil }
}

// WithObserved gives the statuses observed on the machine (see runtime/state.Observe).
// Without it, the statuses recorded in the state are trusted.
func WithObserved(obs Observed) Option {
	return func(o *options) error { o.observed = obs; return nil }
}

// WithDigests gives the manifest digests known locally, by image reference. A known digest
// that differs from the recorded one replaces the sandbox (field image_digest).
func WithDigests(digests map[string]string) Option {
	return func(o *options) error { o.digests = digests; return nil }
}

// WithDriver names the driver the sandboxes are to run on. A recorded sandbox running on
// another driver is replaced (field "driver"); without the option, drivers are not compared.
func WithDriver(name string) Option {
	return func(o *options) error { o.driver = name; return nil }
}

// WithMachine enables the checks that need the machine: host ports bound by other processes
// and mount sources that do not exist.
func WithMachine(m Machine) Option {
	return func(o *options) error { o.machine = m; return nil }
}

// Compute computes the plan that makes the machine match cfg, given st, the state of the last
// apply (nil when there is none). It has no side effects. Errors are a *CycleError, an
// *UnknownSandboxError for a bad target, or a bad option; failed static checks are not errors
// but Plan.Problems.
func Compute(cfg *lang.Config, st *State, opts ...Option) (*Plan, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
	}
	if st == nil {
		st = NewState()
	}
	g, err := NewGraph(cfg)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}

	// Orphans: in the state, not in the file.
	var orphans []string
	for _, n := range st.Names() {
		if !g.Has(n) {
			orphans = append(orphans, n)
		}
	}

	// Selection.
	selected := g.order
	selOrphans := orphans
	if len(o.targets) > 0 {
		var inFile []string
		selOrphans = nil
		for _, t := range o.targets {
			switch {
			case g.Has(t):
				inFile = append(inFile, t)
			case st.Record(t) != nil:
				selOrphans = append(selOrphans, t)
			default:
				return nil, fmt.Errorf("plan: %w", &UnknownSandboxError{Name: t, Suggestion: suggest(t, append(g.Names(), orphans...))})
			}
		}
		slices.Sort(selOrphans)
		selOrphans = slices.Compact(selOrphans)
		if selected, err = g.Closure(inFile, o.noDeps); err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
	}

	p := &Plan{
		Selected: slices.Clone(selected),
		Lineage:  st.Lineage,
		Serial:   st.Serial,
		Targets:  slices.Clone(o.targets),
		NoDeps:   o.noDeps && len(o.targets) > 0,
	}
	status := func(name string) Status {
		if s, ok := o.observed[name]; ok && s != "" {
			return s
		}
		if r := st.Record(name); r != nil && r.Status != "" {
			return r.Status
		}
		return StatusUnknown
	}

	// Destroys, in reverse dependency order of the orphans.
	destroys, err := destroySteps(st, selOrphans, status)
	if err != nil {
		return nil, err
	}
	p.Steps = append(p.Steps, destroys...)
	// Non-destroy steps without an in-plan dependency wait for the destroys that end the destroy
	// phase (those no other destroy waits for), so every destroy is done before anything starts.
	var lastDestroys []string
	waited := map[string]bool{}
	for _, s := range destroys {
		for _, d := range s.DependsOn {
			waited[d] = true
		}
	}
	for _, s := range destroys {
		if !waited[s.Sandbox] {
			lastDestroys = append(lastDestroys, s.Sandbox)
		}
	}
	slices.Sort(lastDestroys)

	byName := make(map[string]*lang.Sandbox, len(cfg.Sandboxes))
	for _, s := range cfg.Sandboxes {
		byName[s.Name] = s
	}
	inPlan := map[string]bool{}
	for _, name := range selected {
		sb := byName[name]
		step, ok := diff(sb, st.Record(name), status(name), o.digests[sb.Image], o.driver)
		if !ok {
			continue
		}
		for _, d := range g.deps[name] {
			if inPlan[d] {
				step.DependsOn = append(step.DependsOn, d)
			}
		}
		if len(step.DependsOn) == 0 {
			step.DependsOn = slices.Clone(lastDestroys)
		}
		inPlan[name] = true
		p.Steps = append(p.Steps, step)
	}

	p.Problems = checks(cfg, st, p.Steps, status, o.machine)
	return p, nil
}

// destroySteps orders the destroys of orphans: an orphan goes before the orphans it depended on.
func destroySteps(st *State, orphans []string, status func(string) Status) ([]Step, error) {
	if len(orphans) == 0 {
		return nil, nil
	}
	deps := map[string][]string{}
	isOrphan := map[string]bool{}
	for _, n := range orphans {
		isOrphan[n] = true
	}
	for _, n := range orphans {
		for _, d := range st.Sandboxes[n].Dependencies {
			if isOrphan[d] {
				deps[n] = append(deps[n], d)
			}
		}
	}
	og, err := newGraph(orphans, deps)
	if err != nil {
		return nil, fmt.Errorf("plan: sandboxes recorded in the state: %w", err)
	}
	order := og.Order()
	slices.Reverse(order)
	steps := make([]Step, 0, len(order))
	for _, n := range order {
		steps = append(steps, Step{
			Sandbox:   n,
			Action:    ActionDestroy,
			Reason:    "not in the Sandboxfile",
			Status:    status(n),
			DependsOn: og.Dependents(n),
			Prior:     st.Sandboxes[n],
			Discards:  []string{DiscardWritableLayer, DiscardConsoleLog},
		})
	}
	return steps, nil
}

// diff compares the desired spec of a sandbox with its record and returns its step, or false
// when there is nothing to do.
func diff(sb *lang.Sandbox, rec *Record, status Status, digest, driver string) (Step, bool) {
	step := Step{Sandbox: sb.Name, Desired: sb, Prior: rec, ImageDigest: digest}
	if rec == nil {
		step.Action = ActionCreate
		return step, true
	}
	step.Status = status

	desired := fields(sb)
	var changed []string
	seen := make(map[string]bool, len(desired))
	for _, f := range desired {
		seen[f.path] = true
		if old, ok := rec.Fingerprints[f.path]; !ok || old != f.fingerprint() {
			changed = append(changed, f.path)
		}
	}
	for path := range rec.Fingerprints {
		if !seen[path] {
			changed = append(changed, path)
		}
	}
	digestChanged := digest != "" && rec.ImageDigest != "" && digest != rec.ImageDigest
	driverChanged := driver != "" && rec.Driver != "" && driver != rec.Driver

	if len(changed) > 0 || digestChanged || driverChanged {
		step.Changes = changes(desired, sb, rec, changed)
		if digestChanged {
			step.Changes = append(step.Changes, Change{Field: FieldImageDigest, Old: rec.ImageDigest, New: digest, ForcesReplacement: true})
		}
		if driverChanged {
			step.Changes = append(step.Changes, Change{Field: FieldDriver, Old: rec.Driver, New: driver, ForcesReplacement: true})
		}
		slices.SortFunc(step.Changes, func(a, b Change) int { return compareFields(a.Field, b.Field) })
		step.Action = ActionUpdate
		for _, c := range step.Changes {
			if c.ForcesReplacement {
				step.Action = ActionReplace
				step.Reason = replaceReason(len(changed) > 0, digestChanged, driverChanged)
				break
			}
		}
	}
	if step.Action == ActionReplace {
		for _, c := range step.Changes {
			if c.Field == FieldImage || c.Field == FieldImageDigest {
				step.Discards = []string{DiscardWritableLayer}
				break
			}
		}
		if !status.Live() {
			step.Reason = "spec changed; " + statusReason(rec, status)
		}
		return step, true
	}
	if !status.Live() {
		// A start rewrites the record too, so in-place changes ride along.
		step.Action = ActionStart
		step.Reason = statusReason(rec, status)
		return step, true
	}
	if step.Action == ActionUpdate {
		step.Reason = "watch changed; applied in place, no restart"
		return step, true
	}
	return step, false
}

// replaceReason says why a sandbox is replaced: its declared spec, its image's digest (a
// rebuilt or re-pulled image), its driver.
func replaceReason(spec, digest, driver bool) string {
	var why []string
	if spec {
		why = append(why, "spec changed")
	}
	if digest {
		why = append(why, "image digest")
	}
	if driver {
		why = append(why, "driver")
	}
	return strings.Join(why, ", ")
}

// statusReason says why a sandbox is not running.
func statusReason(rec *Record, status Status) string {
	if status == StatusCrashed {
		if rec.Pid > 0 && rec.Status == StatusRunning {
			return fmt.Sprintf("crashed: supervisor pid %d is gone", rec.Pid)
		}
		return "crashed"
	}
	return string(status)
}

// changes returns the Change of each changed field path.
func changes(desired []field, sb *lang.Sandbox, rec *Record, paths []string) []Change {
	newVals := make(map[string]any, len(desired))
	for _, f := range desired {
		newVals[f.path] = f.value
	}
	oldVals := rec.Spec.values()
	out := make([]Change, 0, len(paths))
	for _, path := range paths {
		c := Change{Field: path, ForcesReplacement: forcesReplacement(path)}
		if isSensitive(path, sb.Sensitive) || isSensitive(path, rec.Spec.Sensitive) {
			c.Sensitive = true
		} else {
			c.Old, c.New = oldVals[path], newVals[path]
		}
		out = append(out, c)
	}
	return out
}

// compareFields orders field paths as fields lists them: by the field's rank, then by key or
// numeric index.
func compareFields(a, b string) int {
	ra, ka, ia := fieldRank(a)
	rb, kb, ib := fieldRank(b)
	switch {
	case ra != rb:
		return ra - rb
	case ia != ib:
		return ia - ib
	}
	return strings.Compare(ka, kb)
}

// fieldOrder lists the base field paths in the order plans show them.
func fieldOrder() []string {
	return []string{FieldImage, FieldImageDigest, FieldCPUs, FieldMemory, FieldPids, FieldEntrypoint, FieldCommand, FieldWorkdir,
		"env", FieldEnvFiles, FieldUser, "rlimits", FieldMounts, FieldPorts, FieldNetScope, FieldNetGroup,
		FieldNetIP, FieldRestart, FieldStopTimeout, FieldReady, FieldDependsOn, FieldWatch, FieldDriver,
	}
}

func fieldRank(path string) (rank int, key string, index int) {
	base, key := path, ""
	if i := strings.IndexByte(path, '['); i >= 0 {
		base = path[:i]
		fmt.Sscanf(path[i:], "[%d]", &index)
	} else if strings.HasPrefix(path, FieldEnvPrefix) || strings.HasPrefix(path, FieldRlimPrefix) {
		i := strings.IndexByte(path, '.')
		base, key = path[:i], path[i+1:]
	}
	order := fieldOrder()
	if r := slices.Index(order, base); r >= 0 {
		return r, key, index
	}
	return len(order), path, index
}

// Summary counts the steps of a plan by action.
type Summary struct {
	Create, Replace, Destroy, Start, Update int
}

// Summary counts the steps by action.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, st := range p.Steps {
		switch st.Action {
		case ActionCreate:
			s.Create++
		case ActionReplace:
			s.Replace++
		case ActionDestroy:
			s.Destroy++
		case ActionStart:
			s.Start++
		case ActionUpdate:
			s.Update++
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool { return len(p.Steps) > 0 }

// ExitCode is the exit code of sbx plan --detailed-exitcode: 0 without changes, 2 with changes.
// (Errors, including Problems, are exit code 1 and are the caller's to report.)
func (p *Plan) ExitCode() int {
	if p.HasChanges() {
		return 2
	}
	return 0
}

// Err returns a *ProblemsError when static checks failed, or nil.
func (p *Plan) Err() error {
	if len(p.Problems) == 0 {
		return nil
	}
	return &ProblemsError{Problems: slices.Clone(p.Problems)}
}

// Diagnostics returns the problems as error diagnostics on the sandbox blocks, for the CLI to
// print like any other Sandboxfile diagnostic.
func (p *Plan) Diagnostics() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, pr := range p.Problems {
		d := &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Cannot apply sandbox %q", pr.Sandbox),
			Detail:   pr.Field + ": " + pr.Message,
		}
		if pr.Range.Filename != "" {
			rng := pr.Range
			d.Subject = &rng
		}
		diags = append(diags, d)
	}
	return diags
}

// ErrStalePlan is wrapped by Stale's errors.
var ErrStalePlan = errors.New("stale plan")

// Stale returns an error wrapping ErrStalePlan when st is not the state the plan was computed
// from: applying it would act on what the plan did not see.
func (p *Plan) Stale(st *State) error {
	lineage, serial := "", uint64(0)
	if st != nil {
		lineage, serial = st.Lineage, st.Serial
	}
	if lineage != p.Lineage || serial != p.Serial {
		return fmt.Errorf("%w: computed from state serial %d, the state is now at serial %d (lineage %s); plan again",
			ErrStalePlan, p.Serial, serial, orNone(lineage))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Step returns the step of the sandbox name, or nil.
func (p *Plan) Step(name string) *Step {
	for i := range p.Steps {
		if p.Steps[i].Sandbox == name {
			return &p.Steps[i]
		}
	}
	return nil
}

// Nodes returns the steps as nodes for Walk.
func (p *Plan) Nodes() []Node {
	nodes := make([]Node, len(p.Steps))
	for i, s := range p.Steps {
		nodes[i] = Node{Name: s.Sandbox, DependsOn: s.DependsOn}
	}
	return nodes
}
