package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// A Sandboxfile can come from a cloned repository, so what it may take from the host is
// limited here, the one place that decides it: mounts and dir: images of sensitive host paths
// (system directories, sockets that control the host, the user's credentials) and env_file
// outside the project directory are refused unless the project block lists them in
// allow_host_paths. Paths are compared after following symlinks, so ./link → /etc is /etc.

// hostRule is a sensitive host path. A path is refused when it is the rule's path, lies below
// it, or (unless below is set) contains it: mounting / or /home/me exposes /home/me/.ssh too.
type hostRule struct {
	path  string // absolute and clean; a "*" component matches any one name
	what  string // what it holds, for messages
	below bool   // only the path and what is below it count, not its parents
	never bool   // allow_host_paths cannot allow it
}

// systemPaths are refused with their parents and everything below them.
var systemPaths = []struct{ path, what string }{
	{"/etc", "the host's configuration"},
	{"/proc", "the host's processes"},
	{"/sys", "the host's kernel and devices"},
	{"/dev", "the host's devices"},
	{"/boot", "the host's kernel and boot loader"},
	{"/root", "the home directory of root"},
	{"/run", "the host's runtime state and control sockets"},
	{"/var/run", "the host's runtime state and control sockets (docker.sock…)"},
	{"/var/lib/docker", "Docker's containers and images"},
	{"/var/lib/containerd", "containerd's containers and images"},
	{"/var/lib/containers", "podman's containers and images"},
	{"/var/lib/kubelet", "the kubelet's secrets"},
	{"/usr", "the host's programs"},
	{"/bin", "the host's programs"},
	{"/sbin", "the host's programs"},
	{"/lib", "the host's libraries"},
	{"/lib32", "the host's libraries"},
	{"/lib64", "the host's libraries"},
	{"/libx32", "the host's libraries"},
	{"/tmp/.X11-unix", "the X server's sockets (keystrokes and screens of the desktop)"},
	{"/private/etc", "the host's configuration"},
	{"/private/var/run", "the host's runtime state and control sockets"},
	{"/private/var/root", "the home directory of root"},
}

// homePaths are relative to a home directory: $HOME, and any /home/* or /Users/*.
var homePaths = []struct{ path, what string }{
	{".ssh", "SSH keys"},
	{".gnupg", "GnuPG keys"},
	{".aws", "AWS credentials"},
	{".azure", "Azure credentials"},
	{".config/gcloud", "Google Cloud credentials"},
	{".kube", "Kubernetes credentials"},
	{".docker", "Docker's registry credentials"},
	{".config/gh", "GitHub CLI credentials"},
	{".netrc", "login credentials"},
	{".git-credentials", "Git credentials"},
	{".password-store", "a password store"},
	{".pgpass", "PostgreSQL passwords"},
	{".vault-token", "a Vault token"},
	{".npmrc", "npm registry credentials"},
	{".pypirc", "PyPI credentials"},
	{".local/share/keyrings", "the desktop keyring"},
	{".mozilla", "browser profiles"},
	{".config/google-chrome", "browser profiles"},
	{".config/chromium", "browser profiles"},
	{".local/share/sbx", "sbx's image store"},
}

// hostRules builds the rules of one load: the fixed ones, the user's home directory from the
// environment (as written and with its symlinks followed), $SBX_HOME and the project's own
// .sbx directory.
func (l *loader) hostRules() []hostRule {
	var out []hostRule
	for _, s := range systemPaths {
		out = append(out, hostRule{path: s.path, what: s.what})
	}
	var homes []string // $HOME first, so that messages name ~/.ssh rather than /home/*/.ssh
	if h := l.env["HOME"]; filepath.IsAbs(h) {
		homes = append(homes, filepath.Clean(h))
		if r := resolvePath(h); r != filepath.Clean(h) {
			homes = append(homes, r)
		}
	}
	homes = append(homes, "/home/*", "/Users/*")
	for _, h := range homes {
		for _, s := range homePaths {
			out = append(out, hostRule{path: filepath.Join(h, s.path), what: s.what})
		}
	}
	if h := l.env["SBX_HOME"]; filepath.IsAbs(h) {
		out = append(out, hostRule{path: resolvePath(h), what: "sbx's image store"})
	}
	for _, d := range []string{l.cfg.Dir, l.realDir} {
		out = append(out, hostRule{path: filepath.Join(d, ".sbx"), what: "the project's sbx state", below: true, never: true})
	}
	return out
}

// match reports how p stands to the rule: "is", "is inside" or "contains", or "".
func (r hostRule) match(p string) string {
	pc, rc := components(p), components(r.path)
	n := min(len(pc), len(rc))
	for i := 0; i < n; i++ {
		if rc[i] != "*" && rc[i] != pc[i] {
			return ""
		}
	}
	switch {
	case len(pc) == len(rc):
		return "is"
	case len(pc) > len(rc):
		return "is inside"
	case !r.below:
		return "contains"
	}
	return ""
}

