// The weekly intake board (issue 5, item 2): the week's referrals, eligible
// first by priority, each with its explained rules; capacity per coach; the
// year's counters; and for the coordinator a decision per referral.
import type { Ctx, Route } from "../app";
import { errorBox, loading } from "../ui";
import { ApiError } from "../api";
import { h, replace } from "../dom";
import { label, t } from "../i18n";
import { live, debounce } from "./case/live";
import {
  Coach, badge, coachName, enumLabel, errorText, fmtDay, fmtTime, fromBoardCoach, isoWeekOf, meter, pager,
  regionLabel, regionLabels, RegionLabels, shiftWeek, weekMonday,
} from "./case/util";

interface Rule { id: string; label: string; label_en?: string; result: boolean | number }
interface Explained {
  eligible: boolean;
  reasons: string[] | null;
  priority: number;
  require: Rule[] | null;
  exclude: Rule[] | null;
  parts: Rule[] | null;
}
interface CapacityExplained {
  ok: boolean;
  failed: string[] | null;
  limit: number;
  checks: Rule[] | null;
}
interface Referral {
  id: string;
  family_id: string;
  received_on: string | null;
  channel: string;
  referrer_name: string;
  referrer_org: string;
  question: string;
  articulated: boolean;
  mandated: boolean;
  municipality: string;
  eligibility: Explained | null;
  waiting_days: number;
  family: { id: string; label: string; municipality: string; language: string; members: number } | null;
  suggestion: { coach_id: string; display_name: string; basis: string; reason: string } | null;
}
interface Decision {
  id: string;
  referral_id: string;
  family_id: string;
  kind: "start" | "decline" | "redirect" | "consult";
  coach_id: string;
  co_coach_ids: string[] | null;
  trajectory_id: string;
  mandated: boolean;
  reason: string;
  redirect_to: string;
  override_reason: string;
  capacity: CapacityExplained | null;
  decided_at: string;
  decided_by: string;
  family_label?: string;
  decided_by_name?: string;
}
interface Board {
  region: string;
  week: string;
  from: string;
  to: string;
  today: string;
  rules_version: string;
  referrals: Referral[];
  total: number;
  limit: number;
  offset: number;
  eligible: number;
  coaches: Parameters<typeof fromBoardCoach>[0][];
  year: { year: number; started: number; mandated: number; non_mandated: number; target: number | null; mandated_reserve: number | null;
    remaining: number | null; reserve_open: number | null; non_mandated_room: number | null };
  decisions: Decision[] | null;
}

const PAGE = 25;
/** familyLabels remembers the labels of families seen on a board, so the
 *  week's decisions (whose referrals left the board) still name them. */
const LABELS_KEY = "samenplan.intake.familyLabels";
const familyLabels = new Map<string, string>(readLabels());

function readLabels(): [string, string][] {
  try {
    return Object.entries(JSON.parse(sessionStorage.getItem(LABELS_KEY) ?? "{}") as Record<string, string>);
  } catch {
    return [];
  }
}

function rememberLabels(): void {
  try {
    sessionStorage.setItem(LABELS_KEY, JSON.stringify(Object.fromEntries([...familyLabels].slice(-500))));
  } catch {
    // a full or disabled storage only costs the labels of decided referrals
  }
}
let focusAfter: string | null = null;

export const routes: Route[] = [
  {
    path: "/intake",
    roles: ["coordinator", "reviewer", "coach"],
    nav: ["Intake", "Intake"],
    render: renderBoard,
  },
];

