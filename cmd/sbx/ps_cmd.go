package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
	"github.com/sbx-dev/sbx/runtime"
)

type psCmd struct {
	All  bool `short:"a" help:"Show every sandbox, also those that do not run (stopped, exited, failed, crashed)."`
	JSON bool `help:"Print one JSON object per sandbox, in an array: every sandbox, running or not (filter on state)."`
}

// psRow is one sandbox in sbx ps; its JSON form is the --json schema.
type psRow struct {
	Name     string    `json:"name"`
	State    string    `json:"state"` // a planner.Status: starting, running, ready, unready, restarting, stopping, stopped, exited, failed, crashed
	Pid      int       `json:"pid,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Uptime   string    `json:"uptime,omitempty"`
	Ports    []string  `json:"ports"`
	Image    string    `json:"image"`
	Digest   string    `json:"image_digest,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Restarts int       `json:"restarts"`
	Exit     string    `json:"last_exit,omitempty"`
	// Reason says why an unready sandbox is not ready: its probe's last failure.
	Reason string `json:"reason,omitempty"`
	// Health is the ready probe's verdict on a running payload: "ready", "unready" (see
	// Reason) or "starting" (not passed yet, since Since); empty without a probe or payload.
	Health string `json:"health,omitempty"`
}

func (c *psCmd) Run(a *app) error {
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	now := time.Now()
	rows, err := psRows(dir, now)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "No sandboxes: 'sbx up' starts them.")
		return nil
	}
	shown, hidden := rows, []psRow(nil)
	if !c.All {
		shown = nil
		for _, r := range rows {
			if planner.Status(r.State).Live() {
				shown = append(shown, r)
			} else {
				hidden = append(hidden, r)
			}
		}
	}
	if len(shown) > 0 {
		table := [][]string{{"NAME", "STATE", "HEALTH", "PID", "UPTIME", "PORTS", "IMAGE", "RESTARTS"}}
		for _, r := range shown {
			table = append(table, psTableRow(r, now))
		}
		writeTable(a.stdout, table, func(row, col int, cell string) string {
			if row > 0 && (col == 1 || col == 2) {
				return a.stateColor(cell)
			}
			return cell
		})
	}
	if len(hidden) > 0 {
		var names []string
		for _, r := range hidden {
			names = append(names, r.Name+" ("+r.State+")")
		}
		lead := "Not running: "
		if len(shown) == 0 {
			lead = "No sandbox runs: "
		}
		fmt.Fprintf(a.stdout, "%s%s; 'sbx ps -a' shows them.\n", lead, strings.Join(names, ", "))
	}
	return nil
}

// psTableRow is the text form of a row: a running payload is "running" with its probe's
// verdict under HEALTH, and the last exit stands next to the restarts that followed it.
func psTableRow(r psRow, now time.Time) []string {
	pid := "-"
	if r.Pid != 0 {
		pid = strconv.Itoa(r.Pid)
	}
	img := r.Image
	if r.Digest != "" {
		img += "@" + shortDigest(r.Digest)
	}
	state := r.State
	switch {
	case r.Health != "":
		state = string(planner.StatusRunning)
	case r.Exit != "" && !planner.Status(r.State).Live():
		state += " (" + r.Exit + ")"
	}
	health := "-"
	switch r.Health {
	case string(planner.StatusUnready):
		health = "unready"
		if r.Reason != "" {
			health += ": " + r.Reason
		}
	case string(planner.StatusStarting):
		health = "starting"
		if !r.Since.IsZero() {
			health += " " + humanDuration(now.Sub(r.Since))
		}
	case string(planner.StatusReady):
		health = "ready"
	}
	if r.Health == "" && r.Reason != "" {
		health = r.Reason
	}
	restarts := strconv.Itoa(r.Restarts)
	if r.Restarts > 0 && r.Exit != "" {
		restarts += " (last: " + r.Exit + ")"
	}
	return []string{r.Name, state, health, pid, orDash(r.Uptime), orDash(strings.Join(r.Ports, ",")), img, restarts}
}

