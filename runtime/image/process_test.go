package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestMain lets the test binary act as a second sbx process: with
// SBX_IMAGE_TEST_PULL=ROOT and SBX_IMAGE_TEST_REF=REF set it pulls REF
// into the store at ROOT and exits.
func TestMain(m *testing.M) {
	if root := os.Getenv("SBX_IMAGE_TEST_PULL"); root != "" {
		s, err := Open(root)
		if err == nil {
			_, err = s.Pull(context.Background(), os.Getenv("SBX_IMAGE_TEST_REF"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestConcurrentProcesses: three real processes pull the same image into
// one store at once; all succeed and every blob is fetched once.
func TestConcurrentProcesses(t *testing.T) {
	reg := registries(t)[0]
	img := manyLayers(t, 5)
	ref := reg.push(t, "many", img)
	reg.resetCounts()
	root := t.TempDir()
	var cmds []*exec.Cmd
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SBX_IMAGE_TEST_PULL="+root, "SBX_IMAGE_TEST_REF="+ref)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	for _, d := range blobsOf(t, img) {
		if n := reg.count(d); n != 1 {
			t.Errorf("blob %s fetched %d times, want 1", d, n)
		}
	}
	if got, err := openStore(t, root).Lookup(context.Background(), ref); err != nil || len(got.LayerDirs) != 5 {
		t.Errorf("Lookup = %+v, %v", got, err)
	}
}