async function renderBoard(root: HTMLElement, ctx: Ctx): Promise<void> {
  const region = ctx.region;
  const wanted = /^\d{4}-W\d{2}$/.test(ctx.params.week ?? "") ? ctx.params.week : "";
  const offset = Math.max(0, Number(ctx.params.offset) || 0);
  const limit = Math.min(100, Math.max(1, Number(ctx.params.limit) || PAGE));
  const canDecide = ctx.user.role === "coordinator";
  const canOpenCases = ctx.user.role === "coordinator" || ctx.user.role === "reviewer"; // the web client's case pages
  const labels = ctx.user.role === "coach" ? Promise.resolve({} as RegionLabels) : regionLabels(ctx, region);

  const flash = h("div", { class: "flash", role: "status", tabindex: "-1" });
  const stale = h("div", { class: "stale", role: "status" });
  const body = h("div", { class: "board-body" }, loading(t("Intakebord laden…", "Loading the intake board…")));
  let board: Board;

  const go = (week: string, off = 0, focus = "intake-h") => {
    focusAfter = focus;
    ctx.navigate(`/intake?week=${encodeURIComponent(week)}${off ? "&offset=" + off : ""}${limit !== PAGE ? "&limit=" + limit : ""}`);
  };

  const load = async (): Promise<void> => {
    const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (wanted) q.set("week", wanted);
    body.setAttribute("aria-busy", "true");
    try {
      board = await ctx.api.get<Board>(`/v1/regions/${encodeURIComponent(region)}/intake?${q}`);
    } finally {
      body.removeAttribute("aria-busy");
    }
    for (const r of board.referrals) if (r.family) familyLabels.set(r.family.id, r.family.label);
    rememberLabels();
    draw(await labels);
  };

  const draw = (lab: RegionLabels) => {
    const coaches = board.coaches.map(fromBoardCoach);
    const mon = weekMonday(board.week);
    const thisWeek = isoWeekOf(new Date(board.today + "T00:00:00Z"));
    replace(body,
      h("section", { class: "board-head" },
        h("nav", { class: "weekpick", "aria-label": t("Week kiezen", "Choose the week") },
          h("button", { type: "button", id: "week-prev", onclick: () => go(shiftWeek(board.week, -1), 0, "week-prev") }, "← ", t("Vorige week", "Previous week")),
          h("label", { class: "weekfield" }, h("span", { class: "sr-only" }, t("Week", "Week")),
            h("input", { type: "week", id: "week-input", value: board.week, onchange: (e: Event) => {
              const v = (e.target as HTMLInputElement).value;
              if (/^\d{4}-W\d{2}$/.test(v)) go(v, 0, "week-input");
            } })),
          h("button", { type: "button", id: "week-next", onclick: () => go(shiftWeek(board.week, 1), 0, "week-next") }, t("Volgende week", "Next week"), " →"),
          board.week !== thisWeek ? h("button", { type: "button", class: "link", id: "week-now", onclick: () => go(thisWeek, 0, "week-input") }, t("Naar deze week", "To this week")) : null),
        h("p", { class: "muted" }, t("Van", "From"), " ", fmtDay(board.from), " ", t("tot", "to"), " ", fmtDay(board.to),
          mon && board.week === thisWeek ? [" · ", t("deze week", "this week")] : null,
          " · ", t(`${board.total} ${board.total === 1 ? "aanmelding" : "aanmeldingen"}, ${board.eligible} in aanmerking`, `${board.total} ${board.total === 1 ? "referral" : "referrals"}, ${board.eligible} eligible`))),
      h("div", { class: "board-grid" },
        h("div", { class: "board-main" },
          h("section", { "aria-labelledby": "ref-h" },
            h("h2", { id: "ref-h", tabindex: "-1" }, t("Aanmeldingen", "Referrals")),
            board.referrals.length === 0
              ? h("p", { class: "empty" }, t("Geen openstaande aanmeldingen in deze week.", "No open referrals this week."))
              : h("ol", { class: "referrals", start: String(board.offset + 1) }, board.referrals.map((r) => referralCard(r, coaches, lab, canDecide))),
            board.total > board.limit || board.offset > 0 ? pager(board.total, board.limit, board.offset, (o) => go(board.week, o, "ref-h")) : null),
          decisionsSection(board, coaches, ctx)),
        h("aside", { class: "board-side" },
          yearSection(board),
          capacitySection(board, coaches))));
    if (focusAfter) {
      const el = document.getElementById(focusAfter) ?? document.getElementById("intake-h");
      focusAfter = null;
      el?.focus();
    }
  };

  /** decide sends one decision; a refusal the coordinator can answer
   *  (capacity, ineligible start) comes back to the form. */
  const decide = async (r: Referral, body: Record<string, unknown>): Promise<void> => {
    const d = await ctx.api.post<Decision>(`/v1/regions/${encodeURIComponent(region)}/intake/decisions`, { ...body, referral_id: r.id, week: board.week });
    const who = d.kind === "start" ? " — " + coachName(board.coaches.map(fromBoardCoach), d.coach_id) : "";
    flash.className = "flash ok";
    replace(flash, t("Beslissing vastgelegd", "Decision recorded"), ": ", r.family?.label ?? "", " · ", enumLabel("decision", d.kind), who,
      d.trajectory_id ? [" · ", h("a", { href: `#/cases/${encodeURIComponent(d.family_id)}` }, t("naar het dossier", "open the case"))] : null);
    await load();
    flash.focus();
  };

  const referralCard = (r: Referral, coaches: Coach[], lab: RegionLabels, canDecide: boolean): HTMLElement => {
    const e = r.eligibility;
    const name = r.family?.label ?? t("Geen gezin gekoppeld", "No family linked");
    const hid = "ref-" + r.id;
    return h("li", { class: "referral " + (e?.eligible ? "eligible" : "ineligible"), id: "card-" + r.id, dataset: { referral: r.id } },
      h("article", { "aria-labelledby": hid },
        h("header", null,
          h("h3", { id: hid }, r.family && canOpenCases ? h("a", { href: `#/cases/${encodeURIComponent(r.family.id)}` }, name) : name),
          h("div", { class: "tags" },
            e ? (e.eligible ? badge(t("in aanmerking", "eligible"), "ok") : badge(t("niet in aanmerking", "not eligible"), "bad")) : badge(t("geen regels", "no rules"), "warn"),
            e ? badge(t(`prioriteit ${e.priority}`, `priority ${e.priority}`), "prio") : null,
            r.mandated ? badge(t("gemandateerd", "mandated"), "info") : null,
            !r.articulated ? badge(t("niet-gearticuleerd", "non-articulated"), "info") : null)),
        h("dl", { class: "kv" },
          h("div", null, h("dt", null, t("Gemeente", "Municipality")), h("dd", null, r.family?.municipality || r.municipality || "—")),
          h("div", null, h("dt", null, t("Gezinsleden", "Members")), h("dd", null, r.family ? String(r.family.members) : "—")),
          h("div", null, h("dt", null, t("Taal", "Language")), h("dd", null, r.family?.language || "—")),
          h("div", null, h("dt", null, t("Aangemeld", "Received")), h("dd", null, fmtDay(r.received_on))),
          h("div", null, h("dt", null, t("Wacht", "Waiting")), h("dd", { class: r.waiting_days > 7 ? "late" : "" }, r.waiting_days === 1 ? t("1 dag", "1 day") : t(`${r.waiting_days} dagen`, `${r.waiting_days} days`))),
          h("div", null, h("dt", null, t("Kanaal", "Channel")), h("dd", null, regionLabel(lab, "referral_channels", r.channel))),
          h("div", { class: "wide" }, h("dt", null, t("Verwijzer", "Referrer")), h("dd", null, [r.referrer_name, r.referrer_org].filter(Boolean).join(", ") || "—"))),
        r.question ? h("blockquote", { class: "question" }, r.question) : null,
        e && !e.eligible ? h("p", { class: "reasons" }, h("strong", null, t("Niet in aanmerking: ", "Not eligible: ")),
          (e.reasons ?? []).map((id) => ruleLabel(e, id)).join("; ")) : null,
        e ? whyDetails(e) : null,
        r.suggestion && r.suggestion.coach_id ? h("p", { class: "suggestion", title: r.suggestion.reason }, t("Voorstel: ", "Suggested: "), h("strong", null, r.suggestion.display_name), " — ", suggestionWhy(r, coaches)) : null,
        canDecide ? decisionForm(r, coaches) : null));
  };

  const decisionForm = (r: Referral, coaches: Coach[]): HTMLElement => {
    const id = (s: string) => `${s}-${r.id}`;
    const ineligible = r.eligibility ? !r.eligibility.eligible : false;
    const msg = h("div", { class: "form-msg", role: "alert" });
    const kindOf = () => (form.querySelector<HTMLInputElement>("input[name=kind]:checked")?.value ?? "start") as Decision["kind"];
    const coach = h("select", { id: id("coach"), name: "coach" },
      h("option", { value: "" }, t("— kies een coach —", "— choose a coach —")),
      coaches.map((c) => h("option", { value: c.id, selected: c.id === r.suggestion?.coach_id ? true : null },
        `${c.display_name || c.username} (${t(`${c.free ?? "?"} vrij`, `${c.free ?? "?"} free`)})`)));
    const coCoaches = h("fieldset", { class: "cocoaches" }, h("legend", null, t("Co-coaches (optioneel)", "Co-coaches (optional)")),
      coaches.map((c) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "co", value: c.id }), " ", c.display_name || c.username)));
    const override = h("textarea", { id: id("override"), name: "override", rows: "2", maxlength: "2000" });
    const overrideWrap = h("div", { class: "field override", hidden: ineligible ? null : true },
      h("label", { for: id("override") }, t("Reden om toch te starten (verplicht)", "Reason to start anyway (required)")), override);
    const reason = h("textarea", { id: id("reason"), name: "reason", rows: "2", maxlength: "2000" });
    const reasonLabel = h("label", { for: id("reason") });
    const redirect = h("input", { id: id("redirect"), name: "redirect_to", maxlength: "2000" });
    const capBox = h("div", { class: "capacity-refusal", hidden: true, role: "alert" });
    const startBox = h("div", { class: "kind-start" },
      h("div", { class: "field" }, h("label", { for: id("coach") }, t("Coach", "Coach")), coach),
      h("details", null, h("summary", null, t("Co-coaches", "Co-coaches")), coCoaches),
      capBox, overrideWrap);
    const reasonBox = h("div", { class: "field kind-reason" }, reasonLabel, reason);
    const redirectBox = h("div", { class: "field kind-redirect" }, h("label", { for: id("redirect") }, t("Doorverwijzen naar (verplicht)", "Redirect to (required)")), redirect);
    const submit = h("button", { type: "submit", class: "primary", id: id("submit") }, t("Beslissing vastleggen", "Record the decision"));
    const show = () => {
      const k = kindOf();
      startBox.hidden = k !== "start";
      reasonBox.hidden = k !== "decline" && k !== "consult";
      redirectBox.hidden = k !== "redirect";
      reasonLabel.textContent = k === "decline" ? t("Reden van afwijzing (verplicht)", "Reason for declining (required)") : t("Toelichting (optioneel)", "Note (optional)");
      if (k !== "start") capBox.hidden = true;
      msg.textContent = "";
    };
    const kinds: [Decision["kind"], string][] = [
      ["start", t("Starten", "Start")], ["decline", t("Afwijzen", "Decline")],
      ["redirect", t("Doorverwijzen", "Redirect")], ["consult", t("Enkel consult", "Consult only")]];
    const form: HTMLFormElement = h("form", { class: "decide", id: id("form"), "aria-label": t("Beslissing voor ", "Decision for ") + (r.family?.label ?? r.id), novalidate: true,
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const k = kindOf();
        const req: Record<string, unknown> = { kind: k };
        msg.textContent = "";
        if (k === "start") {
          if (!coach.value) return fail(t("Kies een coach.", "Choose a coach."), coach);
          req.coach_id = coach.value;
          const co = [...coCoaches.querySelectorAll<HTMLInputElement>("input:checked")].map((x) => x.value).filter((x) => x !== coach.value);
          if (co.length) req.co_coach_ids = co;
          if (!overrideWrap.hidden) {
            if (!override.value.trim()) return fail(t("Geef een reden om toch te starten.", "Give a reason to start anyway."), override);
            req.override_reason = override.value.trim();
          }
        } else if (k === "decline") {
          if (!reason.value.trim()) return fail(t("Een afwijzing heeft een reden nodig.", "A decline needs a reason."), reason);
          req.reason = reason.value.trim();
        } else if (k === "redirect") {
          if (!redirect.value.trim()) return fail(t("Zeg naar wie je doorverwijst.", "Say whom you redirect to."), redirect);
          req.redirect_to = redirect.value.trim();
        } else if (reason.value.trim()) req.reason = reason.value.trim();
        submit.disabled = true;
        form.setAttribute("aria-busy", "true");
        try {
          await decide(r, req);
        } catch (err) {
          form.removeAttribute("aria-busy");
          submit.disabled = false;
          if (err instanceof ApiError && err.code === "capacity_refused") {
            const cap = (err.body as { capacity?: CapacityExplained } | null)?.capacity;
            capBox.hidden = false;
            replace(capBox,
              h("p", null, h("strong", null, t("De capaciteitsregels weigeren deze start.", "The capacity rules refuse this start.")),
                cap ? " " + t(`Limiet van de coach: ${cap.limit}.`, `The coach's limit: ${cap.limit}.`) : null),
              cap?.checks ? h("ul", { class: "rules" }, cap.checks.map((c) => ruleItem(c, c.result === true))) : null,
              h("p", null, t("Je kan een andere coach kiezen, of toch starten met een reden.", "Choose another coach, or start anyway with a reason.")));
            overrideWrap.hidden = false;
            submit.textContent = t("Toch starten met deze reden", "Start anyway with this reason");
            override.focus();
          } else if (err instanceof ApiError && err.status === 409 && k === "start" && overrideWrap.hidden) {
            overrideWrap.hidden = false;
            msg.textContent = errorText(err);
            override.focus();
          } else {
            msg.textContent = errorText(err);
            if (err instanceof ApiError && err.status === 409) void load(); // decided elsewhere meanwhile
          }
        }
      } },
      h("fieldset", { class: "kinds" }, h("legend", null, t("Beslissing", "Decision")),
        kinds.map(([k, text]) => h("label", { class: "radio" },
          h("input", { type: "radio", name: "kind", value: k, checked: k === (ineligible ? "decline" : "start") ? true : null, onchange: show }), " ", text))),
      startBox, reasonBox, redirectBox, msg,
      h("div", { class: "actions" }, submit));
    const fail = (text: string, el: HTMLElement) => {
      msg.textContent = text;
      el.focus();
    };
    coach.addEventListener("change", () => {
      if (!capBox.hidden) { // another coach: ask the rules again first
        capBox.hidden = true;
        if (!ineligible) overrideWrap.hidden = true;
        submit.textContent = t("Beslissing vastleggen", "Record the decision");
      }
    });
    show();
    return form;
  };

  replace(root,
    h("h1", { id: "intake-h", tabindex: "-1" }, t("Intake", "Intake"), " — ", t("week", "week"), " ", wanted || "…"),
    flash, stale, body);
  await load(); // a failure is the shell's error box with its retry
  root.querySelector("#intake-h")!.textContent = `${t("Intake", "Intake")} — ${t("week", "week")} ${board!.week.replace("-W", " W")}`;

  // Live: a referral decided or added elsewhere. The board is not redrawn
  // under the coordinator's hands: when the week's board really differs
  // from the one shown (not merely the echo of her own decision), a notice
  // offers to refresh it.
  const shape = (b: Board) => JSON.stringify([b.total, b.referrals.map((r) => [r.id, r.eligibility?.priority, r.eligibility?.eligible]), (b.decisions ?? []).map((d) => d.id),
    b.coaches.map((c) => [c.coach_id, c.active_families])]);
  const check = debounce(async () => {
    try {
      const q = new URLSearchParams({ limit: String(limit), offset: String(offset), week: board.week });
      const fresh = await ctx.api.get<Board>(`/v1/regions/${encodeURIComponent(region)}/intake?${q}`);
      if (shape(fresh) === shape(board)) return;
    } catch {
      // unsure: offer the refresh
    }
    replace(stale, t("Het bord is gewijzigd sinds deze weergave. ", "The board changed since this view. "),
      h("button", { type: "button", id: "board-refresh", onclick: async () => {
        replace(stale);
        try {
          await load();
        } catch (err) {
          replace(stale, errorBox(err));
        }
        root.querySelector<HTMLElement>("#intake-h")?.focus();
      } }, t("Vernieuwen", "Refresh")));
  }, 1000);
  // referrals come and go with referral events, or case events once linked
  // to a family; a resync may hide anything. Consults do not touch the board.
  live(ctx, (ev) => {
    if (ev.type !== "consult") check();
  });
}

