package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/rules"
	"github.com/samenplan/samenplan/server/audit"
	"github.com/samenplan/samenplan/server/auth"
)

// maxEvalBody bounds the JSON input of an evaluation.
const maxEvalBody = 256 << 10

// rulesRoutes registers the rules endpoints of every region (docs/api.md):
//
//	GET  /regions/:region/rules                 coordinator, reviewer: status of the region's rules
//	GET  /regions/:region/rules/history         coordinator, reviewer: activated versions, newest first
//	GET  /regions/:region/rules/:ruleset        coordinator, reviewer: the source of one file
//	PUT  /regions/:region/rules/:ruleset        coordinator: validate, test, write and activate one file
//	POST /regions/:region/rules/rollback        coordinator: {hash} activate an earlier version again
//	POST /regions/:region/rules/:ruleset/eval   coordinator, reviewer; coach for intake only
//	POST /regions/:region/rules/:ruleset/check  coordinator, reviewer: compile, lint and test a candidate file; writes nothing
//	POST /regions/:region/rules/:ruleset/dryrun coordinator, reviewer: which live decisions a candidate would change (with the read model)
//
// RequireRegion runs first, so another region is not_found and an admin is
// forbidden whatever the role check would say.
func (s *Server) rulesRoutes(api *echo.Group) {
	g := api.Group("/regions/:region/rules", auth.RequireRegion("region"))
	readers := auth.Require(auth.RoleCoordinator, auth.RoleReviewer)
	coordinator := auth.Require(auth.RoleCoordinator)
	g.GET("", s.handleRulesStatus, readers)
	g.GET("/history", s.handleRulesHistory, readers)
	g.GET("/:ruleset", s.handleRulesFile, readers)
	g.PUT("/:ruleset", s.handlePutRules, coordinator)
	g.POST("/rollback", s.handleRollbackRules, coordinator)
	g.POST("/:ruleset/eval", s.handleEvalRules, auth.Require(auth.RoleCoordinator, auth.RoleReviewer, auth.RoleCoach))
	g.POST("/:ruleset/check", s.handleCheckRules, readers)
	if s.cfg.View != nil {
		g.POST("/:ruleset/dryrun", s.handleDryRunRules, readers)
	}
}

// RuleDiagnostic is a rules.Diagnostic as the API shows it: File is relative
// to the rules directory ("kempen/intake.yaml"), never a server path.
type RuleDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// RuleFile is one file of a rules version; Content is left out of lists
// unless asked for.
type RuleFile struct {
	Name    string `json:"name"`
	Ruleset string `json:"ruleset"`
	Hash    string `json:"hash"`
	Content string `json:"content,omitempty"`
}

// RulesStatus is the body of GET /regions/:region/rules: the active version
// and its files, and the outcome of the last attempt to load the files on
// disk (load_status "ok" or "error", with errors and warnings).
type RulesStatus struct {
	Region        string    `json:"region"`
	ActiveVersion string    `json:"active_version"`
	ActivatedAt   time.Time `json:"activated_at,omitzero"`
	ActivatedBy   string    `json:"activated_by"`
	// Source is how the active version came in: startup, watch, put, rollback.
	Source     string `json:"source"`
	LoadStatus string `json:"load_status"`
	// AttemptedVersion is the hash of the rejected files on disk, when
	// LoadStatus is "error".
	AttemptedVersion string           `json:"attempted_version,omitempty"`
	CheckedAt        time.Time        `json:"checked_at,omitzero"`
	Errors           []RuleDiagnostic `json:"errors"`
	Warnings         []RuleDiagnostic `json:"warnings"`
	TestsPassed      int              `json:"tests_passed"`
	TestsFailed      int              `json:"tests_failed"`
	// Files are the active version's files, with their content.
	Files []RuleFile `json:"files"`
}

// RulesActivation is the body of a successful PUT or rollback: the status,
// and whether a new version was activated (false when the files were
// already the active version).
type RulesActivation struct {
	Activated bool `json:"activated"`
	RulesStatus
}

// RulesVersion is one entry of GET /regions/:region/rules/history.
type RulesVersion struct {
	Hash        string     `json:"hash"`
	ActivatedAt time.Time  `json:"activated_at"`
	ActivatedBy string     `json:"activated_by"`
	Source      string     `json:"source"`
	Files       []RuleFile `json:"files"`
}

