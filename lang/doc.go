// Package lang decodes and evaluates a Sandboxfile into resolved, typed sandbox specs (Load
// returns a Config), and owns every rule about what a Sandboxfile may say: names, values,
// duplicate ports, addresses and subnets, mount targets, image references (lang/imageref) and
// the host paths a project may use. Problems are hcl.Diagnostics with a source range.
//
// # Blocks
//
// project (name, driver, allow_host_paths), variable, locals, network, volume and sandbox. A
// volume "NAME" {} block declares a named volume, mounted with
//
//	mount {
//	  volume = volume.NAME
//	  target = "/data"
//	}
//
// A mount takes exactly one of source (a host path, relative to the Sandboxfile's directory)
// and volume. A sandbox's pids attribute limits its processes (default DefaultPids).
//
// # Variables
//
// Values come from, in increasing precedence: the default, the project's .env (DotEnvFile:
// SBX_VAR_name=value or name=value lines), the environment (SBX_VAR_name), the
// *.auto.sbxvars.hcl files (AutoVarFilePattern), --var-file and --var. See DotEnvFile.
//
// # Host paths
//
// A Sandboxfile may come from a repository someone else wrote, so it cannot take just
// anything from the host. Mounts and dir: images of sensitive paths (/etc, /proc, /sys, /dev,
// /boot, /root, /run, /var/run and docker.sock, /usr and the other system directories,
// credentials in a home directory such as ~/.ssh, ~/.aws, ~/.gnupg, ~/.kube, ~/.docker or
// ~/.config/gcloud, any directory that contains one of them such as / or ~, and the project's
// own .sbx) are refused, and so is an env_file outside the project directory, unless the
// project block lists the path, or a directory above it, in allow_host_paths:
//
//	project {
//	  allow_host_paths = ["/var/run/docker.sock", "../shared"]
//	}
//
// Paths are compared after following symlinks, so a link in the project that points to /etc
// is /etc. The project's .sbx cannot be allowed. A mount outside the project directory is
// allowed but marked (Mount.OutsideProject) so that plans can show it. file() always reads
// inside the project only.
package lang
