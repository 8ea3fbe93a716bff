// Signals: the region's fired signals (docs/api.md "SignalList"), most
// severe first, paged, filtered by severity and by signal id.
import type { Ctx, Route } from "../app";
import { h, replace } from "../dom";
import { label, t } from "../i18n";
import { errorBox, table } from "../ui";

interface Signal {
  id: string; label: string; label_en?: string; severity: string; about: string;
  subject_id: string; family_id: string; family_label: string; region: string; rules_version: string;
}
interface SignalList {
  region: string; scope: string; rules_version: string; total: number;
  by_severity: Record<string, number> | null; limit: number; offset: number; items: Signal[] | null;
}
interface RuleFile { ruleset: string; content?: string }
interface SignalDef { id: string; label: string; label_en?: string; severity?: string }

export const routes: Route[] = [
  { path: "/signals", roles: ["coordinator", "reviewer"], nav: ["Signalen", "Signals"], render: renderSignals },
];

const SEVERITIES = ["critical", "warning", "info"];
const PAGE_SIZES = [25, 50, 100];

export function severityName(s: string): string {
  switch (s) {
    case "critical": return t("kritiek", "critical");
    case "warning": return t("waarschuwing", "warning");
    case "info": return t("info", "info");
    default: return s;
  }
}

function aboutName(a: string): string {
  return a === "referral" ? t("aanmelding", "referral") : a === "trajectory" ? t("traject", "trajectory") : a;
}

/** signalDefs reads the signal ids and labels of signals.yaml (the lines
 *  `- id:`, `label:`, `label_en:`, `severity:` under `signals:`). */
function signalDefs(yaml: string): SignalDef[] {
  const out: SignalDef[] = [];
  let inSignals = false;
  let cur: SignalDef | null = null;
  const unq = (s: string) => s.trim().replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  for (const line of yaml.split("\n")) {
    if (/^\S/.test(line)) { inSignals = /^signals:\s*(#.*)?$/.test(line); cur = null; continue; }
    if (!inSignals) continue;
    let m = /^\s*-\s+id:\s*(.+?)\s*(#.*)?$/.exec(line);
    if (m) { cur = { id: unq(m[1]), label: "" }; out.push(cur); continue; }
    if (!cur) continue;
    m = /^\s+(label|label_en|severity):\s*(.+?)\s*$/.exec(line);
    if (m) (cur as unknown as Record<string, string>)[m[1]] = unq(m[2]);
  }
  return out;
}

async function renderSignals(root: HTMLElement, ctx: Ctx): Promise<void> {
  if (!ctx.region) {
    replace(root, errorBox(new Error(t("Je account heeft geen regio.", "Your account has no region."))));
    return;
  }
  const severity = SEVERITIES.includes(ctx.params.severity) ? ctx.params.severity : "";
  const signal = /^[a-z0-9_]+$/.test(ctx.params.signal ?? "") ? ctx.params.signal : "";
  const askedLimit = Math.floor(Number(ctx.params.limit));
  const limit = askedLimit >= 1 && askedLimit <= 1000 ? askedLimit : 25;
  const sizes = PAGE_SIZES.includes(limit) ? PAGE_SIZES : [...PAGE_SIZES, limit].sort((a, b) => a - b);
  const offset = Math.max(0, Math.floor(Number(ctx.params.offset) || 0));
  const reg = encodeURIComponent(ctx.region);
  const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  if (severity) q.set("severity", severity);
  if (signal) q.set("signal", signal);

  const go = (p: { severity?: string; signal?: string; limit?: number; offset?: number }) => {
    const n = new URLSearchParams();
    const sv = p.severity ?? severity, sg = p.signal ?? signal, l = p.limit ?? limit, o = p.offset ?? 0;
    if (sv) n.set("severity", sv);
    if (sg) n.set("signal", sg);
    if (l !== 25) n.set("limit", String(l));
    if (o) n.set("offset", String(o));
    const s = n.toString();
    ctx.navigate("/signals" + (s ? "?" + s : ""));
  };

  const [list, defs] = await Promise.all([
    ctx.api.get<SignalList>(`/v1/regions/${reg}/signals?${q}`),
    ctx.api.get<{ files: RuleFile[] }>(`/v1/regions/${reg}/rules`)
      .then((s) => signalDefs(s.files.find((f) => f.ruleset === "signals")?.content ?? ""))
      .catch(() => [] as SignalDef[]),
  ]);
  const items = list.items ?? [];
  for (const it of items) if (!defs.some((d) => d.id === it.id)) defs.push({ id: it.id, label: it.label, label_en: it.label_en });
  if (signal && !defs.some((d) => d.id === signal)) defs.push({ id: signal, label: signal });

  const sevPick = h("select", { id: "f-severity", onchange: () => go({ severity: sevPick.value }) },
    h("option", { value: "" }, t("alle", "all")),
    SEVERITIES.map((s) => h("option", { value: s, selected: s === severity ? true : null }, severityName(s))));
  const sigPick = h("select", { id: "f-signal", onchange: () => go({ signal: sigPick.value }) },
    h("option", { value: "" }, t("alle signalen", "all signals")),
    defs.map((d) => h("option", { value: d.id, selected: d.id === signal ? true : null }, label(d) || d.id)));
  const sizePick = h("select", { id: "f-limit", onchange: () => go({ limit: Number(sizePick.value) }) },
    sizes.map((n) => h("option", { value: String(n), selected: n === limit ? true : null }, String(n))));

  const bySev = list.by_severity ?? {};

  replace(root,
    h("h1", null, t("Signalen", "Signals"), " ", h("span", { class: "muted" }, "· " + list.region)),
    h("div", { class: "sev-counts", "aria-label": t("Aantal per ernst", "Count by severity") },
      SEVERITIES.filter((s) => bySev[s]).map((s) => h("span", { class: "sev-badge " + s }, `${severityName(s)}: ${bySev[s]}`)),
      h("span", { class: "muted" }, t(`${list.total} in totaal`, `${list.total} in total`))),
    h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault(), "aria-label": t("Filter", "Filter") },
      h("label", null, t("Ernst", "Severity"), sevPick),
      h("label", null, t("Signaal", "Signal"), sigPick),
      h("label", null, t("Per pagina", "Per page"), sizePick),
      severity || signal ? h("button", { type: "button", onclick: () => go({ severity: "", signal: "" }) }, t("Filters wissen", "Clear filters")) : null),
    table<Signal>({
      caption: t("Signalen van de regio", "Signals of the region"),
      empty: severity || signal ? t("Geen signalen voor deze filter.", "No signals match this filter.") : t("Geen signalen: niets vraagt nu aandacht.", "No signals: nothing needs attention now."),
      rowProps: (s) => ({ "data-signal": s.id }),
      columns: [
        { label: t("Ernst", "Severity"), cell: (s) => h("span", { class: "sev-badge " + s.severity }, severityName(s.severity)) },
        { label: t("Signaal", "Signal"), cell: (s) => [label(s) || s.id, h("br"), h("code", null, s.id)] },
        { label: t("Over", "About"), cell: (s) => aboutName(s.about) },
        { label: t("Gezin", "Family"), cell: (s) => s.family_id ? h("a", { href: `#/cases/${encodeURIComponent(s.family_id)}` }, s.family_label || s.family_id) : "—" },
      ],
      rows: items,
      page: { total: list.total, limit, offset, onPage: (o) => go({ offset: o }) },
    }));
}
