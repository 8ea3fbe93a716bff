// Reports: a region's year against its targets (docs/api.md "Report"), as
// hand-drawn SVG bar charts (each with the same figures in a table) and
// tables, and the CSV download.
import type { Ctx, Route } from "../app";
import { h, replace } from "../dom";
import { label, t } from "../i18n";
import { errorBox, fmtDateTime } from "../ui";

type N = number | null;

interface Report {
  region: string;
  name: string;
  year: number;
  scope: string;
  from: string;
  to: string;
  as_of: string;
  generated_at: string;
  rules_version: string;
  referrals: { received: number; mandated: number; non_articulated: number; non_articulated_share: N };
  consults: { count: number; minutes: number };
  decisions: { total: number; by_kind: Record<string, number>; overrides: number; median_days_to_decision: N };
  trajectories: {
    started: number; started_mandated: number; started_non_mandated: number; target: N; mandated_reserve: N;
    non_mandated_ceiling: N; target_remaining: N; running_at_end: number; closed: number;
    avg_duration_days: N; median_duration_days: N; rtj_requests: number;
  };
  contacts: { count: number; trajectory_weeks: number; per_trajectory_week: N };
  closure_reasons: { id: string; label: string; label_en?: string; count: number }[] | null;
  notes: { metric: string; text: string; text_en?: string }[] | null;
}

export const routes: Route[] = [
  { path: "/reports", roles: ["coordinator", "reviewer"], nav: ["Rapport", "Report"], render: renderReport },
];

const loc = () => t("nl-BE", "en-GB");
export function num(n: N | undefined, digits = 2): string {
  if (n === null || n === undefined) return "—";
  return n.toLocaleString(loc(), { maximumFractionDigits: digits });
}
function pct(n: N): string {
  return n === null ? "—" : (n * 100).toLocaleString(loc(), { maximumFractionDigits: 1 }) + " %";
}

function kindName(k: string): string {
  switch (k) {
    case "start": return t("Gestart", "Start");
    case "decline": return t("Geweigerd", "Decline");
    case "redirect": return t("Doorverwezen", "Redirect");
    case "consult": return t("Enkel consult", "Consult only");
    default: return k;
  }
}