/** suggestionWhy says why a coach is suggested, in the reader's language
 *  (the server's reason is Dutch / English in one string). */
function suggestionWhy(r: Referral, coaches: Coach[]): string {
  const sg = r.suggestion!;
  // the places left once the suggestions above this one took theirs (the server's count), else the coach's
  const m = /(\d+) (vrije plaats|free place)/.exec(sg.reason);
  const free = m ? Number(m[1]) : coaches.find((c) => c.id === sg.coach_id)?.free;
  const places = free == null ? "" : free === 1 ? t("; 1 vrije plaats", "; 1 free place") : t(`; ${free} vrije plaatsen`, `; ${free} free places`);
  switch (sg.basis) {
    case "municipality": return t(`coacht al een gezin in ${r.family?.municipality || r.municipality}`, `already coaches a family in ${r.family?.municipality || r.municipality}`) + places;
    case "language": return t(`coacht al een gezin met taal ${r.family?.language ?? ""}`, `already coaches a family speaking ${r.family?.language ?? ""}`) + places;
    case "free_places": return t("de meeste vrije plaatsen", "the most free places") + places;
    default: return sg.reason;
  }
}

function ruleLabel(e: Explained, id: string): string {
  const r = [...(e.require ?? []), ...(e.exclude ?? []), ...(e.parts ?? [])].find((x) => x.id === id);
  return r ? label(r) || id : id;
}

