package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
	"github.com/sbx-dev/sbx/runtime/state"
)

type lsCmd struct {
	JSON bool `help:"Print one JSON object per project, in an array."`
}

// lsRow is one project in sbx ls; its JSON form is the --json schema.
type lsRow struct {
	Name      string         `json:"name"`
	Dir       string         `json:"dir"`
	Sandboxes int            `json:"sandboxes"`
	States    map[string]int `json:"states"` // planner.Status -> how many sandboxes are in it
	Error     string         `json:"error,omitempty"`
}

// Help is the detail of sbx ls --help.
func (lsCmd) Help() string {
	return `Projects are found through the image store ($SBX_HOME), where every 'sbx up' registers its
project; projects whose directory or state is gone are left out.`
}

func (c *lsCmd) Run(a *app) error {
	root, err := image.DefaultRoot(os.Getenv)
	if err != nil {
		return err
	}
	dirs, err := runtime.Projects(root)
	if err != nil {
		return err
	}
	rows := []lsRow{}
	for _, dir := range dirs {
		if row, ok := lsProject(dir); ok {
			rows = append(rows, row)
		}
	}
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "No project on this machine has sandboxes: 'sbx up' in a project's directory starts them.")
		return nil
	}
	table := [][]string{{"NAME", "SANDBOXES", "STATE", "DIRECTORY"}}
	for _, r := range rows {
		summary := stateSummary(r.States)
		if r.Error != "" {
			summary = "unreadable state: " + r.Error
		}
		table = append(table, []string{r.Name, strconv.Itoa(r.Sandboxes), summary, r.Dir})
	}
	writeTable(a.stdout, table, func(row, col int, cell string) string { return cell })
	return nil
}

// lsProject describes the project in dir; ok is false when it has no state or no sandbox.
func lsProject(dir string) (lsRow, bool) {
	row := lsRow{Name: projectName(dir), Dir: dir, States: map[string]int{}}
	store := state.New(dir)
	if _, err := os.Stat(store.StatePath()); err != nil {
		return row, false
	}
	st, err := store.Read()
	if err != nil {
		row.Error = err.Error()
		return row, true
	}
	if len(st.Names()) == 0 {
		return row, false
	}
	obs := runtime.NewProject("", dir).Observe(st)
	for _, name := range st.Names() {
		row.Sandboxes++
		row.States[string(obs[name])]++
	}
	return row, true
}

// projectName is the name the project's Sandboxfile gives it, else its directory's name.
func projectName(dir string) string {
	if cfg, _ := lang.Load(filepath.Join(dir, lang.DefaultFilename)); cfg != nil && cfg.Project.Name != "" {
		return cfg.Project.Name
	}
	return filepath.Base(dir)
}

// stateSummary is "2 ready, 1 exited": the counts, live states first, in the order of
// planner's vocabulary.
func stateSummary(states map[string]int) string {
	order := []planner.Status{
		planner.StatusReady, planner.StatusRunning, planner.StatusStarting, planner.StatusUnready,
		planner.StatusRestarting, planner.StatusStopping, planner.StatusUnknown,
		planner.StatusStopped, planner.StatusExited, planner.StatusFailed, planner.StatusCrashed,
	}
	var parts []string
	seen := map[string]bool{}
	for _, s := range order {
		if n := states[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
			seen[string(s)] = true
		}
	}
	var rest []string
	for s := range states {
		if !seen[s] {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	for _, s := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", states[s], s))
	}
	return strings.Join(parts, ", ")
}
