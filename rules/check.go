package rules

import (
	"os"
	"path/filepath"

	"github.com/samenplan/samenplan"
)

// Check is the outcome of compiling, linting and testing a region's files
// without activating them: what Put would decide, and why.
type Check struct {
	// Region is the compiled region when the files pass (no errors, every
	// test passes); nil otherwise. It is not active anywhere.
	Region *Region
	// Version is the region version the files would get (RegionVersion).
	Version string
	// Diagnostics are the errors and warnings, failed tests included (code
	// test_failed), sorted by file, line and column.
	Diagnostics []Diagnostic
	// Tests are the results of every test in the files, in file order; empty
	// when the files do not compile (the tests cannot run).
	Tests          []TestResult
	Passed, Failed int
}

// OK reports whether the files would be activated.
func (c Check) OK() bool { return c.Region != nil }

// CheckFiles compiles, lints and tests files of region name (keyed by
// ruleset); folder only prefixes file names in diagnostics. It reads and
// writes nothing, and is the validation Put, Rollback and reloads use.
func CheckFiles(name, folder string, files map[string][]byte) Check {
	c := Check{Version: RegionVersion(files), Tests: []TestResult{}}
	reg, diags := CompileRegion(name, folder, files)
	if reg != nil {
		_, reg.Warnings = Split(diags)
		c.Tests = reg.RunTests()
		for _, t := range c.Tests {
			if t.Passed {
				c.Passed++
			} else {
				c.Failed++
				diags = append(diags, t.Diagnostic())
			}
		}
		if c.Failed == 0 {
			c.Region = reg
		}
	}
	sortDiagnostics(diags)
	c.Diagnostics = diags
	return c
}

// Check validates content as the ruleset file of region together with the
// region's other files on disk, exactly as Put would, and writes, records
// and activates nothing: the status of the region is left as it is. An
// unknown ruleset or an invalid region name is invalid, content over
// MaxFileSize too_large, a region without a folder not_found.
func (r *Registry) Check(region, ruleset string, content []byte) (Check, error) {
	if !contains(Rulesets, ruleset) {
		return Check{}, samenplan.Errorf(samenplan.EINVALID, "unknown ruleset %q (want region, intake, capacity or signals)", ruleset)
	}
	if len(content) > MaxFileSize {
		return Check{}, samenplan.Errorf(samenplan.ETOOLARGE, "a rule file may be at most %d bytes", MaxFileSize)
	}
	if !ValidRegionName(region) {
		return Check{}, samenplan.Errorf(samenplan.EINVALID, "invalid region name %q", region)
	}
	folder := filepath.Join(r.dir, region)
	if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
		return Check{}, samenplan.Errorf(samenplan.ENOTFOUND, "region %s has no rules folder", region)
	}
	// Read under the write lock so the other files are a state of the disk
	// between two writes; compile and test outside it.
	r.mu.Lock()
	files, _ := ReadRegionFiles(r.dir, region)
	r.mu.Unlock()
	files[ruleset] = content
	return CheckFiles(region, folder, files), nil
}
