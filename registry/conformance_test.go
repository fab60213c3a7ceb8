package registry

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// conformanceSpecs is how many specs of the OCI distribution-spec
// conformance suite v1.1.1 run with all four workflows enabled and
// automatic cross-mounting tested as disabled.
const conformanceSpecs = 75

var (
	conformanceRan     = regexp.MustCompile(`Ran (\d+) of (\d+) Specs`)
	conformanceSummary = regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`)
)

// TestConformance runs the OCI distribution-spec conformance suite
// (scripts/install-deps.sh builds it) against a writable server over the
// fixture bundle: pull, push, content discovery (tags and referrers) and
// content management, without and with authentication.
func TestConformance(t *testing.T) {
	suite := testenv.RequireTool(t, "oci-conformance.test")
	const user, pass = "conformance", "s3cret"
	for _, tc := range []struct {
		name string
		opts Options
		env  []string
	}{
		{"anonymous", Options{Writable: true}, nil},
		{"htpasswd", Options{Writable: true, Htpasswd: writeHtpasswd(t, user, pass)}, []string{"OCI_USERNAME=" + user, "OCI_PASSWORD=" + pass}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveBundle(t, testBundle(t).path, tc.opts)
			out := runConformance(t, suite, s.url, tc.env)
			ran, summary := conformanceRan.FindStringSubmatch(out), conformanceSummary.FindStringSubmatch(out)
			if ran == nil || summary == nil {
				t.Fatalf("no summary in the conformance suite's output:\n%s", out)
			}
			t.Logf("%s\n%s", ran[0], summary[0])
			passed, _ := strconv.Atoi(summary[1])
			if summary[2] != "0" || passed < conformanceSpecs || ran[1] != summary[1] {
				t.Errorf("conformance: want %d specs run, all passed; got %s, %s:\n%s", conformanceSpecs, ran[0], summary[0], failures(out))
			}
		})
	}
}

// runConformance runs the suite against the registry at url, with the
// registry's 127.0.0.1 reached directly, and returns its output. A failed
// spec makes the suite exit 1; that is judged from the summary.
func runConformance(t *testing.T, suite, url string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite, "-ginkgo.no-color")
	cmd.Dir = t.TempDir()
	cmd.Env = append(withoutProxy(os.Environ()),
		"OCI_ROOT_URL="+url,
		"OCI_NAMESPACE=conformance/main",
		"OCI_CROSSMOUNT_NAMESPACE=conformance/other",
		"OCI_AUTOMATIC_CROSSMOUNT=0",
		"OCI_TEST_PULL=1", "OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1", "OCI_TEST_CONTENT_MANAGEMENT=1",
		"OCI_REPORT_DIR="+cmd.Dir,
	)
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("conformance suite: %v\n%s", err, b)
	}
	return string(b)
}

// failures is the suite's "Summarizing N Failures" section, or all of out.
func failures(out string) string {
	if i := strings.Index(out, "Summarizing"); i >= 0 {
		return out[i:]
	}
	return out
}

// withoutProxy drops the proxy variables from env.
func withoutProxy(env []string) []string {
	var kept []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy":
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}
