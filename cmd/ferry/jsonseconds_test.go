package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/internal/testenv"
)

// TestJSONDurations: every duration in -o json is a number of seconds in
// a "seconds" field, never nanoseconds.
func TestJSONDurations(t *testing.T) {
	path, _ := pushTestBundle(t)
	ctd := testenv.Containerd(t)
	reg := testenv.Registry(t)
	code, stdout, stderr := runFerry(t, "", "install", path, "-o", "json", "--serve", "127.0.0.1:0", "--plain-http",
		"--import", "--address", ctd.Address, "--no-unpack", "--push-to", reg.Host+"/seed", "--push-plain-http", "--no-serve")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, `"duration"`) || strings.Contains(stdout, `"Duration"`) {
		t.Errorf("a duration in nanoseconds:\n%s", stdout)
	}
	var res struct {
		Steps []struct {
			Name    string
			Seconds *float64
			Detail  struct{ Seconds *float64 }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		if s.Seconds == nil || *s.Seconds < 0 || *s.Seconds > 600 {
			t.Errorf("step %s: seconds %v", s.Name, s.Seconds)
		}
		if (s.Name == "import" || s.Name == "push") && (s.Detail.Seconds == nil || *s.Detail.Seconds <= 0 || *s.Detail.Seconds > 600) {
			t.Errorf("step %s: its result's seconds %v", s.Name, s.Detail.Seconds)
		}
	}
}