function ruleItem(r: Rule, good: boolean, text?: string): HTMLElement {
  return h("li", { class: good ? "pass" : "fail" },
    h("span", { class: "mark", "aria-hidden": "true" }, good ? "✓" : "✗"),
    h("span", { class: "sr-only" }, good ? t("voldaan: ", "holds: ") : t("niet voldaan: ", "fails: ")),
    h("span", null, label(r) || r.id, text ? h("span", { class: "muted" }, " — ", text) : null));
}

/** whyDetails explains a decision: every require, exclude and part. */
function whyDetails(e: Explained): HTMLElement {
  return h("details", { class: "why" },
    h("summary", null, t("Waarom? De regels uitgelegd", "Why? The rules explained")),
    h("div", { class: "why-grid" },
      h("div", null, h("h4", null, t("Voorwaarden", "Requirements")),
        h("ul", { class: "rules" }, (e.require ?? []).map((r) => ruleItem(r, r.result === true, r.result === true ? t("ja", "yes") : t("nee", "no"))))),
      h("div", null, h("h4", null, t("Uitsluitingen", "Exclusions")),
        h("ul", { class: "rules" }, (e.exclude ?? []).map((r) => ruleItem(r, r.result !== true, r.result === true ? t("van toepassing", "applies") : t("niet van toepassing", "does not apply"))))),
      h("div", null, h("h4", null, t("Prioriteit", "Priority"), " ", e.priority),
        h("ul", { class: "rules parts" }, (e.parts ?? []).map((p) => h("li", null, h("span", { class: "score" }, `+${p.result}`), " ", label(p) || p.id))))));
}

