package planner_test

import (
	"fmt"
	"os"
	"time"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/planner"
)

// A plan as sbx plan computes it: the config from lang.Load, the state from runtime/state
// (Store.Read, with state.Observe for the statuses), and the local image digests.
func ExampleCompute() {
	db := &lang.Sandbox{Name: "db", Image: "docker.io/library/postgres:16", CPUs: 1, MemoryMiB: 512,
		Network: lang.NetworkSpec{Scope: lang.ScopePublic}, Restart: lang.RestartNo, StopTimeout: 10 * time.Second}
	cfg := &lang.Config{Sandboxes: []*lang.Sandbox{db}}

	// The state after the last apply, recorded with 1 CPU.
	st := planner.NewState()
	st.Sandboxes["db"] = planner.NewRecord(db, nil, "sha256:1111")
	st.Sandboxes["db"].Status = planner.StatusRunning

	edited := *db
	edited.CPUs = 2
	cfg.Sandboxes = []*lang.Sandbox{&edited}
	p, err := planner.Compute(cfg, st,
		planner.WithObserved(planner.Observed{"db": planner.StatusRunning}),
		planner.WithDigests(map[string]string{"docker.io/library/postgres:16": "sha256:1111"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Render(os.Stdout, false)
	fmt.Println("exit code:", p.ExitCode())
	// Output:
	// -/+ replace sandbox.db (spec changed)
	//     cpus: 1 → 2  # forces replacement
	//
	// Plan: 0 to create, 1 to replace, 0 to destroy, 0 to start.
	// exit code: 2
}