// writeTable prints rows in columns two spaces apart, sized by their plain text, so that
// colouring a cell (paint) never shifts the columns after it.
func writeTable(w io.Writer, rows [][]string, paint func(row, col int, cell string) string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for ri, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(paint(ri, i, c))
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

func (a *app) stateColor(s string) string {
	switch {
	case strings.HasPrefix(s, "ready"), strings.HasPrefix(s, "running"):
		return a.paint(a.color, green, s)
	case strings.HasPrefix(s, "crashed"), strings.HasPrefix(s, "failed"), strings.HasPrefix(s, "exited"), strings.HasPrefix(s, "unready"):
		return a.paint(a.color, red, s)
	case strings.HasPrefix(s, "starting"), strings.HasPrefix(s, "restarting"), strings.HasPrefix(s, "stopping"):
		return a.paint(a.color, yellow, s)
	}
	return s
}

// psRows derives each sandbox's state from the state file, the liveness of its supervisor
// (pid and start time) and the supervisor's own record — never from a record alone.
func psRows(dir string, now time.Time) ([]psRow, error) {
	st, obs, err := observed(dir)
	if err != nil {
		return nil, err
	}
	p := runtime.NewProject("", dir)
	rows := []psRow{}
	for _, name := range st.Names() {
		rec := st.Record(name)
		sup, _ := runtime.ReadRecord(p.SandboxDir(name))
		row := psRow{Name: name, Image: rec.Spec.Image, Digest: rec.ImageDigest, Ports: ports(rec.Spec.Ports)}
		if rec.IP.IsValid() {
			row.IP = rec.IP.String()
		}
		if sup != nil && sup.Pid == rec.Pid {
			row.Restarts = sup.Restarts
			if n := len(sup.Exits); n > 0 {
				row.Exit = exitText(sup.Exits[n-1])
			}
		}
		row.State = string(psState(obs[name], rec, sup))
		if row.State == string(planner.StatusUnready) && sup != nil {
			row.Reason = sup.Error
		}
		if sup != nil && sup.Pid == rec.Pid && sup.Payload != 0 {
			switch st := planner.Status(row.State); st {
			case planner.StatusReady, planner.StatusUnready:
				row.Health = string(st)
			case planner.StatusStarting:
				if sup.Status == planner.StatusStarting { // the payload runs; its probe has not passed yet
					row.Health = string(st)
				}
			}
		}
		if obs[name].Live() {
			row.Pid = rec.Pid
			if sup != nil && sup.Pid == rec.Pid && !sup.Since.IsZero() && sup.Payload != 0 {
				row.Since = sup.Since
				row.Uptime = humanDuration(now.Sub(sup.Since))
			}
		}
		rows = append(rows, row)
	}
	// Sandboxes that run without a record here (their .sbx/ was removed): down stops them.
	for _, r := range p.Running() {
		if rec := st.Record(r.Name); rec != nil && rec.Pid == r.Pid {
			continue
		}
		rows = append(rows, psRow{Name: r.Name, State: string(planner.StatusRunning), Pid: r.Pid, Ports: []string{}, Image: r.Spec.Image.Ref,
			Reason: "runs without a record in .sbx/ (was it removed?): 'sbx down' stops it"})
	}
	return rows, nil
}

// psState is the sandbox's status in the shared vocabulary (planner.Status), from what was
// observed on the machine; a sandbox whose supervisor has not written its record yet is
// starting.
func psState(observed planner.Status, rec *planner.Record, sup *runtime.Record) planner.Status {
	if observed.Live() && observed != planner.StatusUnknown && (sup == nil || sup.Pid != rec.Pid) {
		return planner.StatusStarting
	}
	return observed
}

func ports(ps []planner.Port) []string {
	out := []string{}
	for _, p := range ps {
		s := fmt.Sprintf("%s:%d->%d", p.HostIP, p.Host, p.Guest)
		if p.Protocol == "udp" {
			s += "/udp"
		}
		out = append(out, s)
	}
	return out
}

func exitText(e runtime.Exit) string {
	switch {
	case e.Signal != "":
		return e.Signal
	case e.Err != "":
		return "lost"
	}
	return "exit " + strconv.Itoa(e.Code)
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func sortStrings(s []string) { sort.Strings(s) }

// printStatus prints one line per sandbox of cfg after an apply: its state and ports.
func (a *app) printStatus(dir string, cfg *lang.Config) error {
	rows, err := psRows(dir, time.Now())
	if err != nil {
		return err
	}
	for _, r := range rows {
		if cfg.Sandbox(r.Name) == nil {
			continue
		}
		line := fmt.Sprintf("  %-16s %s%s", r.Name, a.stateColor(r.State), strings.Repeat(" ", max(1, 11-len(r.State))))
		if len(r.Ports) > 0 {
			line += "  " + strings.Join(r.Ports, ", ")
		}
		if r.IP != "" {
			line += "  ip " + r.IP
		}
		fmt.Fprintln(a.stdout, line)
	}
	return nil
}