function yearSection(b: Board): HTMLElement {
  const y = b.year;
  return h("section", { class: "panel year", "aria-labelledby": "year-h" },
    h("h2", { id: "year-h" }, t(`Jaar ${y.year}`, `Year ${y.year}`)),
    y.target != null
      ? meter(y.started, y.target, t(`${y.started} van ${y.target} trajecten gestart`, `${y.started} of ${y.target} trajectories started`))
      : h("p", null, t(`${y.started} trajecten gestart (geen jaardoel in de regels)`, `${y.started} trajectories started (no yearly target in the rules)`)),
    y.mandated_reserve != null
      ? meter(y.mandated, y.mandated_reserve, t(`${y.mandated} van ${y.mandated_reserve} gemandateerd (reserve)`, `${y.mandated} of ${y.mandated_reserve} mandated (reserve)`), "mandated")
      : null,
    h("dl", { class: "kv compact" },
      h("div", null, h("dt", null, t("Niet-gemandateerd", "Non-mandated")), h("dd", null, String(y.non_mandated))),
      y.remaining != null ? h("div", null, h("dt", null, t("Nog te starten", "Left to start")), h("dd", null, String(y.remaining))) : null,
      y.reserve_open != null ? h("div", null, h("dt", null, t("Reserve nog open", "Reserve still open")), h("dd", null, String(y.reserve_open))) : null,
      y.non_mandated_room != null ? h("div", null, h("dt", null, t("Ruimte niet-gemandateerd", "Room non-mandated")), h("dd", { class: y.non_mandated_room <= 0 ? "late" : "" }, String(y.non_mandated_room))) : null));
}