async function renderReport(root: HTMLElement, ctx: Ctx): Promise<void> {
  if (!ctx.region) {
    replace(root, errorBox(new Error(t("Je account heeft geen regio.", "Your account has no region."))));
    return;
  }
  const thisYear = Number(new Date().toLocaleString("en-GB", { timeZone: "Europe/Brussels", year: "numeric" }));
  let year = Number(ctx.params.year) || thisYear;
  if (year > thisYear || year < 2000) year = thisYear;
  const path = `/v1/regions/${encodeURIComponent(ctx.region)}/report?year=${year}`;

  const years: number[] = [];
  for (let y = thisYear; y >= Math.max(2000, thisYear - 7); y--) years.push(y);
  if (!years.includes(year)) years.push(year);
  const pick = h("select", { id: "report-year", onchange: () => ctx.navigate(`/reports?year=${pick.value}`) },
    years.map((y) => h("option", { value: String(y), selected: y === year ? true : null }, String(y))));
  const dlMsg = h("span", { class: "dl-msg", role: "status" });
  const csvName = `samenplan-rapport-${ctx.region}-${year}.csv`;
  const dlBtn = h("button", { type: "button", id: "csv-download", onclick: async () => {
    dlBtn.disabled = true;
    dlMsg.textContent = t("CSV ophalen…", "Fetching the CSV…");
    try {
      const csv = await ctx.api.text(`${path}&format=csv`, "text/csv");
      const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
      const a = h("a", { href: url, download: csvName, class: "sr-only" }, csvName);
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 10_000);
      dlMsg.textContent = t(`Gedownload: ${csvName}`, `Downloaded: ${csvName}`);
    } catch (err) {
      dlMsg.textContent = "";
      dlMsg.replaceWith(errorBox(err));
    } finally {
      dlBtn.disabled = false;
    }
  } }, t("CSV downloaden", "Download CSV"));

  const head = h("div", { class: "report-head" },
    h("h1", null, t("Jaarrapport", "Yearly report")),
    h("label", null, t("Jaar ", "Year "), pick),
    dlBtn, dlMsg);
  const body = h("div", { class: "report-body" }, h("p", { class: "loading", role: "status" }, t("Laden…", "Loading…")));
  replace(root, head, body);

  let r: Report;
  try {
    r = await ctx.api.get<Report>(path);
  } catch (err) {
    replace(body, errorBox(err));
    return;
  }
  const tr = r.trajectories;
  const hasTarget = tr.target !== null && tr.target !== undefined;

  const startedRows: Bar[] = [
    { label: t("Gestart", "Started"), value: tr.started, target: tr.target, targetLabel: t("doel", "target") },
    { label: t("Via mandaat", "Mandated"), value: tr.started_mandated, target: tr.mandated_reserve, targetLabel: t("reserve", "reserve"), cls: "b2" },
    { label: t("Zonder mandaat", "Not mandated"), value: tr.started_non_mandated, target: tr.non_mandated_ceiling, targetLabel: t("plafond", "ceiling"), cls: "b3" },
  ];
  const runRows: Bar[] = [
    { label: t("Lopend op het einde", "Running at the end"), value: tr.running_at_end },
    { label: t("Afgesloten", "Closed"), value: tr.closed, cls: "b2" },
  ];
  const reasons = r.closure_reasons ?? [];
  const kinds = Object.keys(r.decisions.by_kind ?? {});
  const order = ["start", "decline", "redirect", "consult"];
  kinds.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));

  replace(body,
    h("p", { class: "report-meta" },
      r.name, " · ", r.region, " · ", t(`${r.from} tot ${r.to}`, `${r.from} to ${r.to}`), " · ",
      t(`stand op ${r.as_of}`, `as of ${r.as_of}`), " · ",
      t("regels ", "rules "), h("code", { title: r.rules_version }, (r.rules_version || "—").slice(0, 10)),
      r.scope !== "region" ? [" · ", h("strong", null, t("alleen je eigen caseload", "your own caseload only"))] : null),
    h("div", { class: "cards" },
      h("section", { class: "card", "aria-labelledby": "c-started" },
        h("h2", { id: "c-started" }, hasTarget ? t("Gestarte trajecten t.o.v. het doel", "Started trajectories against the target") : t("Gestarte trajecten", "Started trajectories")),
        barChart("chart-started", startedRows),
        figuresTable(startedRows, hasTarget ? t("Doel", "Target") : null),
        hasTarget ? h("p", { class: "muted small" }, t(`Nog ${num(tr.target_remaining)} te gaan tot het doel.`, `${num(tr.target_remaining)} to go to the target.`)) : null),
      h("section", { class: "card", "aria-labelledby": "c-running" },
        h("h2", { id: "c-running" }, t("Lopend en afgesloten", "Running and closed")),
        barChart("chart-running", runRows),
        figuresTable(runRows, null)),
      card("c-referrals", t("Aanmeldingen", "Referrals"), [
        [t("Ontvangen", "Received"), num(r.referrals.received)],
        [t("Via mandaat", "Mandated"), num(r.referrals.mandated)],
        [t("Niet-gearticuleerd", "Non-articulated"), num(r.referrals.non_articulated)],
        [t("Aandeel niet-gearticuleerd", "Non-articulated share"), pct(r.referrals.non_articulated_share)],
      ]),
      card("c-consults", t("Consulten (permanentie)", "Consults (permanence)"), [
        [t("Aantal", "Count"), num(r.consults.count)],
        [t("Minuten", "Minutes"), num(r.consults.minutes)],
      ]),
      card("c-decisions", t("Beslissingen", "Decisions"), [
        ...kinds.map((k): [string, string] => [kindName(k), num(r.decisions.by_kind[k])]),
        [t("Totaal", "Total"), num(r.decisions.total)],
        [t("Met overschrijving", "With override"), num(r.decisions.overrides)],
        [t("Mediaan dagen aanmelding → beslissing", "Median days referral → decision"), num(r.decisions.median_days_to_decision)],
      ]),
      card("c-durations", t("Duur en contact", "Duration and contact"), [
        [t("Gemiddelde duur (dagen)", "Average duration (days)"), num(tr.avg_duration_days)],
        [t("Mediaan duur (dagen)", "Median duration (days)"), num(tr.median_duration_days)],
        [t("Contacten", "Contacts"), num(r.contacts.count)],
        [t("Trajectweken", "Trajectory weeks"), num(r.contacts.trajectory_weeks)],
        [t("Contacten per trajectweek", "Contacts per trajectory week"), num(r.contacts.per_trajectory_week)],
        [t("RTJ-aanvragen", "RTJ requests"), num(tr.rtj_requests)],
      ]),
      card("c-closures", t("Redenen van afsluiten", "Closure reasons"),
        reasons.length ? reasons.map((c): [string, string] => [label(c) || c.id, num(c.count)]) : [[t("Geen", "None"), "—"]])),
    (r.notes ?? []).length ? h("section", { class: "notes", "aria-labelledby": "c-notes" },
      h("h2", { id: "c-notes", class: "small" }, t("Toelichting", "Notes")),
      h("ul", null, (r.notes ?? []).map((n) => h("li", null, h("code", null, n.metric), ": ", t(n.text, n.text_en || n.text))))) : null,
    h("p", { class: "muted small" }, t("Gemaakt ", "Generated "), fmtDateTime(r.generated_at)));
}

