package lang

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// parseMemory turns a memory size into MiB. A number is a count of MiB. A string is a number
// (decimals allowed) followed by a unit; all units are binary: "M", "MB", "MiB" mean 2^20 bytes
// and "G", "GB", "GiB" mean 2^30 bytes ("T", "TB", "TiB" 2^40). A string without a unit is MiB.
func parseMemory(v cty.Value) (int, error) {
	if v.Type() == cty.Number {
		f, _ := v.AsBigFloat().Float64()
		if f != math.Trunc(f) || f < 1 || f > 1<<24 {
			return 0, fmt.Errorf("%s is not a whole number of MiB between 1 and %d", v.AsBigFloat().Text('g', -1), 1<<24)
		}
		return int(f), nil
	}
	if v.Type() != cty.String {
		return 0, fmt.Errorf("a string like \"512MiB\" or a number of MiB is required, not %s", v.Type().FriendlyName())
	}
	s := strings.TrimSpace(v.AsString())
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size; use a number followed by MiB or GiB, like \"512MiB\" or \"2GiB\"", s)
	}
	var mult float64
	switch unit {
	case "", "m", "mb", "mib":
		mult = 1
	case "g", "gb", "gib":
		mult = 1024
	case "t", "tb", "tib":
		mult = 1024 * 1024
	default:
		return 0, fmt.Errorf("%q has an unknown unit %q; use MiB or GiB (M/MB and G/GB are accepted and also mean 2^20 and 2^30 bytes)", s, strings.TrimSpace(s[i:]))
	}
	mib := f * mult
	if mib != math.Trunc(mib) || mib < 1 || mib > 1<<24 {
		return 0, fmt.Errorf("%q is not a whole number of MiB between 1 MiB and 16 TiB", s)
	}
	return int(mib), nil
}

// parseDuration accepts Go duration syntax ("10s", "1m30s").
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; use a number with a unit, like \"10s\", \"500ms\" or \"1m30s\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// rlimitNames maps the canonical Linux resource names to their numbers.
func rlimitNames() []string {
	return []string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
		"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}
}

// rlimitInfinity is RLIM_INFINITY on Linux.
const rlimitInfinity = math.MaxUint64

// parseRlimitName accepts "nofile", "NOFILE", "RLIMIT_NOFILE" or the number "7".
func parseRlimitName(s string) (string, int, error) {
	names := rlimitNames()
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n >= len(names) {
			return "", 0, fmt.Errorf("resource number %d is not a Linux rlimit (0..%d)", n, len(names)-1)
		}
		return names[n], n, nil
	}
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "RLIMIT_")
	for i, n := range names {
		if n == u {
			return n, i, nil
		}
	}
	msg := fmt.Sprintf("unknown resource limit %q; valid names are %s", s, strings.Join(names, ", "))
	if sug := didYouMean(u, names); sug != "" {
		msg = fmt.Sprintf("unknown resource limit %q. Did you mean %q?", s, sug)
	}
	return "", 0, fmt.Errorf("%s", msg)
}

// parseRlimitValue accepts a number (soft and hard), "soft:hard", "n", "unlimited" or
// "infinity".
func parseRlimitValue(v cty.Value) (soft, hard uint64, err error) {
	if v.Type() == cty.Number {
		bf := v.AsBigFloat()
		if !bf.IsInt() || bf.Sign() < 0 {
			return 0, 0, fmt.Errorf("%s is not a non-negative integer", bf.Text('g', -1))
		}
		n, acc := bf.Uint64()
		if acc != big.Exact {
			return 0, 0, fmt.Errorf("%s is too large", bf.Text('g', -1))
		}
		return n, n, nil
	}
	if v.Type() != cty.String {
		return 0, 0, fmt.Errorf("a number or a string \"soft:hard\" is required, not %s", v.Type().FriendlyName())
	}
	s := strings.TrimSpace(v.AsString())
	one := func(p string) (uint64, error) {
		p = strings.TrimSpace(p)
		switch strings.ToLower(p) {
		case "unlimited", "infinity":
			return rlimitInfinity, nil
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a limit; use a number, \"unlimited\", or \"soft:hard\"", s)
		}
		return n, nil
	}
	a, b, found := strings.Cut(s, ":")
	if soft, err = one(a); err != nil {
		return 0, 0, err
	}
	if !found {
		return soft, soft, nil
	}
	if hard, err = one(b); err != nil {
		return 0, 0, err
	}
	if soft > hard {
		return 0, 0, fmt.Errorf("soft limit %s is above the hard limit %s", a, b)
	}
	return soft, hard, nil
}

// dotenvEntry is one KEY=VALUE of a dotenv file, with the line it starts on.
type dotenvEntry struct {
	key, val string
	line     int
}

// parseDotenv parses a dotenv file into a map; a later key wins. See parseDotenvEntries.
func parseDotenv(data []byte) (map[string]string, error) {
	entries, err := parseDotenvEntries(data)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.key] = e.val
	}
	return out, nil
}

// dotenvError is a syntax error of a dotenv file at a line.
type dotenvError struct {
	line int
	msg  string
}

func (e *dotenvError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// parseDotenvEntries parses a dotenv file as Compose does: KEY=VALUE lines, optional "export ",
// '#' comments, blank lines, single quotes (literal) and double quotes (with \n \t \" \\
// escapes, may span lines). Unquoted values end at " #". No variable expansion is done.
func parseDotenvEntries(data []byte) ([]dotenvEntry, error) {
	var out []dotenvEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimSpace(rest)
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !validEnvKey(key) {
			return nil, &dotenvError{lineNo, "expected KEY=VALUE"}
		}
		val = strings.TrimSpace(val)
		start := lineNo
		switch {
		case strings.HasPrefix(val, "'"):
			end := strings.Index(val[1:], "'")
			if end < 0 {
				return nil, &dotenvError{start, "unterminated single quote"}
			}
			val = val[1 : end+1]
		case strings.HasPrefix(val, `"`):
			raw := val[1:]
			var b strings.Builder
			closed := false
			for !closed {
				for i := 0; i < len(raw); i++ {
					c := raw[i]
					if c == '\\' && i+1 < len(raw) {
						i++
						switch raw[i] {
						case 'n':
							b.WriteByte('\n')
						case 't':
							b.WriteByte('\t')
						case 'r':
							b.WriteByte('\r')
						default:
							b.WriteByte(raw[i])
						}
						continue
					}
					if c == '"' {
						closed = true
						break
					}
					b.WriteByte(c)
				}
				if closed {
					break
				}
				if !sc.Scan() {
					return nil, &dotenvError{start, "unterminated double quote"}
				}
				lineNo++
				b.WriteByte('\n')
				raw = strings.TrimSuffix(sc.Text(), "\r")
			}
			val = b.String()
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
		}
		out = append(out, dotenvEntry{key, val, start})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func validEnvKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case (c >= '0' && c <= '9' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
