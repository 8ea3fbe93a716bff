package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyDir copies a rules directory (two levels: region folders of files).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	regions, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if !r.IsDir() {
			continue
		}
		if err := os.MkdirAll(filepath.Join(to, r.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		files, _ := os.ReadDir(filepath.Join(from, r.Name()))
		for _, f := range files {
			buf, err := os.ReadFile(filepath.Join(from, r.Name(), f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, r.Name(), f.Name()), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRulesDryrun_AgainstLiveData(t *testing.T) {
	data := t.TempDir()
	app := openTestApp(t, data)
	if _, err := SeedDemo(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	app.Close(context.Background())
	rulesDir := filepath.Join(repoRoot(t), "rules", "regions")
	changed := t.TempDir()
	copyDir(t, rulesDir, changed)
	intake := filepath.Join(changed, "kempen", "intake.yaml")
	buf, _ := os.ReadFile(intake)
	edited := strings.Replace(string(buf), "when: referral.crisis\n", "when: referral.crisis && referral.mandated\n", 1)
	if edited == string(buf) {
		t.Fatal("the crisis rule was not found in kempen/intake.yaml")
	}
	os.WriteFile(intake, []byte(edited), 0o644)

	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"rules", "dryrun", "--dir", rulesDir, "--against", changed, "--data", data, "--region", "kempen"}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("dryrun exit %d: %s%s", code, out.String(), errOut.String())
	}
	// The demo data holds one open kempen referral with a crisis (not mandated).
	if !strings.Contains(out.String(), "eligible false -> true; reasons [crisis] -> []") || !strings.Contains(out.String(), "1 of 6 decisions would change") {
		t.Fatalf("dryrun output:\n%s", out.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"rules", "dryrun", "--dir", rulesDir, "--against", rulesDir, "--data", data}, nil, &out, &errOut); code != 0 || strings.Contains(out.String(), "->") {
		t.Fatalf("dryrun of identical rules: exit %d\n%s", code, out.String())
	}
}

func TestRulesCheckAndTest_ShippedRulesPass(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "rules", "regions")
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"rules", "check", "--dir", dir}, nil, &out, &out); code != 0 {
		t.Fatalf("rules check: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"rules", "test", "--dir", dir}, nil, &out, &out); code != 0 || !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("rules test: exit %d\n%s", code, out.String())
	}
}