func components(p string) []string {
	p = strings.Trim(filepath.Clean(p), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// resolvePath follows the symlinks of an absolute path, as far as it exists; the part that
// does not exist is kept as written. A dangling link is followed too, so a link to a missing
// /etc/x resolves to /etc/x.
func resolvePath(p string) string {
	const maxLinks = 40
	links := 0
	done := "/"
	todo := components(p)
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 || links >= maxLinks {
			done = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			done = next
			continue
		}
		links++
		if filepath.IsAbs(target) {
			done = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return done
}

// within reports whether p is dir or lies below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// hostPath is a host path a Sandboxfile asks for, checked.
type hostPath struct {
	real    string // symlinks followed
	outside bool   // outside the project directory
	allowed bool   // listed in allow_host_paths
	rule    *hostRule
	how     string // how it stands to rule
}

func (l *loader) checkHostPath(p string) hostPath {
	hp := hostPath{real: resolvePath(p)}
	hp.outside = !within(hp.real, l.realDir)
	for _, a := range l.allow {
		if within(hp.real, a) {
			hp.allowed = true
		}
	}
	for i := range l.rules {
		r := &l.rules[i]
		if !r.below && !hp.outside && r.match(l.realDir) != "" && r.match(l.realDir) != "contains" {
			// The whole project lives in this tree (a checkout in /root, say): its own files
			// are the project's, not the tree's.
			continue
		}
		if how := r.match(hp.real); how != "" {
			hp.rule, hp.how = r, how
			break
		}
		if how := r.match(p); how != "" {
			hp.rule, hp.how = r, how
			break
		}
	}
	return hp
}

// sensitive reports a sensitive host path that is not allowed; use says what asked for it
// ("mount", "image").
func (l *loader) sensitive(rng hcl.Range, use, p string, hp hostPath) bool {
	if hp.rule == nil || hp.allowed && !hp.rule.never {
		return false
	}
	if hp.rule.never {
		l.errorf(&rng, "Sensitive host path", "The %s %s is inside the project's .sbx directory, where sbx keeps the state of its sandboxes: a sandbox given it could change what sbx runs on the host. Use another directory.", use, p)
		return true
	}
	shown := p
	if hp.real != p {
		shown = fmt.Sprintf("%s (which resolves to %s)", p, hp.real)
	}
	rp := hp.rule.path
	if h := l.env["HOME"]; h != "" && within(rp, filepath.Clean(h)) && rp != filepath.Clean(h) {
		rp = "~" + strings.TrimPrefix(rp, filepath.Clean(h))
	}
	what := fmt.Sprintf("%s %s, which holds %s", hp.how, rp, hp.rule.what)
	if hp.how == "is" {
		what = "holds " + hp.rule.what
	}
	l.errorf(&rng, "Sensitive host path", "The %s %s %s: a sandbox given it could read secrets or take over the host. Use a path inside the project directory; if the sandbox really needs it, list it in the project block: allow_host_paths = [%q].",
		use, shown, what, p)
	return true
}

// decodeAllowHostPaths reads project { allow_host_paths = [...] }: absolute paths, or
// relative to the Sandboxfile's directory.
func (l *loader) decodeAllowHostPaths(a *hcl.Attribute) {
	paths, ok := l.strList(a, stageBase, nil, "")
	if !ok {
		return
	}
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			l.errorf(a.Expr.Range().Ptr(), "Invalid allow_host_paths", "allow_host_paths lists host paths, like \"/srv/shared\"; an empty one allows nothing.")
			continue
		}
		abs := l.abs(p)
		l.cfg.Project.AllowHostPaths = append(l.cfg.Project.AllowHostPaths, abs)
		l.allow = append(l.allow, resolvePath(abs))
	}
}

// SensitiveHostPath says why a Sandboxfile in projectDir may not mount the host path p
// unless allow_host_paths lists it, or "" when it may: the same rules a load applies, for
// tools that write Sandboxfiles (sbx import) and must not add that consent on their own. env
// supplies HOME and SBX_HOME.
func SensitiveHostPath(p, projectDir string, env map[string]string) string {
	if env == nil {
		env = map[string]string{}
	}
	l := &loader{cfg: &Config{Dir: filepath.Clean(projectDir)}, env: env, realDir: resolvePath(projectDir)}
	l.rules = l.hostRules()
	hp := l.checkHostPath(filepath.Clean(p))
	if hp.rule == nil {
		return ""
	}
	if hp.how == "is" {
		return "it holds " + hp.rule.what
	}
	return fmt.Sprintf("it %s %s, which holds %s", hp.how, hp.rule.path, hp.rule.what)
}
