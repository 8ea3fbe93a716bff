// Helpers shared by the intake board and the case pages: coaches of a
// region, the region's configured labels, dates, ISO weeks, paging, a
// confirm dialog. (Page-local until the shared src/ui.ts offers the same.)
import type { Ctx } from "../../app";
import { ApiError } from "../../api";
import { h } from "../../dom";
import { label, t } from "../../i18n";
import { confirmDialog as uiConfirm, errorBox, fmtDate, fmtDateTime, pager as uiPager } from "../../ui";

export interface Coach {
  id: string;
  username: string;
  display_name: string;
  fte?: number;
  volunteer?: boolean;
  limit?: number;
  limit_error?: string;
  active_families?: number;
  free?: number;
}

interface BoardCoach {
  coach_id: string;
  username: string;
  display_name: string;
  fte: number;
  volunteer: boolean;
  limit: number;
  limit_error?: string;
  active_families: number;
  free: number;
}

/** workRegion is the region a page may build URLs with: the one asked for
 *  when it is one of the caller's, else the caller's current region. */
export function workRegion(ctx: Ctx, wanted?: string): string {
  return wanted && ctx.user.regions.includes(wanted) ? wanted : ctx.region;
}

/** regionCoaches lists the region's coaches: GET /v1/regions/{r}/coaches,
 *  or the coaches of the intake board where that route is not there. */
export async function regionCoaches(ctx: Ctx, region: string): Promise<Coach[]> {
  const r = encodeURIComponent(region);
  try {
    const list = await ctx.api.get<Coach[]>(`/v1/regions/${r}/coaches`);
    if (Array.isArray(list)) return list;
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err;
  }
  const board = await ctx.api.get<{ coaches: BoardCoach[] }>(`/v1/regions/${r}/intake?limit=1`);
  return board.coaches.map(fromBoardCoach);
}

export function fromBoardCoach(c: BoardCoach): Coach {
  return { id: c.coach_id, username: c.username, display_name: c.display_name, fte: c.fte, volunteer: c.volunteer,
    limit: c.limit, limit_error: c.limit_error, active_families: c.active_families, free: c.free };
}

export function coachName(coaches: Coach[], id: string | null | undefined): string {
  if (!id) return "—";
  const c = coaches.find((x) => x.id === id);
  return c ? c.display_name || c.username : t("onbekende coach", "unknown coach");
}

// ---- the region's labels (region.yaml: life domains, channels, closure reasons)

export interface Labelled { id: string; label: string; label_en: string }
export type RegionLabels = Record<string, Labelled[]>;
const regionLabelCache = new Map<string, Promise<RegionLabels>>();

/** regionLabels reads the active region.yaml (coordinators and reviewers)
 *  and picks its labelled lists; an unreadable file gives no labels (ids
 *  are shown instead), never an error. */
export function regionLabels(ctx: Ctx, region: string): Promise<RegionLabels> {
  let p = regionLabelCache.get(region);
  if (!p) {
    p = ctx.api.get<{ content: string }>(`/v1/regions/${encodeURIComponent(region)}/rules/region`)
      .then((s) => parseLabelLists(s.content ?? ""))
      .catch(() => ({}));
    regionLabelCache.set(region, p);
  }
  return p;
}

/** parseLabelLists reads the flow-mapping lists of region.yaml:
 *  `key:` then lines `- {id: x, label: "…", label_en: "…"}`. */
export function parseLabelLists(yaml: string): RegionLabels {
  const out: RegionLabels = {};
  let key = "";
  for (const line of yaml.split("\n")) {
    const top = /^([A-Za-z_][\w]*):\s*(#.*)?$/.exec(line);
    if (top) {
      key = top[1];
      continue;
    }
    if (/^\S/.test(line)) {
      key = "";
      continue;
    }
    const item = /^\s*-\s*\{(.*)\}\s*(#.*)?$/.exec(line);
    if (!key || !item) continue;
    const fields: Record<string, string> = {};
    const re = /(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^,}]*))/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(item[1]))) fields[m[1]] = (m[2] ?? m[3] ?? m[4] ?? "").trim();
    if (fields.id) (out[key] ??= []).push({ id: fields.id, label: fields.label ?? "", label_en: fields.label_en ?? "" });
  }
  return out;
}

export function regionLabel(labels: RegionLabels, list: string, id: string | null | undefined): string {
  if (!id) return "—";
  const x = labels[list]?.find((l) => l.id === id);
  return x ? label(x) || id : id.replace(/_/g, " ");
}

// ---- fixed vocabularies of the schema

