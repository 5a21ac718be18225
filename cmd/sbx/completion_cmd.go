package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"

	"github.com/sbx-dev/sbx/lang"
	"github.com/sbx-dev/sbx/runtime/state"
)

type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

const completionHelp = `The script completes commands, flags and the sandbox names of the current Sandboxfile.
Load it with:

  bash:  source <(sbx completion bash)       (or write it to /etc/bash_completion.d/sbx)
  zsh:   source <(sbx completion zsh)
  fish:  sbx completion fish | source        (or write it to ~/.config/fish/completions/sbx.fish)

The script calls sbx back to complete each word.`

// completionScripts register sbx (at BIN) as its own completer: the shell runs it with
// COMP_LINE set, and sbx prints the candidates (see completeCommandLine).
var completionScripts = map[string]string{
	"bash": "complete -C BIN sbx\n",
	"zsh":  "autoload -U +X bashcompinit && bashcompinit\ncomplete -C BIN sbx\n",
	"fish": `function __complete_sbx
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    BIN
end
complete -f -c sbx -a "(__complete_sbx)"
`,
}

func (c *completionCmd) Run(a *app) error {
	script, ok := completionScripts[c.Shell]
	if !ok {
		return fmt.Errorf("no completion for shell %q: use bash, zsh or fish", c.Shell)
	}
	bin, err := completerPath()
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(a.stdout, strings.ReplaceAll(script, "BIN", shellQuote(bin)))
	return err
}

// completerPath is how the script calls sbx: "sbx" when that finds this very binary on
// PATH (so a script written to a file survives upgrades), else this binary's absolute path.
func completerPath() (string, error) {
	self, err := executable()
	if err != nil {
		return "", err
	}
	if onPath, err := exec.LookPath("sbx"); err == nil {
		a, errA := os.Stat(onPath)
		b, errB := os.Stat(self)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return "sbx", nil
		}
	}
	return self, nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completeCommandLine answers a shell's completion request (COMP_LINE set by the scripts of
// sbx completion) from the kong model: commands, flags, enum values, and the sandbox names
// of the project for every argument named "sandbox". It reports whether it answered.
func completeCommandLine(parser *kong.Kong) (bool, error) {
	if os.Getenv("COMP_LINE") == "" {
		return false, nil
	}
	cmd, err := kongplete.Command(parser)
	if err != nil {
		return true, fmt.Errorf("completion: %w", err)
	}
	// A sub command's predictor sees only the words after it; the project is chosen by the
	// global flags before it, so the names come from the whole line.
	line := os.Getenv("COMP_LINE")
	if p, err := strconv.Atoi(os.Getenv("COMP_POINT")); err == nil && p >= 0 && p < len(line) {
		line = line[:p]
	}
	words := strings.Fields(line)
	if len(words) > 0 && !strings.HasSuffix(line, " ") {
		words = words[:len(words)-1] // the word being completed
	}
	predictSandboxArgs(parser.Model.Node, &cmd, complete.PredictFunc(func(complete.Args) []string {
		return sandboxNames(words)
	}))
	c := complete.New(parser.Model.Name, cmd)
	c.Out = parser.Stdout
	return c.Complete(), nil
}

// predictSandboxArgs makes every command whose arguments are sandboxes complete them with
// the names of the project's sandboxes.
func predictSandboxArgs(node *kong.Node, cmd *complete.Command, names complete.Predictor) {
	switch {
	case len(node.Positional) == 1 && node.Positional[0].Name == "sandbox":
		cmd.Args = names
	case len(node.Positional) > 1 && node.Positional[0].Name == "sandbox":
		// exec, run: the sandbox, then a command line of its own.
		cmd.Args = firstArg{names}
	}
	for _, child := range node.Children {
		sub, ok := cmd.Sub[child.Name]
		if !ok {
			continue
		}
		predictSandboxArgs(child, &sub, names)
		cmd.Sub[child.Name] = sub
	}
}

// sandboxNames lists the sandboxes of the project that the words of a command line point at
// (-C and -f are honoured): those of its Sandboxfile and those in its state. Anything
// unreadable simply completes nothing.
func sandboxNames(words []string) []string {
	dir, file := ".", lang.DefaultFilename
	seenLogs := false // after "logs", -f is --follow
	for i, w := range words {
		next := ""
		if i+1 < len(words) {
			next = words[i+1]
		}
		switch {
		case w == "logs":
			seenLogs = true
		case w == "-C" || w == "--chdir":
			dir = under(dir, next)
		case strings.HasPrefix(w, "--chdir="):
			dir = under(dir, strings.TrimPrefix(w, "--chdir="))
		case w == "--file" || (w == "-f" && !seenLogs):
			file = next
		case strings.HasPrefix(w, "--file="):
			file = strings.TrimPrefix(w, "--file=")
		}
	}
	path := under(dir, file)
	if file == lang.DefaultFilename {
		path = nearestSandboxfile(dir)
	}
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if cfg, _ := lang.Load(path); cfg != nil {
		for _, sb := range cfg.Sandboxes {
			add(sb.Name)
		}
	}
	if st, err := state.New(filepath.Dir(path)).Read(); err == nil {
		for _, n := range st.Names() {
			add(n)
		}
	}
	return names
}

// under resolves path relative to dir, as -C does.
func under(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// nearestSandboxfile is the Sandboxfile in dir or its nearest parent, as commands find it.
func nearestSandboxfile(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Join(dir, lang.DefaultFilename)
	}
	for d := abs; ; {
		candidate := filepath.Join(d, lang.DefaultFilename)
		if st, err := os.Stat(candidate); err == nil && st.Mode().IsRegular() {
			return candidate
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(abs, lang.DefaultFilename)
		}
		d = parent
	}
}

// Help is the detail shown by sbx completion --help.
func (c *completionCmd) Help() string { return completionHelp }

// firstArg predicts with p only the first positional argument of a command: later ones
// belong to the command line run inside.
type firstArg struct{ p complete.Predictor }

// Predict counts the positional words already completed, skipping flags and their values.
func (f firstArg) Predict(a complete.Args) []string {
	positional := 0
	for i := 0; i < len(a.Completed); i++ {
		w := a.Completed[i]
		switch {
		case w == "--":
			positional++
		case strings.HasPrefix(w, "-") && !strings.Contains(w, "=") && valueFlag(w):
			i++ // its value
		case strings.HasPrefix(w, "-"):
		default:
			positional++
		}
	}
	if positional > 0 {
		return nil
	}
	return f.p.Predict(a)
}

// valueFlag says whether a flag of exec or run takes a value in the next word.
func valueFlag(w string) bool {
	switch w {
	case "-u", "--user", "-w", "--workdir", "-e", "--env", "--image", "-f", "--file", "-C", "--chdir", "--var", "--var-file", "--driver", "--log-level", "--lock-timeout":
		return true
	}
	return false
}
