package bundle

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// tempFile is a file being written in a directory that gets a name only
// when it is published, so a process killed at any point (kill -9
// included) leaves nothing behind. It is created with O_TMPFILE, which
// has no name at all until linkat gives it one. Where the file system
// lacks O_TMPFILE it is a named ".BASE.tmp-*" file; the process holds an
// flock on it while it lives, and the next tempFile for the same base in
// that directory removes the ones no live process holds.
type tempFile struct {
	*os.File
	dir, base string
	// name is the file's path once it has one, "" while unnamed.
	name string
}

// newTempFile creates a temporary file for base (the final file's base
// name) in dir, first removing stale ones that killed runs left.
func newTempFile(dir, base string) (*tempFile, error) {
	sweepStale(dir, base)
	t := &tempFile{dir: dir, base: base}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		t.File = os.NewFile(uintptr(fd), filepath.Join(dir, "."+base+".tmp"))
		return t, t.lock()
	}
	for range 10 {
		f, err := os.CreateTemp(dir, tempPattern(base))
		if err != nil {
			return nil, err
		}
		t.File, t.name = f, f.Name()
		if err := t.lock(); err != nil {
			t.discard()
			return nil, err
		}
		if t.stillNamed() {
			return t, nil
		}
		t.File.Close() // a concurrent sweep took it before the lock
	}
	return nil, fmt.Errorf("create a temporary file in %s: lost it to concurrent cleanups", dir)
}

// tempPattern is the os.CreateTemp pattern of base's temporary files.
func tempPattern(base string) string { return "." + base + ".tmp-*" }

// lock takes the flock that tells sweepStale the file is in use.
func (t *tempFile) lock() error {
	if err := unix.Flock(int(t.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.File.Close()
		return fmt.Errorf("lock temporary file in %s: %w", t.dir, err)
	}
	return nil
}

// stillNamed says whether t.name is still t's file.
func (t *tempFile) stillNamed() bool {
	fi, err := t.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(t.name)
	return err == nil && os.SameFile(fi, named)
}

// unlink removes the file's name, if it has one: a file only read back by
// this process needs none.
func (t *tempFile) unlink() {
	if t.name != "" {
		os.Remove(t.name)
		t.name = ""
	}
}

// publish gives the file the name path, atomically replacing what is
// there. An unnamed file is first linked under a locked temporary name.
func (t *tempFile) publish(path string) error {
	if t.name == "" {
		name := filepath.Join(t.dir, "."+t.base+".tmp-"+rand.Text())
		src := "/proc/self/fd/" + strconv.Itoa(int(t.Fd()))
		if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW); err != nil {
			return fmt.Errorf("link temporary file into %s: %w", t.dir, err)
		}
		t.name = name
	}
	if err := os.Rename(t.name, path); err != nil {
		return err
	}
	t.name = ""
	return nil
}

// discard closes the file and removes its name, if it has one.
func (t *tempFile) discard() {
	t.File.Close()
	t.unlink()
}

// sweepStale removes base's temporary files in dir that no live process
// holds: those a killed run left where O_TMPFILE was not available, or
// between linking and renaming. Errors are ignored: a file that cannot be
// removed now is tried again next time.
func sweepStale(dir, base string) {
	names, _ := filepath.Glob(filepath.Join(dir, tempPattern(base)))
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(name)
		}
		f.Close()
	}
}
