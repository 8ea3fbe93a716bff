package auth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
)

// Logins, refreshes, failures and revocations at once share one writer
// connection with the audit goroutine; none of them may deadlock or lose an
// audit entry.
func TestConcurrentSessions_NoDeadlockNoLostAudit(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, auth.Config{Limits: auth.Limits{MaxFailures: -1, IPMaxFailures: -1}})
	const users = 8
	for i := range users {
		e.createUser(fmt.Sprintf("coach%d", i), auth.RoleCoach, "kempen")
	}
	var wg sync.WaitGroup
	errs := make(chan error, users*4)
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("coach%d", i)
			for range 3 {
				if _, err := e.svc.Login(ctx, name, "fout-wachtwoord", "", "127.0.0.1"); samenplan.ErrorCode(err) != samenplan.EUNAUTHORIZED {
					errs <- fmt.Errorf("%s wrong password: %v", name, err)
				}
			}
			s, err := e.svc.Login(ctx, name, password, "laptop", "127.0.0.1")
			if err != nil {
				errs <- err
				return
			}
			for range 5 {
				if s, err = e.svc.Refresh(ctx, s.RefreshToken); err != nil {
					errs <- err
					return
				}
				if _, err := e.svc.Authenticate(s.AccessToken); err != nil {
					errs <- err
				}
			}
			if err := e.svc.RevokeDevice(ctx, s.DeviceID, auth.System("test")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]int{audit.ActionLoginFailed: users * 3, audit.ActionLogin: users, audit.ActionDeviceRevoke: users} {
		got, err := e.audit.Query(ctx, audit.Filter{Action: action, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Errorf("%s: got %d entries, want %d", action, len(got), want)
		}
	}
}

// BenchmarkAuthenticate is the cost every request pays: verify the JWT and
// check revocation, without a query.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	e.createUser("an", auth.RoleCoach, "kempen")
	s, err := e.svc.Login(context.Background(), "an", password, "", "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Authenticate(s.AccessToken); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A burst of parallel guesses gets no confirmation of a right one once the
// burst has locked the name.
func TestLogin_ParallelGuessesCannotOutrunTheLock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createUser("an", auth.RoleCoach, "kempen")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.svc.Login(ctx, "an", fmt.Sprintf("fout-%d-wachtwoord", i), "", "127.0.0.1")
		}()
	}
	wg.Wait()
	if _, err := e.svc.Login(ctx, "an", password, "", "127.0.0.1"); samenplan.ErrorCode(err) != samenplan.ERATELIMITED {
		t.Fatalf("got %v, want rate_limited", err)
	}
}
