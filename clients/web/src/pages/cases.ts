// The cases (issue 5, item 3): a searchable, filterable, paged list, and
// the case page (src/pages/case/page.ts). Both follow the server's events
// and re-fetch what changed, without a reload.
import type { Ctx, Route } from "../app";
import { loading } from "../ui";
import { h, replace } from "../dom";
import { label, t } from "../i18n";
import { renderCase } from "./case/page";
import { debounce, live } from "./case/live";
import { Coach, badge, failed, coachName, daysAgo, enumLabel, fmtDay, pager, regionCoaches } from "./case/util";

export interface CaseSummary {
  family_id: string;
  region: string;
  label: string;
  municipality: string;
  language: string;
  status: string;
  trajectory_id?: string;
  lead_coach_id?: string;
  started_on: string | null;
  members: number;
  open_referrals: number;
  last_contact_at: string | null;
  signals: string[] | null;
  conflicts: number;
  quarantined: number;
}

interface CaseList { items: CaseSummary[]; total: number; limit: number; offset: number }
interface SignalLabel { id: string; label: string; label_en?: string; severity: string }

const PAGE = 25;
const STATUSES = ["active", "paused", "closed", "intake", "none"];
/** signalLabels: the region's signal rules seen so far (id → labels). */
const signalLabels = new Map<string, Map<string, SignalLabel>>();

export const routes: Route[] = [
  {
    path: "/cases",
    roles: ["coordinator", "reviewer"],
    nav: ["Dossiers", "Cases"],
    render: renderList,
  },
  {
    path: "/cases/:id",
    roles: ["coordinator", "reviewer"],
    render: renderCase,
  },
];

async function loadSignalLabels(ctx: Ctx, region: string): Promise<Map<string, SignalLabel>> {
  let m = signalLabels.get(region);
  if (m) return m;
  m = new Map();
  try {
    const list = await ctx.api.get<{ items: SignalLabel[] }>(`/v1/regions/${encodeURIComponent(region)}/signals?limit=1000`);
    for (const s of list.items ?? []) if (!m.has(s.id)) m.set(s.id, s);
  } catch {
    // the list works without labels: ids are shown
  }
  signalLabels.set(region, m);
  return m;
}

