//go:build linux

package nsnet

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// portHolder finds the process that has a socket bound to port, from
// /proc/net/{tcp,udp}{,6} and the processes' file descriptors. It returns
// 0, "" when it cannot tell.
func portHolder(network string, port int) (int, string) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/thread-self/net/" + network, "/proc/thread-self/net/" + network + "6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			// TCP: only listening sockets (state 0A) hold a port for bind.
			if !ok || err != nil || int(p) != port || (network == "tcp" && fields[3] != "0A") {
				continue
			}
			inodes["socket:["+fields[9]+"]"] = true
		}
		file.Close()
	}
	if len(inodes) == 0 {
		return 0, ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		fds, err := os.ReadDir(filepath.Join(proc, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(proc, "fd", fd.Name()))
			if err != nil || !inodes[link] {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(proc))
			comm, _ := os.ReadFile(filepath.Join(proc, "comm"))
			return pid, strings.TrimSpace(string(comm))
		}
	}
	return 0, ""
}
