// Rules: the region's four rule files in an editor with line numbers.
// A coordinator checks (compile, lint, tests), dry-runs against the live
// referrals, saves (which activates) and rolls back; a reviewer reads only.
// API: docs/api.md "Rules"; the file format: docs/rules.md.
import type { Ctx, Route } from "../app";
import { ApiError } from "../api";
import { h, replace } from "../dom";
import { label, t } from "../i18n";
import { badge, confirmDialog, errorBox, fmtDate, fmtDateTime, fmtNumber, localTable } from "../ui";

const RULESETS = ["region", "intake", "capacity", "signals"] as const;
type Ruleset = (typeof RULESETS)[number];

interface RuleFile { name: string; ruleset: string; hash: string; content?: string }

/** Diagnostic as the API gives it; check may use the rules package's names
 *  (column, rule_id), so both are read. */
export interface Diagnostic {
  file: string;
  line: number;
  col?: number;
  column?: number;
  id?: string;
  rule_id?: string;
  severity: "error" | "warning" | string;
  code: string;
  message: string;
}

interface RulesStatus {
  region: string;
  active_version: string;
  activated_at?: string;
  activated_by?: string;
  source?: string;
  load_status: "ok" | "error" | string;
  attempted_version?: string;
  checked_at?: string;
  errors: Diagnostic[] | null;
  warnings: Diagnostic[] | null;
  tests_passed: number;
  tests_failed: number;
  files: RuleFile[];
  activated?: boolean;
}

interface RulesSource { region: string; ruleset: string; name: string; hash: string; from: string; content: string }

interface RulesVersion { hash: string; activated_at: string; activated_by: string; source: string; files: RuleFile[] }

interface TestResult { name: string; file?: string; line?: number; passed: boolean; message?: string; failures?: string[]; ruleset?: string }

interface CheckResult {
  ok?: boolean;
  diagnostics?: Diagnostic[] | null;
  errors?: Diagnostic[] | null;
  warnings?: Diagnostic[] | null;
  tests_passed?: number;
  tests_failed?: number;
  passed?: number;
  failed?: number;
  tests?: TestResult[] | null;
  version?: string;
}

interface Summary { eligible: boolean; reasons: string[] | null; priority: number }
interface Change {
  referral_id: string;
  family_id?: string;
  family_label?: string;
  received_on?: string;
  mandated?: boolean;
  before: Summary;
  after: Summary;
}
interface Limits { limit: number; limit_error?: string; free: number }
interface CoachChange { coach_id: string; username: string; display_name: string; active_families: number; before: Limits; after: Limits }
/** DryRun is the answer of POST …/rules/{ruleset}/dryrun. */
interface DryRun {
  region: string; ruleset: string; today?: string; active_version?: string; candidate_version?: string;
  referrals: number; changed: number; changes: Change[] | null;
  coaches?: number; coaches_changed?: number; coach_changes?: CoachChange[] | null;
}

export const routes: Route[] = [
  { path: "/rules", roles: ["coordinator", "reviewer"], nav: ["Regels", "Rules"], render: (root, ctx) => renderRules(root, ctx, "intake") },
  {
    path: "/rules/:ruleset", roles: ["coordinator", "reviewer"],
    render: (root, ctx) => renderRules(root, ctx, ctx.params.ruleset),
  },
];

const fmtDateTimeOr = (v: string | undefined) => fmtDateTime(v) || "—";
const short = (hash: string | undefined) => (hash ? hash.slice(0, 10) : "—");

function sourceName(s: string | undefined): string {
  switch (s) {
    case "startup": return t("bij het opstarten", "at startup");
    case "watch": return t("van schijf", "from disk");
    case "put": return t("bewaard in de webtoepassing", "saved in the web client");
    case "rollback": return t("teruggezet", "rolled back");
    default: return s ?? "—";
  }
}

function rulesetName(r: string): string {
  switch (r) {
    case "region": return t("Regio", "Region");
    case "intake": return t("Instap", "Intake");
    case "capacity": return t("Capaciteit", "Capacity");
    case "signals": return t("Signalen", "Signals");
    default: return r;
  }
}

const colOf = (d: Diagnostic) => d.col ?? d.column ?? 0;
const idOf = (d: Diagnostic) => d.id ?? d.rule_id ?? "";

