package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// File is one rule file of a region, as it was loaded.
type File struct {
	Name    string `json:"name"` // "intake.yaml"
	Content string `json:"content"`
	Hash    string `json:"hash"` // sha256 hex of Content
}

// Region is a region's compiled, linted rules. A *Region is immutable once
// built and safe for concurrent use.
type Region struct {
	Name     string
	Dir      string // the folder the files were read from (display only)
	Config   RegionConfig
	Version  string // region version: see the package doc
	Files    []File // in Rulesets order
	Intake   *IntakeRules
	Capacity *CapacityRules
	Signals  *SignalRules
	// Warnings are the lint warnings of the region's files.
	Warnings []Diagnostic

	tests []compiledTest
}

// Set is the result of Load: the regions that compiled without errors.
type Set struct {
	Dir     string
	Regions map[string]*Region
}

// Names returns the region names of s, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.Regions))
	for n := range s.Regions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var regionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// ValidRegionName reports whether name can be a region folder.
func ValidRegionName(name string) bool { return regionNameRE.MatchString(name) }

// Load reads every region folder of dir (folders starting with . or _ are
// skipped), compiles and lints it. It returns the regions that compiled
// without errors, the diagnostics of all of them (sorted), and an error only
// when dir itself cannot be read. It does not run the tests in the files.
func Load(dir string) (*Set, []Diagnostic, error) {
	names, err := RegionNames(dir)
	if err != nil {
		return nil, nil, err
	}
	set := &Set{Dir: dir, Regions: map[string]*Region{}}
	var all []Diagnostic
	for _, name := range names {
		r, diags := LoadRegion(dir, name)
		all = append(all, diags...)
		if r != nil {
			set.Regions[name] = r
		}
	}
	sortDiagnostics(all)
	return set, all, nil
}

// RegionNames lists the region folders of dir.
func RegionNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read rules directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// ReadRegionFiles reads the four files of region name under dir. A missing
// file is absent from the map and reported; other files are ignored with a
// warning when they look like rule files.
func ReadRegionFiles(dir, name string) (map[string][]byte, []Diagnostic) {
	folder := filepath.Join(dir, name)
	files := map[string][]byte{}
	var diags []Diagnostic
	if !ValidRegionName(name) {
		diags = append(diags, Diagnostic{File: folder, Line: 1, Column: 1, RuleID: name, Severity: SeverityError, Code: CodeSchema,
			Message: "a region folder name must be lower case letters, digits, - and _"})
		return files, diags
	}
	if _, err := os.Stat(filepath.Join(folder, "region.yaml")); errors.Is(err, fs.ErrNotExist) {
		diags = append(diags, Diagnostic{File: filepath.Join(folder, "region.yaml"), Line: 1, Column: 1, RuleID: RulesetRegion,
			Severity: SeverityError, Code: CodeMissingFile,
			Message: "folder has no region.yaml, so it is no region: add region.yaml, intake.yaml, capacity.yaml and signals.yaml"})
		return files, diags
	}
	for _, rs := range Rulesets {
		path := filepath.Join(folder, rs+".yaml")
		b, err := readLimited(path)
		if err != nil {
			code, msg := CodeIO, err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				code = CodeMissingFile
				msg = fmt.Sprintf("missing %s.yaml: every region folder needs region.yaml, intake.yaml, capacity.yaml and signals.yaml", rs)
			}
			diags = append(diags, Diagnostic{File: path, Line: 1, Column: 1, RuleID: rs, Severity: SeverityError, Code: code, Message: msg})
			continue
		}
		files[rs] = b
	}
	if entries, err := os.ReadDir(folder); err == nil {
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			base := strings.TrimSuffix(e.Name(), ext)
			if (ext == ".yaml" || ext == ".yml") && !(ext == ".yaml" && contains(Rulesets, base)) {
				diags = append(diags, Diagnostic{File: filepath.Join(folder, e.Name()), Line: 1, Column: 1, RuleID: base,
					Severity: SeverityWarning, Code: CodeSchema, Message: "file ignored: rule files are region.yaml, intake.yaml, capacity.yaml and signals.yaml"})
			}
		}
	}
	return files, diags
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return b, nil
}

// LoadRegion reads and compiles one region folder. It returns nil and the
// diagnostics when the folder has errors.
func LoadRegion(dir, name string) (*Region, []Diagnostic) {
	files, diags := ReadRegionFiles(dir, name)
	if HasErrors(diags) {
		sortDiagnostics(diags)
		return nil, diags
	}
	r, more := CompileRegion(name, filepath.Join(dir, name), files)
	diags = append(diags, more...)
	sortDiagnostics(diags)
	if r != nil {
		_, r.Warnings = Split(diags)
	}
	return r, diags
}

