package planner

import (
	"fmt"
	"io"
	"testing"

	"github.com/sbx-dev/sbx/lang"
)

// benchProject returns n sandboxes in chains of ten (each depends on the previous one), with a
// port, a mount and a few env entries each; changed has half of them with one env value edited.
func benchProject(n int) (cfg, changed *lang.Config) {
	build := func(edit bool) *lang.Config {
		sbs := make([]*lang.Sandbox, n)
		for i := range n {
			name := fmt.Sprintf("sb%05d", i)
			mods := []func(*lang.Sandbox){
				env("A", "1", "B", "two", "URL", fmt.Sprintf("http://10.0.0.%d:80/", i%250)),
				port(10000+i, 80), mount(fmt.Sprintf("/data/%d", i), "/data"),
			}
			if i%10 != 0 {
				mods = append(mods, dependsOn(fmt.Sprintf("sb%05d", i-1)))
			}
			if edit && i%2 == 0 {
				mods = append(mods, env("B", "changed"))
			}
			sbs[i] = sandbox(name, mods...)
		}
		return config(sbs)
	}
	return build(false), build(true)
}

// BenchmarkCompute plans n sandboxes against a state of n, half of them changed, and renders
// the plan as text and JSON.
func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		cfg, changed := benchProject(n)
		st := applied(cfg, nil)
		obs := allStatus(st, StatusRunning)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				p, err := Compute(changed, st, WithObserved(obs))
				if err != nil {
					b.Fatal(err)
				}
				if s := p.Summary(); s.Replace != n/2 {
					b.Fatalf("summary %+v", s)
				}
			}
		})
		b.Run(fmt.Sprint(n, "+render"), func(b *testing.B) {
			for b.Loop() {
				p, _ := Compute(changed, st, WithObserved(obs))
				_ = p.Render(io.Discard, false)
				_ = p.WriteJSON(io.Discard)
			}
		})
	}
}