function card(id: string, title: string, rows: [string, string][]): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    h("table", null,
      h("thead", { class: "sr-only" }, h("tr", null, h("th", { scope: "col" }, t("Cijfer", "Figure")), h("th", { scope: "col", class: "num" }, t("Waarde", "Value")))),
      h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", { class: "num" }, v))))));
}

interface Bar { label: string; value: number; target?: N; targetLabel?: string; cls?: string }

/** barChart draws horizontal bars, each with its number, and a dashed
 *  marker at its target; role="img" with the figures in aria-label. */
function barChart(id: string, rows: Bar[]): SVGSVGElement {
  const NS = "http://www.w3.org/2000/svg";
  // 13px text is about 7.6px a character: the label column fits the longest label.
  const W = 340, numW = 66, rowH = 30, pad = 6;
  const labelW = Math.min(150, Math.max(80, Math.ceil(Math.max(...rows.map((r) => r.label.length)) * 7.6) + 12));
  const barW = W - labelW - numW - 8;
  const max = Math.max(1, ...rows.map((r) => Math.max(r.value, r.target ?? 0)));
  const H = rows.length * rowH + pad * 2;
  const s = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const aria = rows.map((r) => r.target !== null && r.target !== undefined
    ? `${r.label}: ${num(r.value)} ${t("van", "of")} ${r.targetLabel ?? ""} ${num(r.target)}`
    : `${r.label}: ${num(r.value)}`).join("; ");
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": aria, class: "chart", id }) as SVGSVGElement;
  svg.appendChild(s("title", {}, aria));
  rows.forEach((r, i) => {
    const y = pad + i * rowH;
    const g = s("g", { "aria-hidden": "true" });
    g.appendChild(s("text", { x: 0, y: y + rowH / 2 + 4 }, r.label));
    g.appendChild(s("rect", { class: "track", x: labelW, y: y + 6, width: barW, height: rowH - 14, rx: 3 }));
    g.appendChild(s("rect", { class: "bar " + (r.cls ?? ""), x: labelW, y: y + 6, width: Math.max(r.value > 0 ? 2 : 0, (r.value / max) * barW), height: rowH - 14, rx: 3 }));
    if (r.target !== null && r.target !== undefined) {
      const tx = labelW + (r.target / max) * barW;
      g.appendChild(s("line", { class: "target", x1: tx, x2: tx, y1: y + 2, y2: y + rowH - 4 }));
    }
    const txt = r.target !== null && r.target !== undefined ? `${num(r.value)} / ${num(r.target)}` : num(r.value);
    g.appendChild(s("text", { class: "val", x: W - 4, y: y + rowH / 2 + 4, "text-anchor": "end" }, txt));
    svg.appendChild(g);
  });
  return svg;
}

function figuresTable(rows: Bar[], targetHead: string | null): HTMLElement {
  return h("table", { class: "chart-table" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, t("Cijfer", "Figure")), h("th", { scope: "col", class: "num" }, t("Aantal", "Count")),
      targetHead ? h("th", { scope: "col", class: "num" }, targetHead) : null)),
    h("tbody", null, rows.map((r) => h("tr", null, h("th", { scope: "row" }, r.label), h("td", { class: "num" }, num(r.value)),
      targetHead ? h("td", { class: "num" }, r.target !== null && r.target !== undefined ? `${num(r.target)} (${r.targetLabel})` : "—") : null))));
}