// RegionVersion returns the version hash of a region's files (see the package
// doc); a missing file counts as empty.
func RegionVersion(files map[string][]byte) string {
	h := sha256.New()
	for _, rs := range Rulesets {
		b := files[rs]
		h.Write([]byte(rs + ".yaml\n" + strconv.Itoa(len(b)) + "\n"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CompileRegion compiles the files of region name (keyed by ruleset name:
// region, intake, capacity, signals); folder only prefixes the file names in
// diagnostics. It returns nil when there is any error, and never panics.
func CompileRegion(name, folder string, files map[string][]byte) (r *Region, diags []Diagnostic) {
	defer func() {
		if p := recover(); p != nil {
			diags = append(diags, Diagnostic{File: folder, Line: 1, Column: 1, RuleID: name, Severity: SeverityError, Code: CodeSyntax,
				Message: fmt.Sprintf("internal error while loading: %v", p)})
			r = nil
		}
	}()
	for _, rs := range Rulesets {
		if _, ok := files[rs]; !ok {
			diags = append(diags, Diagnostic{File: filepath.Join(folder, rs+".yaml"), Line: 1, Column: 1, RuleID: rs,
				Severity: SeverityError, Code: CodeMissingFile, Message: fmt.Sprintf("missing %s.yaml", rs)})
		}
	}
	if HasErrors(diags) {
		return nil, diags
	}
	r = &Region{Name: name, Dir: folder, Version: RegionVersion(files)}
	for _, rs := range Rulesets {
		r.Files = append(r.Files, File{Name: rs + ".yaml", Content: string(files[rs]), Hash: fileHash(files[rs])})
	}
	rsrc := &src{path: filepath.Join(folder, "region.yaml"), diags: &diags}
	cfg := rsrc.parseRegion(files[RulesetRegion], name)
	if cfg == nil {
		return nil, diags
	}
	r.Config = *cfg
	renv := RegionEnv{Name: name, Municipalities: cfg.Municipalities}
	if renv.Municipalities == nil {
		renv.Municipalities = []string{}
	}
	for _, rs := range Rulesets[1:] {
		s := &src{path: filepath.Join(folder, rs+".yaml"), diags: &diags}
		fd := s.parseRuleset(files[rs], rs, name)
		if fd == nil {
			continue
		}
		fc := newFileCompiler(s, files[rs], fd.params, renv)
		stamp := Stamp{Region: name, Ruleset: rs, Version: fileHash(files[rs]), RegionVersion: r.Version}
		switch rs {
		case RulesetIntake:
			ir := &IntakeRules{stamp: stamp, region: renv}
			ir.require = fc.compileAll(fd.require, IntakeEnv{}, wantBool, true)
			ir.exclude = fc.compileAll(fd.exclude, IntakeEnv{}, wantBool, true)
			ir.parts = fc.compileAll(fd.parts, IntakeEnv{}, wantNumber, false)
			r.Intake = ir
		case RulesetCapacity:
			cr := &CapacityRules{stamp: stamp, region: renv}
			if fd.limit != nil {
				if p := fc.compile(fd.limit, CapacityEnv{}, wantNumber, false); p != nil {
					cr.limit = compiled{def: fd.limit, prog: p}
				}
			}
			cr.checks = fc.compileAll(fd.checks, CapacityEnv{}, wantBool, true)
			r.Capacity = cr
		case RulesetSignals:
			sr := &SignalRules{stamp: stamp, region: renv}
			for _, def := range fd.signals {
				if p := fc.compile(def, SignalsEnv{}, wantBool, true); p != nil {
					sr.signals = append(sr.signals, compiled{def: def, prog: p})
				}
			}
			r.Signals = sr
		}
		fc.lintUnusedParams(fd.params)
		r.tests = append(r.tests, s.compileTests(fd)...)
	}
	if HasErrors(diags) {
		return nil, diags
	}
	_, r.Warnings = Split(diags)
	return r, diags
}

func (fc *fileCompiler) compileAll(defs []*ruleDef, env any, want resultKind, lintConstant bool) []compiled {
	out := make([]compiled, 0, len(defs))
	for _, d := range defs {
		if p := fc.compile(d, env, want, lintConstant); p != nil {
			out = append(out, compiled{def: d, prog: p})
		}
	}
	return out
}

func (fc *fileCompiler) lintUnusedParams(params []*param) {
	for _, p := range params {
		if !p.used {
			fc.warnf(p.key, CodeUnusedParam, p.name, "param %q is never used", p.name)
		}
	}
}
