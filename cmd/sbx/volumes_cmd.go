package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/image"
)

type volumesCmd struct {
	JSON bool `name:"json" help:"Print the volumes as JSON."`
}

// volumeRow is one volume as sbx volumes shows it.
type volumeRow struct {
	Name     string   `json:"name"`
	Bytes    int64    `json:"bytes"`
	Dir      string   `json:"dir"`
	Declared bool     `json:"declared"` // in the Sandboxfile
	UsedBy   []string `json:"used_by"`  // sandboxes of the Sandboxfile mounting it
}

// Run lists the project's named volumes: the ones on disk and the ones the Sandboxfile
// declares (not created until a sandbox using them starts).
func (c *volumesCmd) Run(a *app) error {
	dir, err := a.projectDir()
	if err != nil {
		return err
	}
	p := runtime.NewProject("", dir)
	onDisk, err := p.Volumes()
	if err != nil {
		return err
	}
	rows := map[string]*volumeRow{}
	for _, v := range onDisk {
		rows[v.Name] = &volumeRow{Name: v.Name, Bytes: v.Bytes, Dir: v.Dir, UsedBy: []string{}}
	}
	if cfg, err := a.loadQuiet(); err == nil && cfg != nil {
		for _, v := range cfg.Volumes {
			if rows[v.Name] == nil {
				rows[v.Name] = &volumeRow{Name: v.Name, UsedBy: []string{}}
			}
			rows[v.Name].Declared = true
		}
		for _, s := range cfg.Sandboxes {
			for _, m := range s.Mounts {
				if r := rows[m.Volume]; m.Volume != "" && r != nil {
					r.UsedBy = append(r.UsedBy, s.Name)
				}
			}
		}
	}
	out := make([]volumeRow, 0, len(rows))
	for _, n := range sortedNames(rows) {
		out = append(out, *rows[n])
	}
	if c.JSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(out) == 0 {
		fmt.Fprintln(a.stdout, "No volumes: declare one with volume \"NAME\" {} and mount it with mount { volume = volume.NAME, target = \"/data\" }.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tUSED BY\tDIRECTORY")
	for _, r := range out {
		size, where := image.HumanBytes(r.Bytes), r.Dir
		if r.Dir == "" {
			size, where = "-", "(created when a sandbox using it starts)"
		}
		used := strings.Join(r.UsedBy, ", ")
		if !r.Declared {
			used = "(no longer in the Sandboxfile)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, size, used, where)
	}
	return tw.Flush()
}