async function renderList(root: HTMLElement, ctx: Ctx): Promise<void> {
  const region = ctx.region;
  const p = ctx.params;
  const state = { q: p.q ?? "", status: p.status ?? "", coach: p.coach ?? "", signal: p.signal ?? "", offset: Math.max(0, Number(p.offset) || 0) };
  const [coaches, sigs] = await Promise.all([
    regionCoaches(ctx, region).catch(() => [] as Coach[]),
    loadSignalLabels(ctx, region),
  ]);

  const results = h("div", { class: "results" }, loading(t("Dossiers laden…", "Loading cases…")));
  const count = h("p", { class: "muted", role: "status", id: "case-count" });
  const q = h("input", { type: "search", id: "f-q", name: "q", value: state.q, placeholder: t("naam, gemeente, gezinslid", "name, municipality, member") });
  const select = (id: string, name: string, value: string, opts: [string, string][]) =>
    h("select", { id, name, onchange: () => apply() }, opts.map(([v, text]) => h("option", { value: v, selected: v === value ? true : null }, text)));
  const status = select("f-status", "status", state.status, [["", t("alle", "all")], ...STATUSES.map((s) => [s, enumLabel("trajectory", s)] as [string, string])]);
  const coach = select("f-coach", "coach", state.coach, [["", t("alle coaches", "all coaches")], ...coaches.map((c) => [c.id, c.display_name || c.username] as [string, string])]);
  const signal = select("f-signal", "signal", state.signal, [["", t("alle", "all")], ...[...sigs.values()].map((s) => [s.id, label(s) || s.id] as [string, string])]);
  if (state.signal && !sigs.has(state.signal)) signal.appendChild(h("option", { value: state.signal, selected: true }, state.signal));

  const url = () => {
    const u = new URLSearchParams();
    for (const k of ["q", "status", "coach", "signal"] as const) if (state[k]) u.set(k, state[k]);
    if (state.offset) u.set("offset", String(state.offset));
    const s = u.toString();
    return "/cases" + (s ? "?" + s : "");
  };
  const apply = (offset = 0) => {
    state.q = q.value.trim();
    state.status = status.value;
    state.coach = coach.value;
    state.signal = signal.value;
    state.offset = offset;
    // keep the filters in the address (bookmarkable, back button) without re-rendering the page
    history.replaceState(null, "", "#" + url());
    void load();
  };

  let seq = 0;
  const load = async (quiet = false): Promise<void> => {
    const my = ++seq;
    const u = new URLSearchParams({ region, limit: String(PAGE), offset: String(state.offset) });
    for (const k of ["q", "status", "coach", "signal"] as const) if (state[k]) u.set(k, state[k]);
    if (!quiet) results.setAttribute("aria-busy", "true");
    try {
      const list = await ctx.api.get<CaseList>(`/v1/families?${u}`);
      if (my !== seq) return;
      drawList(list);
    } catch (err) {
      if (my === seq) replace(results, failed(err, () => void load()));
    } finally {
      if (my === seq) results.removeAttribute("aria-busy");
    }
  };

  const drawList = (list: CaseList) => {
    // a live refresh keeps the reader's place: the focused case link stays focused
    const active = document.activeElement as HTMLElement | null;
    const focusFamily = active && results.contains(active) ? active.closest<HTMLElement>("tr[data-family]")?.dataset.family : undefined;
    const from = list.total ? list.offset + 1 : 0;
    count.textContent = t(`${list.total} dossiers`, `${list.total} cases`) + (list.total > list.limit ? t(` — ${from} tot ${Math.min(list.offset + list.limit, list.total)}`, ` — ${from} to ${Math.min(list.offset + list.limit, list.total)}`) : "");
    replace(results,
      list.items.length === 0
        ? h("p", { class: "empty" }, t("Geen dossiers gevonden met deze filters.", "No cases match these filters."))
        : h("div", { class: "table-wrap" }, h("table", { class: "cases", id: "case-table" },
          h("caption", { class: "sr-only" }, t("Dossiers", "Cases")),
          h("thead", null, h("tr", null, ...[t("Gezin", "Family"), t("Gemeente", "Municipality"), t("Status", "Status"), t("Hoofdcoach", "Lead coach"),
            t("Laatste contact", "Last contact"), t("Signalen", "Signals"), t("Let op", "Attention")].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", null, list.items.map((c) => h("tr", { dataset: { family: c.family_id } },
            h("th", { scope: "row" }, h("a", { href: `#/cases/${encodeURIComponent(c.family_id)}` }, c.label || t("(zonder naam)", "(no name)")),
              h("div", { class: "muted small" }, t(`${c.members} gezinsleden`, `${c.members} members`))),
            h("td", null, c.municipality || "—"),
            h("td", null, badge(enumLabel("trajectory", c.status), "st-" + c.status), c.started_on ? h("div", { class: "muted small" }, t("sinds ", "since "), fmtDay(c.started_on)) : null),
            h("td", null, c.lead_coach_id ? coachName(coaches, c.lead_coach_id) : "—"),
            h("td", null, c.last_contact_at ? daysAgo(c.last_contact_at) : "—"),
            h("td", null, (c.signals ?? []).length ? h("ul", { class: "plain" }, (c.signals ?? []).map((s) => {
              const x = sigs.get(s);
              return h("li", null, badge(x ? label(x) || s : s, "sev-" + (x?.severity ?? "warning")));
            })) : "—"),
            h("td", null,
              c.open_referrals ? badge(t(`${c.open_referrals} aanmelding open`, `${c.open_referrals} open referral`), "info") : null,
              c.conflicts ? badge(t(`${c.conflicts} conflicten`, `${c.conflicts} conflicts`), "warn") : null,
              c.quarantined ? badge(t(`${c.quarantined} in quarantaine`, `${c.quarantined} quarantined`), "bad") : null)))))),
      list.total > list.limit ? pager(list.total, list.limit, list.offset, (o) => {
        apply(o);
        document.getElementById("cases-h")?.focus();
      }) : null);
    if (focusFamily) results.querySelector<HTMLElement>(`tr[data-family="${CSS.escape(focusFamily)}"] a`)?.focus();
  };

  replace(root,
    h("h1", { id: "cases-h", tabindex: "-1" }, t("Dossiers", "Cases"), " ", h("span", { class: "muted small" }, region)),
    h("form", { class: "filters", role: "search", onsubmit: (e: Event) => { e.preventDefault(); apply(); } },
      h("div", { class: "field grow" }, h("label", { for: "f-q" }, t("Zoeken", "Search")), q),
      h("div", { class: "field" }, h("label", { for: "f-status" }, t("Status", "Status")), status),
      h("div", { class: "field" }, h("label", { for: "f-coach" }, t("Coach", "Coach")), coach),
      h("div", { class: "field" }, h("label", { for: "f-signal" }, t("Signaal", "Signal")), signal),
      h("div", { class: "field buttons" },
        h("button", { type: "submit", class: "primary" }, t("Zoeken", "Search")),
        h("button", { type: "button", onclick: () => { q.value = ""; status.value = ""; coach.value = ""; signal.value = ""; apply(); q.focus(); } }, t("Wissen", "Clear")))),
    count, results);
  await load();

  // Live: any case of the region changed — re-fetch the page quietly.
  live(ctx, debounce(() => void load(true), 1000));
}