// RulesSource is the body of GET /regions/:region/rules/:ruleset.
type RulesSource struct {
	Region  string `json:"region"`
	Ruleset string `json:"ruleset"`
	Name    string `json:"name"`
	Hash    string `json:"hash"`
	// RegionVersion is the active version, or "" for a file read from disk.
	RegionVersion string `json:"region_version,omitempty"`
	// From is "active" or "disk".
	From    string `json:"from"`
	Content string `json:"content"`
}

// InvalidRules is the body of a 400 answer to a PUT or rollback whose
// files do not compile, lint or pass their tests.
type InvalidRules struct {
	Code        string           `json:"code"`
	Message     string           `json:"message"`
	Diagnostics []RuleDiagnostic `json:"diagnostics"`
}

func (s *Server) handleRulesStatus(c echo.Context) error {
	st, err := s.rulesStatus(c.Param("region"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) handleRulesHistory(c echo.Context) error {
	region := c.Param("region")
	if _, err := s.rulesStatus(region); err != nil {
		return err
	}
	withContent := c.QueryParam("content") == "true"
	vs, err := s.cfg.Rules.History(c.Request().Context(), region)
	if err != nil {
		return err
	}
	out := make([]RulesVersion, 0, len(vs))
	for _, v := range vs {
		out = append(out, RulesVersion{Hash: v.Hash, ActivatedAt: v.ActivatedAt, ActivatedBy: v.ActivatedBy,
			Source: v.Source, Files: ruleFiles(v.Files, withContent)})
	}
	return c.JSON(http.StatusOK, out)
}

// handleRulesFile answers the active version of one file, or with
// ?from=disk the file as it is on disk now (which differs from the active
// one after a rejected edit).
func (s *Server) handleRulesFile(c echo.Context) error {
	region, ruleset := c.Param("region"), c.Param("ruleset")
	if !slices.Contains(rules.Rulesets, ruleset) {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Onbekende regelset %q / unknown ruleset %q (region, intake, capacity, signals)", ruleset, ruleset)
	}
	if _, err := s.rulesStatus(region); err != nil {
		return err
	}
	name := ruleset + ".yaml"
	src := RulesSource{Region: region, Ruleset: ruleset, Name: name}
	switch from := c.QueryParam("from"); from {
	case "", "active":
		reg, ok := s.cfg.Rules.Region(region)
		if !ok {
			return samenplan.Errorf(samenplan.ENOTFOUND, "Regio %s heeft geen actieve regels / region %s has no active rules", region, region)
		}
		for _, f := range reg.Files {
			if f.Name == name {
				src.Hash, src.Content = f.Hash, f.Content
			}
		}
		src.RegionVersion, src.From = reg.Version, "active"
	case "disk":
		files, _ := rules.ReadRegionFiles(s.cfg.Rules.Dir(), region)
		b, ok := files[ruleset]
		if !ok {
			return samenplan.Errorf(samenplan.ENOTFOUND, "Bestand %s/%s ontbreekt of is onleesbaar / file %s/%s is missing or unreadable", region, name, region, name)
		}
		sum := sha256.Sum256(b)
		src.Hash, src.Content, src.From = hex.EncodeToString(sum[:]), string(b), "disk"
	default:
		return samenplan.Errorf(samenplan.EINVALID, "from moet active of disk zijn / from must be active or disk, not %q", from)
	}
	if wantsYAML(c.Request().Header.Get(echo.HeaderAccept)) {
		c.Response().Header().Set("ETag", `"`+src.Hash+`"`)
		return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", []byte(src.Content))
	}
	return c.JSON(http.StatusOK, src)
}

// handlePutRules validates and tests the body as the new file of ruleset
// together with the region's other files; only when they pass is the file
// written and activated. An If-Match header naming a version other than
// the active one gives conflict, so that two coordinators do not overwrite
// each other unseen.
func (s *Server) handlePutRules(c echo.Context) error {
	region, ruleset := c.Param("region"), c.Param("ruleset")
	before, err := s.rulesStatus(region)
	if err != nil {
		return err
	}
	content, err := readRuleFileBody(c)
	if err != nil {
		return err
	}
	if want := strings.Trim(c.Request().Header.Get("If-Match"), `" `); want != "" && want != before.ActiveVersion {
		return samenplan.Errorf(samenplan.ECONFLICT,
			"De regels zijn intussen gewijzigd (actief: %s) / the rules changed meanwhile (active: %s)", before.ActiveVersion, before.ActiveVersion)
	}
	p, _ := auth.PrincipalFrom(c)
	_, err = s.cfg.Rules.Put(c.Request().Context(), region, ruleset, content, p.Username)
	if err != nil {
		return s.rulesWriteError(c, err)
	}
	return s.answerActivation(c, region, before.ActiveVersion, rules.SourcePut, ruleset)
}

// RollbackRequest is the body of POST /regions/:region/rules/rollback.
type RollbackRequest struct {
	Hash string `json:"hash"`
}

func (s *Server) handleRollbackRules(c echo.Context) error {
	region := c.Param("region")
	before, err := s.rulesStatus(region)
	if err != nil {
		return err
	}
	body, err := readBody(c, 4<<10)
	if err != nil {
		return err
	}
	var req RollbackRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.Hash == "" {
		return samenplan.Errorf(samenplan.EINVALID, "hash ontbreekt / hash is required")
	}
	p, _ := auth.PrincipalFrom(c)
	if _, err := s.cfg.Rules.Rollback(c.Request().Context(), region, req.Hash, p.Username); err != nil {
		return s.rulesWriteError(c, err)
	}
	return s.answerActivation(c, region, before.ActiveVersion, rules.SourceRollback, "")
}

// handleEvalRules evaluates one JSON input against the active rules and
// answers the explained decision. Coaches may evaluate intake only (the
// permanence line: "could this family start?"); capacity and signals are
// the team's business.
func (s *Server) handleEvalRules(c echo.Context) error {
	region, ruleset := c.Param("region"), c.Param("ruleset")
	if p, _ := auth.PrincipalFrom(c); p.Role == auth.RoleCoach && ruleset != rules.RulesetIntake {
		return samenplan.Errorf(samenplan.EFORBIDDEN, "Coaches evalueren enkel intake / coaches may evaluate intake only")
	}
	if _, err := s.rulesStatus(region); err != nil {
		return err
	}
	reg, ok := s.cfg.Rules.Region(region)
	if !ok {
		return samenplan.Errorf(samenplan.ENOTFOUND, "Regio %s heeft geen actieve regels / region %s has no active rules", region, region)
	}
	body, err := readBody(c, maxEvalBody)
	if err != nil {
		return err
	}
	decision, err := reg.EvalJSON(ruleset, body, rules.DateOf(time.Now().In(brussels())))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, decision)
}

// rulesStatus returns the API status of region, or not_found when the
// registry has never seen it.
func (s *Server) rulesStatus(region string) (RulesStatus, error) {
	st, ok := s.cfg.Rules.Status(region)
	if !ok {
		return RulesStatus{}, samenplan.Errorf(samenplan.ENOTFOUND, "Regio %s heeft geen regels / region %s has no rules", region, region)
	}
	reg, active := s.cfg.Rules.Region(region)
	if active && reg.Version != st.ActiveVersion {
		// A swap happened between the two reads: read the status again.
		st, _ = s.cfg.Rules.Status(region)
	}
	out := RulesStatus{
		Region: st.Region, ActiveVersion: st.ActiveVersion, ActivatedAt: st.ActivatedAt, ActivatedBy: st.ActivatedBy,
		Source: st.Source, LoadStatus: st.LoadStatus, AttemptedVersion: st.AttemptedVersion, CheckedAt: st.CheckedAt,
		Errors: s.ruleDiagnostics(st.Errors), Warnings: s.ruleDiagnostics(st.Warnings),
		TestsPassed: st.TestsPassed, TestsFailed: st.TestsFailed, Files: []RuleFile{},
	}
	if active {
		out.Files = ruleFiles(reg.Files, true)
	}
	return out, nil
}

// answerActivation audits an activation through the API (when the active
// version changed, or on every rollback) and answers the new status.
func (s *Server) answerActivation(c echo.Context, region, previous, source, ruleset string) error {
	st, err := s.rulesStatus(region)
	if err != nil {
		return err
	}
	activated := st.ActiveVersion != previous || source == rules.SourceRollback
	if activated {
		entry := auth.AuditEntry(c, audit.ActionRuleChange)
		entry.Region = region
		entry.TargetKind, entry.TargetID = "rules", st.ActiveVersion
		detail := map[string]string{"source": source, "hash": st.ActiveVersion, "previous": previous}
		if ruleset != "" {
			detail["ruleset"] = ruleset
		}
		entry.Detail = audit.Detail(detail)
		s.cfg.Audit.Record(entry)
	}
	return c.JSON(http.StatusOK, RulesActivation{Activated: activated, RulesStatus: st})
}

// rulesWriteError answers a rejected PUT or rollback with its diagnostics;
// other errors go to the error handler.
func (s *Server) rulesWriteError(c echo.Context, err error) error {
	var ve *rules.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	errs, _ := rules.Split(ve.Diagnostics)
	return c.JSON(http.StatusBadRequest, InvalidRules{
		Code: samenplan.EINVALID,
		Message: "De regels zijn niet geldig; er is niets gewijzigd / the rules are invalid; nothing was changed (" +
			plural(len(errs), "error") + ")",
		Diagnostics: s.ruleDiagnostics(ve.Diagnostics),
	})
}

func (s *Server) ruleDiagnostics(ds []rules.Diagnostic) []RuleDiagnostic {
	out := make([]RuleDiagnostic, 0, len(ds))
	for _, d := range ds {
		out = append(out, RuleDiagnostic{File: s.rulesRelPath(d.File), Line: d.Line, Col: d.Column, ID: d.RuleID,
			Severity: string(d.Severity), Code: d.Code, Message: d.Message})
	}
	return out
}

// rulesRelPath shows a rule file's path relative to the rules directory
// ("kempen/intake.yaml"), never a server path.
func (s *Server) rulesRelPath(path string) string {
	if rel, err := filepath.Rel(s.cfg.Rules.Dir(), path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.Base(path)
}

func ruleFiles(fs []rules.File, withContent bool) []RuleFile {
	out := make([]RuleFile, 0, len(fs))
	for _, f := range fs {
		rf := RuleFile{Name: f.Name, Ruleset: strings.TrimSuffix(f.Name, ".yaml"), Hash: f.Hash}
		if withContent {
			rf.Content = f.Content
		}
		out = append(out, rf)
	}
	return out
}

// readRuleFileBody returns the new file from a PUT body: the raw YAML
// (Content-Type text/yaml, application/yaml, application/x-yaml or
// text/plain) or JSON {"content": "..."}.
func readRuleFileBody(c echo.Context) ([]byte, error) {
	ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	switch ct {
	case "text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml", "text/plain":
		return readBody(c, rules.MaxFileSize)
	case echo.MIMEApplicationJSON:
		// JSON escapes can double the size of a file.
		body, err := readBody(c, 2*rules.MaxFileSize+1024)
		if err != nil {
			return nil, err
		}
		var req struct {
			Content *string `json:"content"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if req.Content == nil {
			return nil, samenplan.Errorf(samenplan.EINVALID, "content ontbreekt / content is required")
		}
		return []byte(*req.Content), nil
	}
	return nil, samenplan.Errorf(samenplan.EINVALID,
		"Content-Type moet application/yaml, text/yaml of application/json zijn / Content-Type must be application/yaml, text/yaml or application/json")
}

// readBody reads the request body, at most limit bytes (too_large beyond).
func readBody(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, samenplan.Errorf(samenplan.ETOOLARGE, "De aanvraag is te groot / request body too large.")
		}
		return nil, samenplan.Errorf(samenplan.EINVALID, "Aanvraag onleesbaar / could not read the request body")
	}
	if int64(len(b)) > limit {
		return nil, samenplan.Errorf(samenplan.ETOOLARGE, "De aanvraag is te groot (max %d bytes) / request body too large (max %d bytes)", limit, limit)
	}
	return b, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return samenplan.Errorf(samenplan.EINVALID, "Ongeldige JSON / malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return samenplan.Errorf(samenplan.EINVALID, "Ongeldige JSON / malformed JSON body: trailing data")
	}
	return nil
}

func wantsYAML(accept string) bool {
	return strings.Contains(accept, "yaml")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// brussels is the time zone of "today" for an evaluation without one.
// Without tzdata on the host it falls back to the local zone.
var brussels = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		return time.Local
	}
	return loc
})