function capacitySection(b: Board, coaches: Coach[]): HTMLElement {
  return h("section", { class: "panel capacity", "aria-labelledby": "cap-h" },
    h("h2", { id: "cap-h" }, t("Capaciteit per coach", "Capacity per coach")),
    coaches.length === 0 ? h("p", { class: "empty" }, t("Geen coaches in deze regio.", "No coaches in this region.")) :
      h("table", null,
        h("thead", null, h("tr", null, h("th", { scope: "col" }, t("Coach", "Coach")), h("th", { scope: "col", class: "num" }, t("Limiet", "Limit")),
          h("th", { scope: "col", class: "num" }, t("Actief", "Active")), h("th", { scope: "col", class: "num" }, t("Vrij", "Free")))),
        h("tbody", null, coaches.map((c) => h("tr", { class: c.free === 0 ? "full" : "" },
          h("th", { scope: "row" }, c.display_name || c.username, c.volunteer ? h("span", { class: "muted" }, " · ", t("vrijwilliger", "volunteer")) : null,
            h("div", { class: "minibar", "aria-hidden": "true" }, h("span", { style: `width:${c.limit ? Math.min(100, ((c.active_families ?? 0) / c.limit) * 100).toFixed(0) : 0}%` }))),
          h("td", { class: "num" }, c.limit_error ? h("span", { class: "bad", title: c.limit_error }, "!") : String(c.limit ?? "—"),
            c.fte != null ? h("div", { class: "muted small" }, `${c.fte} fte`) : null),
          h("td", { class: "num" }, String(c.active_families ?? "—")),
          h("td", { class: "num free" }, String(c.free ?? "—")))))),
    h("p", { class: "muted small" }, t("Regels ", "Rules "), h("code", null, b.rules_version ? b.rules_version.slice(0, 8) : "—")));
}

