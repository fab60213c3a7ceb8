package registry

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
)

// authRealm is the realm of the basic authentication challenge.
const authRealm = "ferry"

// authCacheTTL is how long a checked user and password stay accepted (or
// refused) without a new bcrypt comparison.
const authCacheTTL = time.Minute

// authCacheMax bounds how many results are remembered.
const authCacheMax = 4096

// htpasswdAuth checks HTTP basic credentials against an htpasswd file of
// bcrypt entries. bcrypt is slow on purpose, so its cost is bounded: a
// result is remembered for authCacheTTL, keyed by a hash of user and
// password (never the password itself); clients sending the same
// credentials at once share one comparison; and comparisons run on at
// most half the CPUs, first come first served, so that clients sending
// wrong passwords cannot starve the others. New credentials wait their
// turn behind the comparisons already queued.
type htpasswdAuth struct {
	file     string
	sem      *semaphore.Weighted
	inflight singleflight.Group

	mu      sync.Mutex
	modTime time.Time
	users   map[string][]byte
	checked map[[sha256.Size]byte]authResult
}

type authResult struct {
	ok      bool
	expires time.Time
}

// newHtpasswdAuth reads an htpasswd file: user:bcrypt-hash lines, # comments.
func newHtpasswdAuth(file string) (*htpasswdAuth, error) {
	a := &htpasswdAuth{file: file, sem: semaphore.NewWeighted(int64(max(1, runtime.GOMAXPROCS(0)/2)))}
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// reload reads the file again when it changed since the last read,
// forgetting every remembered result. It is called with a.mu held, or
// before a is shared.
func (a *htpasswdAuth) reload() error {
	fi, err := os.Stat(a.file)
	if err != nil {
		return fmt.Errorf("%w: htpasswd: %w", ErrInvalidOptions, err)
	}
	if a.users != nil && fi.ModTime().Equal(a.modTime) {
		return nil
	}
	users, err := readHtpasswd(a.file)
	if err != nil {
		return err
	}
	a.users, a.modTime, a.checked = users, fi.ModTime(), map[[sha256.Size]byte]authResult{}
	return nil
}

// readHtpasswd parses an htpasswd file of bcrypt entries: distribution's
// htpasswd format, which other hashes cannot be checked in.
func readHtpasswd(file string) (map[string][]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: htpasswd: %w", ErrInvalidOptions, err)
	}
	users := map[string][]byte{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, _ := strings.Cut(line, ":")
		if _, err := bcrypt.Cost([]byte(hash)); user == "" || err != nil {
			return nil, fmt.Errorf("%w: htpasswd %s line %d: want user:bcrypt-hash (htpasswd -B)", ErrInvalidOptions, file, i+1)
		}
		users[user] = []byte(hash)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: htpasswd %s has no users", ErrInvalidOptions, file)
	}
	return users, nil
}

// wrap requires valid credentials for every request to next.
func (a *htpasswdAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); ok && a.allowed(r, user, pass) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", authRealm))
		serveError(w, errcode.ErrorCodeUnauthorized.WithDetail("basic authentication required: a user and password of the server's htpasswd file"))
	})
}

// allowed reports whether user and pass are valid, from the remembered
// results or one bcrypt comparison.
func (a *htpasswdAuth) allowed(r *http.Request, user, pass string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	a.mu.Lock()
	if err := a.reload(); err != nil {
		a.mu.Unlock()
		return false
	}
	res, seen := a.checked[key]
	hash, known := a.users[user]
	a.mu.Unlock()
	now := time.Now()
	if seen && now.Before(res.expires) {
		return res.ok
	}
	if !known {
		return false
	}
	// Clients sending the same credentials at once share one comparison.
	ok, _, _ := a.inflight.Do(string(key[:]), func() (any, error) {
		if err := a.sem.Acquire(r.Context(), 1); err != nil {
			return false, nil
		}
		ok := bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
		a.sem.Release(1)
		a.remember(key, ok)
		return ok, nil
	})
	return ok.(bool)
}

// remember keeps a result for authCacheTTL. Past authCacheMax results it
// drops the expired ones, and keeps no more refusals.
func (a *htpasswdAuth) remember(key [sha256.Size]byte, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if len(a.checked) >= authCacheMax {
		for k, res := range a.checked {
			if now.After(res.expires) {
				delete(a.checked, k)
			}
		}
	}
	if ok || len(a.checked) < authCacheMax {
		a.checked[key] = authResult{ok: ok, expires: now.Add(authCacheTTL)}
	}
}