function base(ctx: Ctx): string {
  return `/v1/regions/${encodeURIComponent(ctx.region)}/rules`;
}

async function renderRules(root: HTMLElement, ctx: Ctx, rs: string): Promise<void> {
  if (!(RULESETS as readonly string[]).includes(rs)) {
    replace(root, errorBox(new Error(t(`Onbekend regelbestand: ${rs}`, `Unknown rule file: ${rs}`))));
    return;
  }
  const ruleset = rs as Ruleset;
  const canEdit = ctx.user.role === "coordinator";
  if (!ctx.region) {
    replace(root, errorBox(new Error(t("Je account heeft geen regio.", "Your account has no region."))));
    return;
  }

  const [status, history] = await Promise.all([
    ctx.api.get<RulesStatus>(base(ctx)),
    ctx.api.get<RulesVersion[]>(`${base(ctx)}/history`),
  ]);
  // After a rejected edit the disk holds something else than the active
  // version: a coordinator edits what is on disk, so it opens by default.
  let from: "active" | "disk" = ctx.params.from === "disk" || ctx.params.from === "active"
    ? ctx.params.from : status.load_status === "error" && canEdit ? "disk" : "active";
  const src = await ctx.api.get<RulesSource>(`${base(ctx)}/${ruleset}?from=${from}`);

  // ---- the editor ------------------------------------------------------
  let loaded = src.content;
  let marks = new Map<number, Diagnostic[]>();
  const gutterInner = h("div", { class: "gutter-lines" });
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" }, gutterInner);
  const ta = h("textarea", {
    id: "rules-editor", class: "code", spellcheck: "false", wrap: "off", autocomplete: "off",
    autocapitalize: "off", "aria-label": t(`Inhoud van ${src.name}`, `Content of ${src.name}`),
    "aria-describedby": canEdit ? "editor-help" : "readonly-note", readonly: canEdit ? null : true, "aria-readonly": canEdit ? null : "true",
  });
  ta.value = loaded;
  const editor = h("div", { class: "editor" + (canEdit ? "" : " readonly") }, gutter, ta);
  const dirtyNote = h("span", { class: "dirty", role: "status" });

  function drawGutter(): void {
    const n = ta.value.split("\n").length;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= n; i++) {
      const ds = marks.get(i);
      const sev = ds ? (ds.some((d) => d.severity === "error") ? "error" : "warning") : "";
      const el = h("div", { class: "ln" + (sev ? " mark " + sev : ""), "data-line": String(i), title: ds ? ds.map((d) => d.message).join("\n") : null },
        sev ? h("span", { class: "dot" }, sev === "error" ? "●" : "▲") : null, String(i));
      frag.appendChild(el);
    }
    gutterInner.replaceChildren(frag);
    syncScroll();
  }
  function syncScroll(): void {
    gutter.scrollTop = ta.scrollTop;
  }
  function updateDirty(): void {
    const dirty = ta.value !== loaded;
    dirtyNote.textContent = dirty ? t("Niet bewaarde wijzigingen", "Unsaved changes") : "";
    editor.classList.toggle("dirty", dirty);
  }
  let lines = ta.value.split("\n").length;
  ta.addEventListener("scroll", syncScroll);
  ta.addEventListener("input", () => {
    const n = ta.value.split("\n").length;
    if (n !== lines) {
      lines = n;
      drawGutter();
    }
    updateDirty();
  });
  new ResizeObserver(syncScroll).observe(ta);
  drawGutter();

  function jumpTo(line: number, col: number): void {
    const all = ta.value.split("\n");
    const l = Math.min(Math.max(line, 1), all.length);
    let pos = 0;
    for (let i = 0; i < l - 1; i++) pos += all[i].length + 1;
    pos += Math.min(Math.max(col - 1, 0), all[l - 1].length);
    ta.focus();
    ta.setSelectionRange(pos, pos);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
    ta.scrollTop = Math.max(0, (l - 1) * lh - ta.clientHeight / 3);
    syncScroll();
    for (const el of gutterInner.querySelectorAll(".ln.current")) el.classList.remove("current");
    gutterInner.querySelector(`.ln[data-line="${l}"]`)?.classList.add("current");
  }

  // ---- results: diagnostics, tests, dry run --------------------------------
  const msg = h("div", { class: "rules-msg", role: "status", "aria-live": "polite" });
  const results = h("section", { class: "rules-results", "aria-label": t("Resultaat", "Result") });
  const fileName = `${ctx.region}/${src.name}`;

  const inThisFile = (d: Diagnostic) => d.file === fileName || d.file === src.name;

  /** markDiags marks the lines of the diagnostics of this file in the gutter. */
  function markDiags(diags: Diagnostic[]): void {
    marks = new Map();
    for (const d of diags) {
      if (!inThisFile(d) || !d.line) continue;
      const a = marks.get(d.line) ?? [];
      a.push(d);
      marks.set(d.line, a);
    }
    drawGutter();
  }

  /** diagItem is one diagnostic; jumpable ones are a button that puts the
   *  cursor at their line and column. */
  function diagItem(d: Diagnostic, jumpable: boolean): HTMLElement {
    const where = `${d.file}:${d.line}:${colOf(d)}`;
    const body = [h("span", { class: "sev " + d.severity }, d.severity === "error" ? t("fout", "error") : t("waarschuwing", "warning")), " ",
      h("code", { class: "where" }, where), " ", idOf(d) ? h("code", { class: "rid" }, idOf(d)) : null, " ",
      h("span", { class: "dmsg" }, d.message), " ", h("span", { class: "dcode" }, `(${d.code})`)];
    return h("li", { class: "diag d-" + d.severity, "data-line": String(d.line) },
      jumpable ? h("button", { type: "button", class: "diag-jump", title: t(`Naar regel ${d.line}`, `Go to line ${d.line}`), onclick: () => jumpTo(d.line, colOf(d)) }, body)
        : h("span", null, body));
  }

  function showDiagnostics(diags: Diagnostic[], title: string, tests?: { passed?: number; failed?: number; list?: TestResult[] | null }): void {
    markDiags(diags);
    const errs = diags.filter((d) => d.severity === "error").length;
    const warns = diags.length - errs;
    const items = diags.map((d) => diagItem(d, marks.has(d.line) && (marks.get(d.line) ?? []).includes(d)));
    const ran = tests && ((tests.passed ?? 0) + (tests.failed ?? 0) > 0 || errs === 0);
    const testLine = tests && (tests.passed !== undefined || tests.failed !== undefined)
      ? ran ? h("p", { class: "tests " + ((tests.failed ?? 0) > 0 ? "bad" : "good") },
        t(`Tests: ${tests.passed ?? 0} geslaagd, ${tests.failed ?? 0} mislukt`, `Tests: ${tests.passed ?? 0} passed, ${tests.failed ?? 0} failed`))
        : h("p", { class: "tests muted" }, t("De tests konden niet lopen: de bestanden compileren niet.", "The tests could not run: the files do not compile."))
      : null;
    const failed = (tests?.list ?? []).filter((x) => !x.passed);
    replace(results,
      h("h2", null, title),
      h("p", { class: "diag-summary " + (errs ? "bad" : "good") },
        errs || warns
          ? t(`${errs} fout(en), ${warns} waarschuwing(en)`, `${errs} error(s), ${warns} warning(s)`)
          : t("Geen fouten of waarschuwingen.", "No errors or warnings.")),
      items.length ? h("ul", { class: "diags" }, items) : null,
      testLine,
      failed.length ? h("ul", { class: "tests-failed" }, failed.map((x) => h("li", null,
        h("code", null, `${x.file ?? ""}${x.line ? ":" + x.line : ""}`), " ", x.name, x.message ? ": " + x.message : x.failures?.length ? ": " + x.failures.join("; ") : ""))) : null);
  }

  /** check validates the editor's content without saving; null when the
   *  server has no check endpoint (older server). */
  async function check(): Promise<{ diags: Diagnostic[]; res: CheckResult } | null> {
    try {
      const res = await ctx.api.post<CheckResult>(`${base(ctx)}/${ruleset}/check`, ta.value);
      const diags = res.diagnostics ?? [...(res.errors ?? []), ...(res.warnings ?? [])];
      return { diags, res };
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && Array.isArray((err.body as { diagnostics?: unknown })?.diagnostics)) {
        // A server that answers the check like a refused PUT.
        const diags = (err.body as { diagnostics: Diagnostic[] }).diagnostics;
        return { diags, res: { ok: false, diagnostics: diags } };
      }
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
      throw err;
    }
  }

  function testsOf(res: CheckResult): { passed?: number; failed?: number; list?: TestResult[] | null } {
    const list = res.tests ?? null;
    return {
      passed: res.tests_passed ?? res.passed ?? (list ? list.filter((x) => x.passed).length : undefined),
      failed: res.tests_failed ?? res.failed ?? (list ? list.filter((x) => !x.passed).length : undefined),
      list,
    };
  }

  const busy = (b: boolean) => {
    for (const btn of toolbar.querySelectorAll("button")) (btn as HTMLButtonElement).disabled = b;
    root.setAttribute("aria-busy", b ? "true" : "false");
  };

  async function onCheck(): Promise<void> {
    busy(true);
    msg.textContent = t("Controleren…", "Checking…");
    try {
      const r = await check();
      if (!r) {
        msg.textContent = t("Deze server kan niet controleren zonder te bewaren; bewaren controleert wel eerst.",
          "This server cannot check without saving; saving does check first.");
        return;
      }
      const errs = r.diags.filter((d) => d.severity === "error").length;
      msg.textContent = errs ? t(`Controle: ${errs} fout(en).`, `Check: ${errs} error(s).`) : t("Controle geslaagd.", "Check passed.");
      showDiagnostics(r.diags, t("Controle", "Check"), testsOf(r.res));
    } catch (err) {
      msg.textContent = "";
      replace(results, errorBox(err));
    } finally {
      busy(false);
    }
  }

  async function onDryRun(): Promise<void> {
    busy(true);
    msg.textContent = t("Proefdraaien…", "Running the dry run…");
    try {
      const dr = await ctx.api.post<DryRun>(`${base(ctx)}/${ruleset}/dryrun`, ta.value);
      msg.textContent = t("Proefdraaien klaar.", "Dry run done.");
      showDryRun(dr);
    } catch (err) {
      msg.textContent = "";
      if (err instanceof ApiError && err.status === 400 && Array.isArray((err.body as { diagnostics?: unknown })?.diagnostics)) {
        showDiagnostics((err.body as { diagnostics: Diagnostic[] }).diagnostics, t("Proefdraaien kan niet: de regels zijn niet geldig", "Cannot dry-run: the rules are invalid"));
      } else if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
        replace(results, h("p", { class: "note" }, t("Deze server kan nog niet proefdraaien.", "This server cannot dry-run yet.")));
      } else replace(results, errorBox(err));
    } finally {
      busy(false);
    }
  }

  /** reasonLabels are the rule labels of the candidate (then the loaded
   *  file), so that a dry run names reasons as the file does. */
  let reasonLabels = new Map<string, { label?: string; label_en?: string }>();

  function summary(s: Summary): HTMLElement {
    return h("span", { class: "decision " + (s.eligible ? "ok" : "no") },
      s.eligible ? t("instap", "eligible") : t("geen instap", "not eligible"),
      ` · ${t("prioriteit", "priority")} ${fmtNumber(s.priority, 2)}`,
      s.reasons && s.reasons.length ? h("ul", { class: "reasons" }, s.reasons.map((id) => {
        const l = reasonLabels.get(id);
        return h("li", { title: id }, l ? label(l) : h("code", null, id));
      })) : null);
  }

  function limits(l: Limits): HTMLElement {
    return h("span", { class: "decision " + (l.limit_error ? "no" : "ok") },
      l.limit_error ? t("fout: ", "error: ") + l.limit_error
        : t(`maximum ${fmtNumber(l.limit, 2)}, ${l.free} vrij`, `limit ${fmtNumber(l.limit, 2)}, ${l.free} free`));
  }

  function showDryRun(dr: DryRun): void {
    reasonLabels = new Map([...ruleLabels(loaded), ...ruleLabels(ta.value)]);
    const changes = dr.changes ?? [];
    const coachChanges = dr.coach_changes ?? [];
    replace(results,
      h("h2", null, t("Proefdraaien", "Dry run")),
      h("p", { class: "dryrun-summary" },
        t(`${dr.changed} van ${dr.referrals} open aanmeldingen krijgen een andere beslissing`,
          `${dr.changed} of ${dr.referrals} open referrals would get another decision`),
        dr.coaches !== undefined && (ruleset !== "intake" || (dr.coaches_changed ?? 0) > 0) ? t(`; bij ${dr.coaches_changed ?? 0} van ${dr.coaches} coaches wijzigt de caseload.`,
          `; the caseload of ${dr.coaches_changed ?? 0} of ${dr.coaches} coaches would change.`) : ".",
        dr.today ? h("span", { class: "muted" }, t(` (beslist voor ${fmtDate(dr.today)})`, ` (decided for ${fmtDate(dr.today)})`)) : null),
      changes.length ? localTable<Change>({
        caption: t("Aanmeldingen waarvan de beslissing wijzigt", "Referrals whose decision would change"),
        captionVisible: true,
        limit: 25,
        rowProps: (c) => ({ class: "dryrun-row", "data-id": c.referral_id }),
        columns: [
          { label: t("Aanmelding", "Referral"), cell: (c) => [
            c.family_id ? h("a", { href: `#/cases/${encodeURIComponent(c.family_id)}` }, c.family_label || c.family_id)
              : (c.family_label || h("code", { title: c.referral_id }, c.referral_id.slice(0, 13))),
            h("div", { class: "muted small" }, c.received_on ? t("ontvangen ", "received ") + fmtDate(c.received_on) : "",
              c.mandated ? t(" · mandaat", " · mandated") : "")] },
          { label: t("Nu", "Now"), cell: (c) => summary(c.before) },
          { label: t("Na de wijziging", "After the change"), cell: (c) => summary(c.after) },
        ],
        rows: changes,
      }) : null,
      coachChanges.length ? localTable<CoachChange>({
        caption: t("Coaches waarvan de caseload wijzigt", "Coaches whose caseload would change"),
        captionVisible: true,
        limit: 25,
        columns: [
          { label: t("Coach", "Coach"), cell: (c) => [c.display_name || c.username, h("div", { class: "muted small" }, t(`${c.active_families} lopende gezinnen`, `${c.active_families} running families`))] },
          { label: t("Nu", "Now"), cell: (c) => limits(c.before) },
          { label: t("Na de wijziging", "After the change"), cell: (c) => limits(c.after) },
        ],
        rows: coachChanges,
      }) : null);
  }

  async function onSave(): Promise<void> {
    busy(true);
    msg.textContent = t("Controleren voor het bewaren…", "Checking before saving…");
    try {
      const r = await check();
      if (r) {
        const errs = r.diags.filter((d) => d.severity === "error");
        if (errs.length) {
          showDiagnostics(r.diags, t("Niet bewaard: de controle vond fouten", "Not saved: the check found errors"), testsOf(r.res));
          msg.textContent = t(`Niet bewaard: ${errs.length} fout(en).`, `Not saved: ${errs.length} error(s).`);
          return;
        }
      }
      msg.textContent = t("Bewaren…", "Saving…");
      let act: RulesStatus;
      try {
        act = await ctx.api.put<RulesStatus>(`${base(ctx)}/${ruleset}`, ta.value);
      } catch (err) {
        if (err instanceof ApiError && err.status === 400 && Array.isArray((err.body as { diagnostics?: unknown })?.diagnostics)) {
          const diags = (err.body as { diagnostics: Diagnostic[] }).diagnostics;
          showDiagnostics(diags, t("Niet bewaard: de regels zijn niet geldig", "Not saved: the rules are invalid"));
          msg.textContent = t("Niet bewaard; er is niets gewijzigd.", "Not saved; nothing was changed.");
          return;
        }
        throw err;
      }
      loaded = ta.value;
      updateDirty();
      marks = new Map();
      drawGutter();
      replace(results);
      setHash(act);
      await refreshMeta();
      msg.textContent = act.activated === false
        ? t("Bewaard: dit was al de actieve versie.", "Saved: this was already the active version.")
        : t(`Bewaard en actief: versie ${short(act.active_version)}.`, `Saved and active: version ${short(act.active_version)}.`);
    } catch (err) {
      msg.textContent = "";
      replace(results, errorBox(err));
    } finally {
      busy(false);
    }
  }

  const hashEl = h("span", { class: "muted", title: src.hash }, t("hash ", "hash "), short(src.hash));
  function setHash(act: RulesStatus): void {
    const f = act.files?.find((x) => x.ruleset === ruleset);
    if (!f) return;
    hashEl.title = f.hash;
    hashEl.textContent = t("hash ", "hash ") + short(f.hash);
  }

  // ---- status and history ---------------------------------------------------
  const statusBox = h("section", { class: "rules-status", "aria-label": t("Actieve regels", "Active rules") });
  const historyBox = h("section", { class: "rules-history", "aria-labelledby": "history-h" });

  function drawStatus(s: RulesStatus): void {
    const loadErr = s.load_status === "error";
    const diags = [...(s.errors ?? []), ...(s.warnings ?? [])];
    replace(statusBox,
      h("dl", { class: "facts" },
        h("div", null, h("dt", null, t("Actieve versie", "Active version")), h("dd", null, h("code", { id: "active-version", title: s.active_version }, short(s.active_version)))),
        h("div", null, h("dt", null, t("Geactiveerd", "Activated")), h("dd", null, fmtDateTimeOr(s.activated_at), " · ", s.activated_by || t("geen gebruiker", "no user"), " · ", sourceName(s.source))),
        h("div", null, h("dt", null, t("Laden", "Load status")), h("dd", null,
          loadErr ? badge(t("fout: de bestanden op schijf zijn geweigerd", "error: the files on disk were rejected"), "error") : badge(t("in orde", "ok"), "ok"))),
        h("div", null, h("dt", null, t("Tests", "Tests")), h("dd", null, loadErr && s.tests_passed + s.tests_failed === 0
          ? t("niet gelopen: de bestanden compileren niet", "not run: the files do not compile")
          : t(`${s.tests_passed} geslaagd, ${s.tests_failed} mislukt`, `${s.tests_passed} passed, ${s.tests_failed} failed`)))),
      loadErr || diags.length ? h("div", { class: loadErr ? "load-errors failed" : "load-errors", role: loadErr ? "alert" : null },
        loadErr ? h("p", null, t(`Geweigerde versie ${short(s.attempted_version)} (${fmtDateTimeOr(s.checked_at)}); de vorige versie blijft actief.`,
          `Rejected version ${short(s.attempted_version)} (${fmtDateTimeOr(s.checked_at)}); the previous version stays active.`)) : null,
        h("ul", { class: "diags" }, diags.map((d) => diagItem(d, showingDisk && inThisFile(d) && d.line > 0)))) : null);
  }

  function drawHistory(list: RulesVersion[], active: string): void {
    replace(historyBox,
      h("h2", { id: "history-h" }, t("Versies", "Versions")),
      localTable<RulesVersion>({
        caption: t("Geactiveerde versies, nieuwste eerst", "Activated versions, newest first"),
        empty: t("Nog geen versies.", "No versions yet."),
        limit: 8,
        rowProps: (v) => ({ class: v === list[0] && v.hash === active ? "active-row" : null, "data-hash": v.hash }),
        columns: [
          { label: t("Versie", "Version"), cell: (v) => [h("code", { title: v.hash }, short(v.hash)), v === list[0] && v.hash === active ? [" ", badge(t("actief", "active"), "ok")] : null] },
          { label: t("Door", "By"), cell: (v) => v.activated_by || h("span", { class: "muted" }, t("geen gebruiker", "no user")) },
          { label: t("Wanneer", "When"), cell: (v) => fmtDateTimeOr(v.activated_at) },
          { label: t("Bron", "Source"), cell: (v) => sourceName(v.source) },
          ...(canEdit ? [{ label: t("Actie", "Action"), cell: (v: RulesVersion) => v === list[0] && v.hash === active ? null
            : h("button", { type: "button", class: "rollback", "aria-label": t(`Terugzetten naar versie ${short(v.hash)}`, `Roll back to version ${short(v.hash)}`), onclick: () => onRollback(v) }, t("Terugzetten", "Roll back")) }] : []),
        ],
        rows: list,
      }));
  }

  async function refreshMeta(): Promise<void> {
    const [s, hist] = await Promise.all([ctx.api.get<RulesStatus>(base(ctx)), ctx.api.get<RulesVersion[]>(`${base(ctx)}/history`)]);
    drawStatus(s);
    drawHistory(hist, s.active_version);
  }

  async function onRollback(v: RulesVersion): Promise<void> {
    const ok = await confirmDialog({
      title: t("Versie terugzetten?", "Roll back to this version?"),
      message: t(`De vier regelbestanden van versie ${short(v.hash)} (${fmtDateTimeOr(v.activated_at)}) worden opnieuw gecontroleerd, op schijf gezet en actief.`,
        `The four rule files of version ${short(v.hash)} (${fmtDateTimeOr(v.activated_at)}) are checked again, written to disk and activated.`),
      confirm: t("Terugzetten", "Roll back"),
    });
    if (!ok) return;
    busy(true);
    msg.textContent = t("Terugzetten…", "Rolling back…");
    try {
      const act = await ctx.api.post<RulesStatus>(`${base(ctx)}/rollback`, { hash: v.hash });
      const fresh = await ctx.api.get<RulesSource>(`${base(ctx)}/${ruleset}?from=active`);
      loaded = fresh.content;
      ta.value = loaded;
      lines = ta.value.split("\n").length;
      marks = new Map();
      drawGutter();
      updateDirty();
      replace(results);
      setHash(act);
      await refreshMeta();
      msg.textContent = t(`Teruggezet: versie ${short(act.active_version)} is actief.`, `Rolled back: version ${short(act.active_version)} is active.`);
    } catch (err) {
      msg.textContent = "";
      if (err instanceof ApiError && err.status === 400 && Array.isArray((err.body as { diagnostics?: unknown })?.diagnostics)) {
        showDiagnostics((err.body as { diagnostics: Diagnostic[] }).diagnostics, t("Terugzetten geweigerd", "Rollback refused"));
      } else replace(results, errorBox(err));
    } finally {
      busy(false);
    }
  }

  // ---- tabs, toolbar, layout ---------------------------------------------------
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("Regelbestanden", "Rule files") },
    RULESETS.map((r) => h("a", {
      role: "tab", id: "tab-" + r, href: `#/rules/${r}`, "aria-selected": r === ruleset ? "true" : "false",
      "aria-controls": "rules-panel", tabindex: r === ruleset ? "0" : "-1", class: r === ruleset ? "active" : null,
      onclick: (e: Event) => {
        if (r !== ruleset && ta.value !== loaded && !window.confirm(t("Niet bewaarde wijzigingen gaan verloren. Doorgaan?", "Unsaved changes will be lost. Continue?"))) e.preventDefault();
      },
      onkeydown: (e: KeyboardEvent) => {
        const i = RULESETS.indexOf(r);
        const j = e.key === "ArrowRight" ? (i + 1) % RULESETS.length : e.key === "ArrowLeft" ? (i + RULESETS.length - 1) % RULESETS.length : -1;
        if (j >= 0) { e.preventDefault(); (tabs.querySelector(`#tab-${RULESETS[j]}`) as HTMLElement).focus(); }
      },
    }, rulesetName(r), " ", h("span", { class: "fname" }, r + ".yaml"))));

  const fromPick = h("select", {
    id: "rules-from", "aria-label": t("Welke versie van het bestand", "Which version of the file"),
    onchange: () => {
      const v = fromPick.value;
      if (ta.value !== loaded && !window.confirm(t("Niet bewaarde wijzigingen gaan verloren. Doorgaan?", "Unsaved changes will be lost. Continue?"))) { fromPick.value = from; return; }
      from = v as "active" | "disk";
      ctx.navigate(`/rules/${ruleset}?from=${v}`);
    },
  },
  h("option", { value: "active", selected: from === "active" ? true : null }, t("actieve versie", "active version")),
  h("option", { value: "disk", selected: from === "disk" ? true : null }, t("op schijf", "on disk")));

  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": t("Acties", "Actions") },
    canEdit ? [
      h("button", { type: "button", id: "btn-check", onclick: onCheck, title: "Ctrl+Enter" }, t("Controleren", "Check")),
      ruleset !== "signals" ? h("button", { type: "button", id: "btn-dryrun", onclick: onDryRun,
        title: t("Welke beslissingen over open aanmeldingen en welke caseloads zouden wijzigen", "Which decisions on open referrals and which caseloads would change") }, t("Proefdraaien", "Dry-run")) : null,
      h("button", { type: "button", id: "btn-save", class: "primary", onclick: onSave, title: "Ctrl+S" }, t("Bewaren en activeren", "Save and activate")),
      h("button", { type: "button", id: "btn-revert", onclick: () => {
        ta.value = loaded; lines = ta.value.split("\n").length; marks = new Map(); drawGutter(); updateDirty(); replace(results); msg.textContent = "";
      } }, t("Wijzigingen ongedaan maken", "Discard changes")),
    ] : h("span", { class: "readonly-note", id: "readonly-note" }, t("Alleen lezen: je rol kan de regels niet wijzigen.", "Read only: your role cannot change the rules.")),
    dirtyNote);

  ta.addEventListener("keydown", (e: KeyboardEvent) => {
    if (!canEdit) return;
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); void onSave(); }
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); void onCheck(); }
  });

  // Unsaved edits: a reload or closing the tab asks the browser's question; a
  // link to another page of the app (navigation, a family) asks ours.
  const leaveGuard = (e: BeforeUnloadEvent) => { if (ta.value !== loaded) e.preventDefault(); };
  const linkGuard = (e: MouseEvent) => {
    const a = (e.target as Element | null)?.closest?.("a[href^='#/']");
    if (!a || a.closest(".tabs") || ta.value === loaded) return;
    if (!window.confirm(t("Niet bewaarde wijzigingen gaan verloren. Doorgaan?", "Unsaved changes will be lost. Continue?"))) e.preventDefault();
  };
  window.addEventListener("beforeunload", leaveGuard);
  document.addEventListener("click", linkGuard, true);
  ctx.onLeave(() => { window.removeEventListener("beforeunload", leaveGuard); document.removeEventListener("click", linkGuard, true); });

  // The disk's file of a rejected load: its errors are marked where they are.
  const showingDisk = from === "disk";
  if (showingDisk && status.load_status === "error") markDiags([...(status.errors ?? []), ...(status.warnings ?? [])]);
  drawStatus(status);
  drawHistory(history, status.active_version);
  replace(root,
    h("div", { class: "rules-page" },
      h("h1", null, t("Regels", "Rules"), " ", h("span", { class: "muted" }, "· " + ctx.region)),
      statusBox,
      tabs,
      h("section", { id: "rules-panel", role: "tabpanel", "aria-labelledby": "tab-" + ruleset, class: "rules-panel" },
        h("div", { class: "file-head" },
          h("h2", null, h("code", null, fileName)),
          h("label", { class: "from" }, t("Toon: ", "Show: "), fromPick),
          hashEl),
        canEdit ? h("p", { id: "editor-help", class: "muted small" },
          t("Ctrl+Enter controleert, Ctrl+S bewaart. Klik op een fout om naar haar regel te springen. Tab verlaat de editor.",
            "Ctrl+Enter checks, Ctrl+S saves. Click an error to jump to its line. Tab leaves the editor.")) : null,
        toolbar,
        editor,
        msg,
        results),
      historyBox));
  syncScroll();
}

/** ruleLabels reads the ids and labels of a rule file's rules (a line
 *  `- id: x` and the `label:` / `label_en:` lines after it); enough to name
 *  reasons, not a YAML parser. */
function ruleLabels(yaml: string): Map<string, { label?: string; label_en?: string }> {
  const out = new Map<string, { label?: string; label_en?: string }>();
  let cur: { label?: string; label_en?: string } | null = null;
  const unq = (v: string) => v.trim().replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  for (const line of yaml.split("\n")) {
    let m = /^\s*-\s+id:\s*([a-z0-9_]+)\s*(#.*)?$/.exec(line);
    if (m) {
      cur = {};
      out.set(m[1], cur);
      continue;
    }
    m = /^\s+(label|label_en):\s*(.+?)\s*$/.exec(line);
    if (m && cur) cur[m[1] as "label" | "label_en"] = unq(m[2]);
    else if (/^\S/.test(line)) cur = null;
  }
  return out;
}