function decisionsSection(b: Board, coaches: Coach[], ctx: Ctx): HTMLElement {
  const ds = b.decisions ?? [];
  return h("section", { class: "decisions", "aria-labelledby": "dec-h" },
    h("h2", { id: "dec-h" }, t("Beslissingen van deze week", "This week's decisions"), " ", h("span", { class: "n" }, `(${ds.length})`)),
    ds.length === 0 ? h("p", { class: "empty" }, t("Nog geen beslissingen deze week.", "No decisions yet this week.")) :
      h("div", { class: "table-wrap" }, h("table", { id: "decisions" },
        h("thead", null, h("tr", null, ...[t("Wanneer", "When"), t("Gezin", "Family"), t("Beslissing", "Decision"), t("Details", "Details"), t("Door", "By")]
          .map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", null, ds.map((d) => h("tr", { dataset: { referral: d.referral_id } },
          h("td", null, fmtTime(d.decided_at)),
          h("td", null, d.family_id && ctx.user.role !== "coach" ? h("a", { href: `#/cases/${encodeURIComponent(d.family_id)}` }, d.family_label || familyLabels.get(d.family_id) || t("dossier openen", "open the case")) : d.family_label || familyLabels.get(d.family_id) || "—"),
          h("td", null, badge(enumLabel("decision", d.kind), d.kind), d.mandated ? h("span", { class: "muted" }, " · ", t("gemandateerd", "mandated")) : null),
          h("td", null,
            d.kind === "start" ? [coachName(coaches, d.coach_id), (d.co_coach_ids ?? []).length ? " + " + (d.co_coach_ids ?? []).map((id) => coachName(coaches, id)).join(", ") : ""] : null,
            d.kind === "redirect" ? [t("naar ", "to "), d.redirect_to] : null,
            d.reason ? h("div", null, d.reason) : null,
            d.override_reason ? h("div", { class: "override-note" }, h("strong", null, t("Toch gestart: ", "Overridden: ")), d.override_reason) : null,
            d.capacity && !d.capacity.ok ? h("div", { class: "muted small" }, t("Capaciteit geweigerd: ", "Capacity refused: "),
              (d.capacity.checks ?? []).filter((c) => c.result !== true).map((c) => label(c) || c.id).join("; ")) : null),
          h("td", null, d.decided_by === ctx.user.id ? t("jij", "you") : d.decided_by_name || t("coördinator", "coordinator"))))))));
}
