package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sbx-dev/sbx/runtime/sbxinit"
	"github.com/sbx-dev/sbx/runtime/spec"
)

// shellCmd is exec of the sandbox's shell.
type shellCmd struct {
	execFlags
	Sandbox string `arg:"" help:"The running sandbox."`
}

// Run starts the image's shell: $SHELL of the sandbox's environment when set, else /bin/bash,
// else /bin/sh, the first that is there.
func (c *shellCmd) Run(a *app) error {
	req, err := c.request(a, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, rs, err := a.dialSandbox(ctx, c.Sandbox)
	if err != nil {
		return err
	}
	defer client.Close()
	shells := shellCandidates(rs, req.Env)
	reqs := make([]sbxinit.ExecRequest, len(shells))
	for i, sh := range shells {
		reqs[i] = req
		reqs[i].Argv = []string{sh}
	}
	code, err := a.attach(ctx, client, c.Sandbox, reqs, c.stdin(req))
	var re *sbxinit.RemoteError
	if errors.As(err, &re) && re.Code == exitNotFound {
		return fmt.Errorf("%s has no shell (/bin/sh not found): use sbx exec %s -- PROGRAM", c.Sandbox, c.Sandbox)
	}
	if err != nil {
		return a.startFailure(c.Sandbox, err)
	}
	return exitCodeError(code)
}

// shellCandidates are the shells to try, in order: $SHELL (set with -e, else in the
// sandbox's environment), /bin/bash, /bin/sh.
func shellCandidates(rs *spec.RunSpec, extra []string) []string {
	var shell string
	for _, env := range [][]string{rs.Process.Env, extra} {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "SHELL="); ok {
				shell = v
			}
		}
	}
	var out []string
	if shell != "" {
		out = append(out, shell)
	}
	for _, sh := range []string{"/bin/bash", "/bin/sh"} {
		if sh != shell {
			out = append(out, sh)
		}
	}
	return out
}
