package manifests_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferry-oci/ferry/manifests"
)

func TestReadAtMost(t *testing.T) {
	tests := []struct {
		name  string
		input string
		limit int64
		want  error
	}{
		{"empty", "", 4, nil},
		{"under the limit", "abc", 4, nil},
		{"at the limit", "abcd", 4, nil},
		{"one byte over", "abcde", 4, manifests.ErrTooLarge},
		{"far over", strings.Repeat("x", 1<<20), 4, manifests.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.input)
			got, err := manifests.ReadAtMost(r, tc.limit, "file.json")
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "file.json") {
					t.Errorf("error %q does not name the file", err)
				}
				if read := int64(len(tc.input) - r.Len()); read > tc.limit+1 {
					t.Errorf("read %d bytes, want at most %d", read, tc.limit+1)
				}
				return
			}
			if string(got) != tc.input {
				t.Errorf("got %q, want %q", got, tc.input)
			}
		})
	}
	_, err := manifests.ReadManifest(strings.NewReader(strings.Repeat("x", manifests.MaxManifestSize+1)), "index.json")
	if !errors.Is(err, manifests.ErrManifestTooLarge) || !errors.Is(err, manifests.ErrTooLarge) {
		t.Errorf("ReadManifest of an oversized index: %v, want ErrManifestTooLarge", err)
	}
}
