package runtime_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/runtime"
	"github.com/sbx-dev/sbx/runtime/drivertest"
	"github.com/sbx-dev/sbx/runtime/ns"
)

// TestMain lets the test binary serve as the processes the tests start: the ns driver's
// namespace child (runtime.NSChildCommand), the owner process of the driver conformance
// suite, and a payload that serves HTTP (SBX_TEST_LISTEN=1 with -listen=ADDR: GET /health
// answers 204).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == runtime.NSChildCommand {
		if err := ns.RunChild(os.Stdin, os.NewFile(3, "report")); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	drivertest.RunOwner(func() runtime.Driver {
		if os.Getenv(envKrunConformance) != "" {
			return krunTestDriver()
		}
		return nsTestDriver()
	})
	if os.Getenv("SBX_TEST_LISTEN") == "1" {
		for _, a := range os.Args {
			if addr, ok := strings.CutPrefix(a, "-listen="); ok {
				mux := http.NewServeMux()
				mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
				fmt.Println(http.ListenAndServe(addr, mux))
				os.Exit(1)
			}
		}
	}
	os.Exit(m.Run())
}
