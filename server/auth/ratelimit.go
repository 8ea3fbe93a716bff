package auth

import (
	"sync"
	"time"
)

// Limits bound failed logins. After MaxFailures failed logins for one
// username within Window, that username is locked for Lockout: every login
// for it, right or wrong, gets rate_limited. The same holds per client
// address with IPMaxFailures.
type Limits struct {
	MaxFailures   int
	IPMaxFailures int
	Window        time.Duration
	Lockout       time.Duration
}

// DefaultLimits: 5 failures per username or 50 per address in 15 minutes
// lock it for 15 minutes.
var DefaultLimits = Limits{MaxFailures: 5, IPMaxFailures: 50, Window: 15 * time.Minute, Lockout: 15 * time.Minute}

func (l Limits) withDefaults() Limits {
	if l.MaxFailures == 0 {
		l.MaxFailures = DefaultLimits.MaxFailures
	}
	if l.IPMaxFailures == 0 {
		l.IPMaxFailures = DefaultLimits.IPMaxFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultLimits.Window
	}
	if l.Lockout <= 0 {
		l.Lockout = DefaultLimits.Lockout
	}
	return l
}

// limiter keeps failed logins in memory. A restart forgets them.
type limiter struct {
	cfg   Limits
	mu    sync.Mutex
	users map[string]*failures
	ips   map[string]*failures
}

type failures struct {
	at          []time.Time // failures within the window, oldest first
	lockedUntil time.Time
}

func newLimiter(cfg Limits) *limiter {
	return &limiter{cfg: cfg, users: map[string]*failures{}, ips: map[string]*failures{}}
}

// locked reports whether username or ip is locked at now.
func (l *limiter) locked(username, ip string, now time.Time) bool {
	return l.lockedFor(username, ip, now) > 0
}

// lockedFor returns how long username or ip stays locked after now (the
// longer of the two), or 0 when neither is locked.
func (l *limiter) lockedFor(username, ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var left time.Duration
	if f := l.users[username]; f != nil && now.Before(f.lockedUntil) {
		left = f.lockedUntil.Sub(now)
	}
	if f := l.ips[ip]; ip != "" && f != nil && now.Before(f.lockedUntil) {
		left = max(left, f.lockedUntil.Sub(now))
	}
	return left
}

// fail counts a failed login and reports whether it locked the username
// or the address.
func (l *limiter) fail(username, ip string, now time.Time) (userLocked, ipLocked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.users)+len(l.ips) > 100_000 {
		l.prune(now)
	}
	userLocked = l.count(l.users, username, l.cfg.MaxFailures, now)
	if ip != "" {
		ipLocked = l.count(l.ips, ip, l.cfg.IPMaxFailures, now)
	}
	return userLocked, ipLocked
}

func (l *limiter) count(m map[string]*failures, key string, max int, now time.Time) bool {
	if max <= 0 {
		return false
	}
	f := m[key]
	if f == nil {
		f = &failures{}
		m[key] = f
	}
	f.at = append(dropBefore(f.at, now.Add(-l.cfg.Window)), now)
	if len(f.at) >= max {
		f.lockedUntil = now.Add(l.cfg.Lockout)
		f.at = f.at[:0]
		return true
	}
	return false
}

// succeed forgets the failures of username; those of the address stay.
func (l *limiter) succeed(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.users, username)
}

func (l *limiter) prune(now time.Time) {
	for _, m := range []map[string]*failures{l.users, l.ips} {
		for k, f := range m {
			if f.at = dropBefore(f.at, now.Add(-l.cfg.Window)); len(f.at) == 0 && !now.Before(f.lockedUntil) {
				delete(m, k)
			}
		}
	}
}

func dropBefore(at []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(at) && at[i].Before(cutoff) {
		i++
	}
	return at[i:]
}
