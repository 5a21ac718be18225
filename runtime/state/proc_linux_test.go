package state

import "testing"

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	start, zombie, err := parseStat(4242, []byte(line))
	if err != nil || start != 987654 || zombie {
		t.Errorf("parseStat: %d %v %v", start, zombie, err)
	}
	if _, zombie, _ := parseStat(1, []byte("1 (z) Z 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 0")); !zombie {
		t.Error("zombie not detected")
	}
	if _, _, err := parseStat(1, []byte("1 (short) S 0")); err == nil {
		t.Error("short line parsed")
	}
}
