package sbxinit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Credentials are a resolved user: ids and home directory.
type Credentials struct {
	IDs
	Home string
}

// ResolveUser turns a User into credentials, reading the sandbox's passwd and group files
// (either may be nil when the image has none). Numeric users need no passwd entry, as with
// Docker; a name that is not there is an error saying so.
func ResolveUser(u User, passwd, group io.Reader) (Credentials, error) {
	if u.IDs != nil {
		ids := *u.IDs
		if len(ids.Groups) == 0 {
			ids.Groups = []uint32{ids.GID}
		}
		home := "/"
		if users, err := parsePasswd(passwd); err == nil {
			for _, e := range users {
				if e.uid == ids.UID && e.home != "" {
					home = e.home
					break
				}
			}
		}
		return Credentials{IDs: ids, Home: home}, nil
	}
	users, err := parsePasswd(passwd)
	if err != nil {
		return Credentials{}, fmt.Errorf("read /etc/passwd: %w", err)
	}
	groups, err := parseGroup(group)
	if err != nil {
		return Credentials{}, fmt.Errorf("read /etc/group: %w", err)
	}
	spec := u.Spec
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	res := Credentials{Home: "/"}
	var name string
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		res.UID = uint32(n)
		for _, e := range users {
			if e.uid == res.UID {
				name, res.GID, res.Home = e.name, e.gid, e.home
				break
			}
		}
	} else {
		found := false
		for _, e := range users {
			if e.name == userPart {
				name, res.UID, res.GID, res.Home, found = e.name, e.uid, e.gid, e.home, true
				break
			}
		}
		if !found {
			return Credentials{}, fmt.Errorf("user %q not found in the image's /etc/passwd: use a numeric uid or add the user to the image", userPart)
		}
	}
	if hasGroup {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			res.GID = uint32(n)
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					res.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return Credentials{}, fmt.Errorf("group %q not found in the image's /etc/group: use a numeric gid or add the group to the image", groupPart)
			}
		}
	}
	// Supplementary groups come only with a named user and an unforced group, as with
	// Docker; the primary group is always one of them.
	res.Groups = []uint32{res.GID}
	if name != "" && !hasGroup {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != res.GID {
					res.Groups = append(res.Groups, g.gid)
				}
			}
		}
	}
	if res.Home == "" {
		res.Home = "/"
	}
	return res, nil
}

// resolveUserFiles resolves u against the files under root ("/" in the sandbox).
func resolveUserFiles(root string, u User) (Credentials, error) {
	var passwd, group io.Reader
	if f, err := os.Open(root + "etc/passwd"); err == nil {
		defer f.Close()
		passwd = f
	}
	if f, err := os.Open(root + "etc/group"); err == nil {
		defer f.Close()
		group = f
	}
	return ResolveUser(u, passwd, group)
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// parsePasswd reads passwd(5) lines, skipping malformed ones as libc does.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 6 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	})
	return out, err
}

// parseGroup reads group(5) lines, skipping malformed ones.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

func eachLine(r io.Reader, fn func([]string)) error {
	if r == nil {
		return nil
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}