const ENUMS: Record<string, Record<string, [string, string]>> = {
  trajectory: { active: ["actief", "active"], paused: ["gepauzeerd", "paused"], closed: ["afgesloten", "closed"], intake: ["in intake", "in intake"], none: ["geen traject", "no trajectory"] },
  mode: { home_visit: ["huisbezoek", "home visit"], office: ["op kantoor", "at the office"], outdoor: ["buiten", "outdoors"], phone: ["telefoon", "phone"], video: ["video", "video"] },
  role: { parent: ["ouder", "parent"], child: ["kind", "child"], youngster: ["jongere", "young person"], unborn: ["ongeboren kind", "unborn child"], other: ["ander", "other"] },
  kind: { informal: ["informeel", "informal"], professional: ["professioneel", "professional"], volunteer: ["vrijwilliger", "volunteer"] },
  goal: { open: ["open", "open"], in_progress: ["bezig", "in progress"], achieved: ["bereikt", "achieved"], dropped: ["losgelaten", "dropped"] },
  referral: { open: ["open", "open"], started: ["gestart", "started"], declined: ["afgewezen", "declined"], redirected: ["doorverwezen", "redirected"], consult_only: ["enkel consult", "consult only"] },
  decision: { start: ["gestart", "started"], decline: ["afgewezen", "declined"], redirect: ["doorverwezen", "redirected"], consult: ["enkel consult", "consult only"] },
  severity: { info: ["info", "info"], warning: ["waarschuwing", "warning"], critical: ["kritiek", "critical"] },
  coachRole: { lead: ["hoofdcoach", "lead coach"], co: ["co-coach", "co-coach"], co_coach: ["co-coach", "co-coach"] },
};

export function enumLabel(kind: keyof typeof ENUMS | string, value: string | null | undefined): string {
  if (!value) return "—";
  const x = ENUMS[kind]?.[value];
  return x ? t(x[0], x[1]) : value.replace(/_/g, " ");
}

// ---- dates (src/ui.ts formats; "—" for nothing)

/** fmtDay formats a calendar day "YYYY-MM-DD". */
export function fmtDay(s: string | null | undefined): string {
  return fmtDate(s) || "—";
}

/** fmtTime formats an instant in Brussels time. */
export function fmtTime(s: string | null | undefined): string {
  return fmtDateTime(s) || "—";
}

/** daysAgo says how many days ago an instant was ("3 dagen geleden"). */
export function daysAgo(s: string | null | undefined): string {
  if (!s) return t("nooit", "never");
  const d = Math.floor((Date.now() - new Date(s).getTime()) / 86_400_000);
  if (isNaN(d)) return "—";
  if (d <= 0) return t("vandaag", "today");
  if (d === 1) return t("gisteren", "yesterday");
  return t(`${d} dagen geleden`, `${d} days ago`);
}

/** hlcTime turns a stamp "<unix ms>-<counter>-<node>" into an ISO instant. */
export function hlcTime(hlc: string | null | undefined): string {
  const ms = Number((hlc ?? "").split("-")[0]);
  return ms ? new Date(ms).toISOString() : "";
}

// ---- ISO weeks "YYYY-Www"

export function isoWeekOf(d: Date): string {
  const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = x.getUTCDay() || 7;
  x.setUTCDate(x.getUTCDate() + 4 - day); // the week's Thursday decides its year
  const y = x.getUTCFullYear();
  const week = Math.ceil(((x.getTime() - Date.UTC(y, 0, 1)) / 86_400_000 + 1) / 7);
  return `${y}-W${String(week).padStart(2, "0")}`;
}

/** weekMonday is the Monday (UTC midnight) of an ISO week, or null. */
export function weekMonday(w: string): Date | null {
  const m = /^(\d{4})-W(\d{2})$/.exec(w);
  if (!m) return null;
  const y = Number(m[1]), n = Number(m[2]);
  const jan4 = new Date(Date.UTC(y, 0, 4));
  const mon = new Date(jan4.getTime() - ((jan4.getUTCDay() || 7) - 1) * 86_400_000);
  return new Date(mon.getTime() + (n - 1) * 7 * 86_400_000);
}

export function shiftWeek(w: string, by: number): string {
  const mon = weekMonday(w);
  return mon ? isoWeekOf(new Date(mon.getTime() + by * 7 * 86_400_000)) : w;
}

// ---- small widgets

/** pager is src/ui.ts's pager of a server-paged list. */
export function pager(total: number, limit: number, offset: number, go: (offset: number) => void): HTMLElement {
  return uiPager({ total, limit, offset, onPage: go });
}

/** meter is a bar with its numbers in words beside it. */
export function meter(value: number, max: number, text: string, tone = ""): HTMLElement {
  const pct = max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
  return h("div", { class: "meter " + tone },
    h("div", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(max), "aria-valuenow": String(value), "aria-label": text },
      h("span", { style: `width:${pct.toFixed(1)}%` })),
    h("span", { class: "meter-text" }, text));
}

/** confirmDialog asks a yes/no question (src/ui.ts; Escape is no, focus returns). */
export function confirmDialog(title: string, text: string, yes: string): Promise<boolean> {
  return uiConfirm({ title, message: text, confirm: yes });
}

/** errorText is an error as one line. */
export function errorText(err: unknown): string {
  return err instanceof ApiError ? `${err.message} (${err.code})` : String(err);
}

export function badge(text: string, tone = ""): HTMLElement {
  return h("span", { class: "badge " + tone }, text);
}

/** failed is an error box with a retry button (the page stays, only its
 *  failed part is fetched again). */
export function failed(err: unknown, retry: () => void): HTMLElement {
  return h("div", { class: "failed" }, errorBox(err),
    h("p", null, h("button", { type: "button", class: "retry", onclick: retry }, t("Opnieuw proberen", "Try again"))));
}
