// Package atomicfile writes small files whole: through a temporary file in
// the same directory, synced, then renamed, so a reader (a script waiting
// for a ready file, containerd reading hosts.toml) never sees half of one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode perm, creating the directory.
func Write(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
