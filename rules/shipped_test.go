package rules

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestShippedRules_HaveAtLeast40TestsAndAllPass(t *testing.T) {
	set, diags, err := Load("regions")
	if err != nil || HasErrors(diags) {
		t.Fatalf("load: %v\n%s", err, diagLines(diags))
	}
	if got, want := set.Names(), []string{"kempen", "maasland"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("regions: got %v, want %v", got, want)
	}
	total := 0
	for _, name := range set.Names() {
		for _, r := range set.Regions[name].RunTests() {
			total++
			if !r.Passed {
				t.Error(r.Diagnostic())
			}
		}
	}
	if total < 40 {
		t.Errorf("tests: got %d, want at least 40", total)
	}
}

func TestShippedRules_EveryRuleIsNamedByATest(t *testing.T) {
	set, _, _ := Load("regions")
	for _, name := range set.Names() {
		r := set.Regions[name]
		named := map[string]bool{}
		for _, ct := range r.tests {
			for _, id := range append(append(append([]string{}, ct.expect.reasons...), ct.expect.failed...), ct.expect.fired...) {
				named[id] = true
			}
		}
		var ids []string
		for _, c := range r.Intake.require {
			ids = append(ids, c.def.id)
		}
		for _, c := range r.Intake.exclude {
			ids = append(ids, c.def.id)
		}
		for _, c := range r.Capacity.checks {
			ids = append(ids, c.def.id)
		}
		for _, c := range r.Signals.signals {
			ids = append(ids, c.def.id)
		}
		for _, id := range ids {
			if !named[id] {
				t.Errorf("%s: no test expects rule %s to fail or fire", name, id)
			}
		}
	}
}

func TestShippedRules_KempenHasTwelveMunicipalities(t *testing.T) {
	r, diags := LoadRegion("regions", "kempen")
	if r == nil {
		t.Fatal(diagLines(diags))
	}
	if got := len(r.Config.Municipalities); got != 12 {
		t.Errorf("municipalities: got %d, want 12", got)
	}
}

// TestDocs_NameEveryVocabularyWord keeps docs/rules.md in step with the env
// structs: every name an expression can use is documented.
func TestDocs_NameEveryVocabularyWord(t *testing.T) {
	b, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Skip("docs/rules.md not found:", err)
	}
	doc := string(b)
	var walk func(prefix string, t reflect.Type)
	var names []string
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name := f.Tag.Get("expr")
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				names = append(names, prefix+name)
				walk(".", ft.Elem())
				continue
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
				walk(prefix+name+".", ft)
				continue
			}
			names = append(names, prefix+name)
		}
	}
	for _, env := range []any{IntakeEnv{}, CapacityEnv{}, SignalsEnv{}} {
		walk("", reflect.TypeOf(env))
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") && !strings.Contains(doc, "`"+n+",") && !strings.Contains(doc, n+"`") {
			t.Errorf("docs/rules.md does not name %s", n)
		}
	}
}
