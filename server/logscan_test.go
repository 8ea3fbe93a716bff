package server

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/sync/protocol"
	"github.com/samenplan/samenplan/sync/schema"
)

// TestLogScan_NoCaseContentOrSecretInAnyLogLine runs a full workflow over
// HTTP on one real server (issue 7, item 4: "no case content or token in any
// log line") and then searches everything the server logged for the
// distinctive case texts, the passwords and every token it handed out.
func TestLogScan_NoCaseContentOrSecretInAnyLogLine(t *testing.T) {
	we := newWorkflowEnv(t)
	const (
		note          = "Logscan-notitie: vader drinkt weer, kinderen bij oma Quirina"
		question      = "Logscan-vraag: moeder Xandrina vraagt hulp bij de opvoeding"
		referrer      = "Logscan-verwijzer Ymke Oudewater"
		declineReason = "Logscan-reden: aanbod Zwaluwnest past niet"
		wrongPassword = "logscan-wrong-password-Vd93kQ"
	)
	var secrets []string // tokens handed out during the run

	// A coach logs in, takes a referral at the permanence and writes a
	// contact with a note on her trajectory; a coach of the other region
	// logs in too.
	a := we.login("coach.a")
	secrets = append(secrets, a.token, a.refresh)
	today := we.now()
	fam, parent, child, ref := newUUID(), newUUID(), newUUID(), newUUID()
	changes := []protocol.Change{
		a.change("families", fam, "region", "kempen"),
		a.change("families", fam, "label", "Gezin Logscan"),
		a.change("families", fam, "municipality", "Turnhout"),
		a.change("persons", parent, "family_id", fam),
		a.change("persons", parent, "role", "parent"),
		a.change("persons", parent, "birth_date", today.AddDate(-34, 0, 0).Format(time.DateOnly)),
		a.change("persons", parent, "willing", true),
		a.change("persons", child, "family_id", fam),
		a.change("persons", child, "role", "child"),
		a.change("persons", child, "birth_date", today.AddDate(-7, 0, 0).Format(time.DateOnly)),
		a.change("referrals", ref, "region", "kempen"),
		a.change("referrals", ref, "family_id", fam),
		a.change("referrals", ref, "received_on", today.AddDate(0, 0, -2).Format(time.DateOnly)),
		a.change("referrals", ref, "channel", "permanentie"),
		a.change("referrals", ref, "municipality", "Turnhout"),
		a.change("referrals", ref, "articulated", true),
		a.change("referrals", ref, "consent", true),
		a.change("referrals", ref, "question", question),
		a.change("referrals", ref, "referrer_name", referrer),
	}
	changes = append(changes, a.newContact(we.trajectories["coach.a"], note)...)
	var pushed protocol.PushResponse
	if st := a.do("POST", "/v1/sync/push", a.pushRequest(changes...), &pushed); st != http.StatusOK || pushed.Applied != len(changes) {
		t.Fatalf("push: %d %+v", st, pushed)
	}
	// A write out of her scope is refused and logged as such, without its
	// value.
	var refused protocol.PushResponse
	a.do("POST", "/v1/sync/push", a.pushRequest(a.newContact(we.trajectories["coach.m"], note)...), &refused)

	// Bad pushes carrying the note where it does not belong: a malformed
	// body, the note as a clock and as a number. Their errors may quote the
	// input to her; the log may not.
	bad := a.newContact(we.trajectories["coach.a"], "x")
	bad[0].HLC = note
	badNumber := a.newContact(we.trajectories["coach.a"], "x")
	badNumber[1] = a.change("contacts", badNumber[1].ID, "minutes", note)
	for _, body := range [][]byte{
		[]byte(`{"device_id":"` + a.device + `","changes":[{"collection":"contacts","value":"` + note),
		jsonValue(a.pushRequest(bad...)),
		jsonValue(a.pushRequest(badNumber...)),
	} {
		a.doRaw("POST", "/v1/sync/push", "application/json", body, nil)
	}

	// She pulls, and refreshes her session.
	var pulled protocol.PullResponse
	if st := a.do("POST", "/v1/sync/pull", protocol.PullRequest{DeviceID: a.device, SchemaVersion: schema.Version}, &pulled); st != http.StatusOK {
		t.Fatalf("pull: %d", st)
	}
	if !strings.Contains(string(jsonValue(pulled)), note) {
		t.Fatal("the pull does not carry the note: the scan below would prove nothing")
	}
	var sess struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if st := a.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": a.refresh}, &sess); st != http.StatusOK {
		t.Fatalf("refresh: %d", st)
	}
	secrets = append(secrets, sess.AccessToken, sess.RefreshToken)
	a.token = sess.AccessToken

	// The coordinator sees the board, declines the referral with a reason,
	// starts another and reads the report, as JSON and as CSV.
	coord := we.login("coordinator.k")
	secrets = append(secrets, coord.token, coord.refresh)
	if e, _ := boardEntry(t, coord, ref); e == nil {
		t.Fatal("the referral is not on the board")
	}
	if st := coord.do("POST", "/v1/regions/kempen/intake/decisions", map[string]any{"referral_id": ref, "kind": "decline", "reason": declineReason}, nil); st != http.StatusCreated {
		t.Fatalf("decline: %d", st)
	}
	for _, path := range []string{"/v1/regions/kempen/report", "/v1/regions/kempen/report?format=csv", "/v1/regions/kempen/intake/decisions"} {
		if st := coord.doRaw("GET", path, "", nil, nil); st != http.StatusOK {
			t.Fatalf("GET %s: %d", path, st)
		}
	}

	// A failed login with a wrong password, a refused refresh with a used
	// token (reuse: the coach's device is revoked) and a request of the
	// revoked device.
	var e ErrorBody
	anon := &testClient{t: t, base: we.url()}
	if st := anon.do("POST", "/v1/auth/login", map[string]string{"username": "coach.b", "password": wrongPassword, "device_name": "logscan"}, &e); st != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: %d %+v", st, e)
	}
	if st := anon.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": secrets[1]}, &e); st != http.StatusUnauthorized || e.Code != samenplan.EDEVICEREVOKED {
		t.Fatalf("reused refresh token: %d %+v", st, e)
	}
	if st := a.do("GET", "/v1/me", nil, &e); st != http.StatusUnauthorized || e.Code != samenplan.EDEVICEREVOKED {
		t.Fatalf("revoked device: %d %+v", st, e)
	}
	// The admin reads the audit log of the family.
	admin := we.login("admin")
	secrets = append(secrets, admin.token, admin.refresh)
	if st := admin.do("GET", "/v1/audit?family="+fam, nil, nil); st != http.StatusOK {
		t.Fatalf("audit: %d", st)
	}
	_, key := we.signingKey()

	// Wait for what is logged in the background (last-seen flushes, audit).
	time.Sleep(100 * time.Millisecond)
	logs := we.logs.String()
	if !strings.Contains(logs, "/v1/sync/push") {
		t.Fatalf("the log holds no request line; is the request log written elsewhere?\n%.2000s", logs)
	}
	forbidden := map[string]string{
		"contact note":         note,
		"referral question":    question,
		"referrer name":        referrer,
		"decline reason":       declineReason,
		"wrong password":       wrongPassword,
		"password":             testPassword,
		"signing key (hex)":    hex.EncodeToString(key),
		"signing key (base64)": base64.StdEncoding.EncodeToString(key),
	}
	for i, s := range secrets {
		if s == "" {
			t.Fatalf("token %d is empty", i)
		}
		forbidden[fmt.Sprintf("token %d", i)] = s
		// A JWT's signature alone, or a refresh token's tail, is as bad.
		if dot := strings.LastIndexByte(s, '.'); dot > 0 {
			forbidden[fmt.Sprintf("token %d signature", i)] = s[dot+1:]
		}
	}
	for what, s := range forbidden {
		if i := strings.Index(logs, s); i >= 0 {
			start := strings.LastIndexByte(logs[:i], '\n') + 1
			end := strings.IndexByte(logs[i:], '\n')
			if end < 0 {
				end = len(logs) - i
			}
			t.Errorf("the %s is in the server log: %s", what, strings.ReplaceAll(logs[start:i+end], s, "«"+what+"»"))
		}
	}
	t.Logf("scanned %d log lines (%d bytes) for %d forbidden strings", strings.Count(logs, "\n"), len(logs), len(forbidden))
}
