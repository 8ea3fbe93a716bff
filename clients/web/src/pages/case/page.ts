// The case page (issue 5, items 3 and 4): family and members, the family
// plan by life domain, the network, the timeline of contacts, field history
// on demand, conflicts side by side, quarantined writes (accept / discard),
// signals, the trajectory with its coaches and eviction proofs, and the
// coordinator's reassignment. Live: the server's events re-fetch the case.
import type { Ctx } from "../../app";
import { errorBox, loading } from "../../ui";
import { ApiError } from "../../api";
import { h, replace } from "../../dom";
import { label, t } from "../../i18n";
import { debounce, live } from "./live";
import {
  Coach, RegionLabels, badge, coachName, failed, confirmDialog, daysAgo, enumLabel, errorText, fmtDay, fmtTime, hlcTime,
  regionCoaches, regionLabel, regionLabels, workRegion,
} from "./util";

interface Person { id: string; role: string; given_name: string; family_name: string; birth_date: string | null; age_years: number | null; due_date: string | null; willing: boolean }
interface Trajectory {
  id: string; family_id: string; referral_id: string; region: string; lead_coach_id: string; co_coach_ids: string[] | null;
  mandated: boolean; status: string; started_on: string | null; closed_on: string | null; closure_reason: string; rtj_requested: boolean;
}
interface Goal { id: string; trajectory_id: string; life_domain: string; strength: string; concern: string; goal: string; actions: string; owner: string; due_on: string | null; status: string; scale: number | null }
interface NetworkMember { id: string; name: string; relation: string; kind: string; organisation: string; phone: string; role_in_plan: string; consent_to_contact: boolean }
interface Contact { id: string; trajectory_id: string; coach_id: string; occurred_at: string | null; mode: string; minutes: number | null; participants: string[] | null; note: string; follow_up: string }
interface Signal { id: string; label: string; label_en?: string; severity: string; about: string; subject_id: string }
interface Referral { id: string; received_on: string | null; channel: string; referrer_name: string; referrer_org: string; question: string; status: string; outcome_reason: string; mandated: boolean; eligibility: { eligible: boolean } | null }
interface Side { seq: number; value: unknown; hlc: string; user_id: string; device_id: string; received_at: string; username: string; display_name: string }
interface ConflictRecord { id: number | string; collection: string; row_id: string; field: string; detected_at: string; winner: Side; loser: Side }
interface QuarantineItem {
  id: string; collection: string; row_id: string; field: string; value: unknown; hlc: string; written_at: string; received_at: string;
  user_id: string; username: string; display_name: string; device_id: string; device_name: string; reason: string; reason_text: string; status: string;
}
interface Eviction { device_id: string; device_name: string; user_id: string; username: string; scope: string; evicted_at: string; proven: boolean; proof: string; proven_at: string | null }
interface CaseFile {
  family: { id: string; region: string; municipality: string; label: string; language: string };
  members: Person[] | null;
  referrals: Referral[] | null;
  trajectory: Trajectory | null;
  past_trajectories: Trajectory[] | null;
  goals: { life_domain: string; goals: Goal[] }[] | null;
  network: NetworkMember[] | null;
  contacts: Contact[] | null;
  last_contact_at: string | null;
  status: string;
  signals: Signal[] | null;
  conflicts: number;
  quarantined: number;
  quarantined_writes: QuarantineItem[] | null;
  conflict_records: ConflictRecord[] | null;
  evictions: Eviction[] | null;
}
interface TrajectoryDetail {
  trajectory: Trajectory;
  coaches: { user_id: string; username: string; display_name: string; role: string }[] | null;
  evictions: Eviction[] | null;
}
interface HistoryAnswer {
  fields: { collection: string; id: string; field: string; entries: { seq: number; value: unknown; hlc: string; user_id: string; device_id: string; received_at: string; outcome: string; old_value?: unknown }[] }[];
  users: Record<string, { username: string; display_name: string }>;
}

const PROOF_POLL_MS = 2500;

export async function renderCase(root: HTMLElement, ctx: Ctx): Promise<void> {
  const id = ctx.params.id;
  const famURL = `/v1/families/${encodeURIComponent(id)}`;
  let cf: CaseFile;
  let traj: TrajectoryDetail | null = null;
  let coaches: Coach[] = [];
  let labels: RegionLabels = {};
  let region = ctx.region;
  const isCoordinator = ctx.user.role === "coordinator";

  const flash = h("div", { class: "flash", role: "status", tabindex: "-1" });
  const liveNote = h("p", { class: "live-note muted small", "aria-live": "polite" });
  const content = h("div", { class: "case-body" });
  const openHistory = new Map<string, HTMLElement>(); // "collection/row" → its open panel
  const seenContacts = new Set<string>();
  let firstDraw = true;
  let reassign: { key: string; el: HTMLElement } | null = null;
  let poll: ReturnType<typeof setTimeout> | null = null;
  let reassignedAt = 0;
  let left = false;
  ctx.onLeave(() => {
    left = true;
    if (poll) clearTimeout(poll);
  });

  const say = (text: string, tone: "ok" | "bad" = "ok", focus = true) => {
    flash.className = "flash " + tone;
    flash.textContent = text;
    if (focus) flash.focus();
  };

  const fetchTrajectory = async (): Promise<void> => {
    traj = cf.trajectory ? await ctx.api.get<TrajectoryDetail>(`/v1/trajectories/${encodeURIComponent(cf.trajectory.id)}`) : null;
  };

  const load = async (): Promise<void> => {
    cf = await ctx.api.get<CaseFile>(famURL);
    region = workRegion(ctx, cf.family.region);
    const [, c, l] = await Promise.all([
      fetchTrajectory(),
      coaches.length ? Promise.resolve(coaches) : regionCoaches(ctx, region).catch(() => [] as Coach[]),
      firstDraw ? regionLabels(ctx, region) : Promise.resolve(labels),
    ]);
    coaches = c;
    labels = l;
    draw();
    watchProofs();
  };

  /** watchProofs polls the trajectory while eviction proofs may still
   *  come: an eviction is listed once the old coach's device pulls, its
   *  proof arrives with the pull after that, and neither sends an event.
   *  Every few seconds for two minutes after a reassignment, then every
   *  half minute while a listed eviction waits for its proof. */
  const watchProofs = () => {
    if (poll) return;
    const waiting = () => (traj?.evictions ?? []).some((e) => !e.proven);
    const recent = () => Date.now() - reassignedAt < 120_000;
    if (!waiting() && !recent()) return;
    poll = setTimeout(async () => {
      poll = null;
      try {
        await fetchTrajectory();
        const box = document.getElementById("evictions");
        if (box) box.replaceWith(evictionsBlock());
      } catch {
        // keep trying; the next event or poll fixes it
      }
      if (!left) watchProofs();
    }, recent() ? PROOF_POLL_MS : 30_000);
  };

  const draw = () => {
    const active = document.activeElement as HTMLElement | null;
    const focusId = active && content.contains(active) ? active.id : "";
    const contacts = [...(cf.contacts ?? [])].sort((a, b) => (b.occurred_at ?? "").localeCompare(a.occurred_at ?? ""));
    const fresh = new Set(firstDraw ? [] : contacts.filter((c) => !seenContacts.has(c.id)).map((c) => c.id));
    for (const c of contacts) seenContacts.add(c.id);
    replace(content,
      caseHeader(),
      (cf.quarantined_writes ?? []).length ? quarantineSection() : null,
      (cf.conflict_records ?? []).length ? conflictsSection() : null,
      h("div", { class: "case-grid" },
        h("div", { class: "case-main" },
          timelineSection(contacts, fresh),
          planSection()),
        h("div", { class: "case-side" },
          trajectorySection(),
          signalsSection(),
          membersSection(),
          networkSection(),
          referralsSection())));
    firstDraw = false;
    if (focusId) document.getElementById(focusId)?.focus();
  };

  // ---- field history on demand

  /** fillHistory (re)loads one open history panel. */
  const fillHistory = async (panel: HTMLElement, collection: string, row: string): Promise<void> => {
    panel.setAttribute("aria-busy", "true");
    try {
      const q = new URLSearchParams({ collection, row });
      const hist = await ctx.api.get<HistoryAnswer>(`${famURL}/history?${q}`);
      replace(panel, historyTable(hist));
    } catch (err) {
      replace(panel, errorBox(err));
    } finally {
      panel.removeAttribute("aria-busy");
    }
  };

  const historyButton = (collection: string, row: string, what: string): HTMLElement[] => {
    const key = `${collection}/${row}`;
    const panelId = `hist-${collection}-${row}`;
    const open = openHistory.get(key);
    const btn = h("button", { type: "button", class: "link small hist-btn", id: `histbtn-${collection}-${row}`, "aria-expanded": open ? "true" : "false", "aria-controls": panelId,
      onclick: async () => {
        const cur = openHistory.get(key);
        if (cur) {
          openHistory.delete(key);
          cur.remove();
          btn.setAttribute("aria-expanded", "false");
          btn.textContent = t("Geschiedenis", "History");
          return;
        }
        const panel = h("div", { class: "history", id: panelId, role: "region", "aria-label": t("Geschiedenis van ", "History of ") + what, "aria-busy": "true" },
          h("p", { class: "loading-inline muted" }, t("Geschiedenis laden…", "Loading history…")));
        openHistory.set(key, panel);
        btn.after(panel);
        btn.setAttribute("aria-expanded", "true");
        btn.textContent = t("Geschiedenis verbergen", "Hide history");
        await fillHistory(panel, collection, row);
      } }, open ? t("Geschiedenis verbergen", "Hide history") : t("Geschiedenis", "History"));
    return open ? [btn, open] : [btn];
  };

  const historyTable = (hist: HistoryAnswer): HTMLElement => {
    const who = (uid: string) => {
      const u = hist.users?.[uid];
      return u ? u.display_name || u.username : uid === ctx.user.id ? t("jij", "you") : uid;
    };
    const fields = (hist.fields ?? []).filter((f) => !["family_id", "trajectory_id", "region", "referral_id"].includes(f.field) || f.entries.length > 1);
    if (!fields.length) return h("p", { class: "empty" }, t("Geen geschiedenis.", "No history."));
    return h("table", { class: "history-table" },
      h("thead", null, h("tr", null, ...[t("Veld", "Field"), t("Geschreven", "Written"), t("Door, toestel", "By, device"), t("Waarde (oud → nieuw)", "Value (old → new)")]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", null, fields.flatMap((f) => f.entries.map((e, i) => h("tr", { class: e.outcome === "applied" ? "" : "lost" },
        i === 0 ? h("th", { scope: "row", rowspan: String(f.entries.length) }, f.field) : null,
        h("td", { title: t("ontvangen ", "received ") + fmtTime(e.received_at) }, fmtTime(hlcTime(e.hlc) || e.received_at)),
        h("td", null, who(e.user_id), h("div", { class: "muted small", title: e.device_id }, e.device_id === "server" ? t("server", "server") : t("toestel ", "device ") + e.device_id.slice(-12))),
        h("td", { class: "val" }, e.old_value !== undefined && e.old_value !== null ? [h("span", { class: "old" }, value(f.field, e.old_value)), " → "] : null,
          h("span", null, value(f.field, e.value)),
          e.outcome === "applied" ? null : [" ", badge(t("verloren: ouder", "lost: older"), "warn")]))))));
  };

  /** value shows a field's value: coaches by name, instants and enums readable. */
  const value = (field: string, v: unknown): string => {
    if (typeof v === "string" && /(^|_)coach_id$/.test(field)) return coachName(coaches, v);
    if (Array.isArray(v) && field === "co_coach_ids") return v.map((x) => coachName(coaches, String(x))).join(", ") || "—";
    if (typeof v === "string" && /_at$/.test(field)) return fmtTime(v);
    if (typeof v === "string" && /_on$|_date$/.test(field)) return fmtDay(v);
    if (typeof v === "string" && field === "mode") return enumLabel("mode", v);
    if (typeof v === "boolean") return v ? t("ja", "yes") : t("nee", "no");
    return show(v);
  };

  // ---- sections

  const caseHeader = (): HTMLElement => {
    const f = cf.family;
    return h("section", { class: "case-head" },
      h("p", { class: "crumbs" }, h("a", { href: "#/cases" }, "← ", t("Alle dossiers", "All cases"))),
      h("h1", { id: "case-h", tabindex: "-1" }, f.label || t("(zonder naam)", "(no name)")),
      h("p", { class: "tags" },
        badge(enumLabel("trajectory", cf.status), "st-" + cf.status),
        cf.trajectory ? badge(t("hoofdcoach: ", "lead coach: ") + coachName(coaches, cf.trajectory.lead_coach_id), "info") : null,
        f.municipality ? badge(f.municipality) : null,
        f.language ? badge(t("taal: ", "language: ") + f.language) : null,
        cf.trajectory || cf.last_contact_at ? badge(t("laatste contact: ", "last contact: ") + daysAgo(cf.last_contact_at), cf.last_contact_at ? "" : "warn") : null,
        cf.conflicts ? badge(cf.conflicts === 1 ? t("1 conflict", "1 conflict") : t(`${cf.conflicts} conflicten`, `${cf.conflicts} conflicts`), "warn") : null,
        cf.quarantined ? badge(t(`${cf.quarantined} ${cf.quarantined === 1 ? "veld" : "velden"} in quarantaine`, `${cf.quarantined} quarantined ${cf.quarantined === 1 ? "field" : "fields"}`), "bad") : null),
      historyButton("families", f.id, f.label));
  };

  const timelineSection = (contacts: Contact[], fresh: Set<string>): HTMLElement =>
    h("section", { class: "panel timeline", "aria-labelledby": "tl-h" },
      h("h2", { id: "tl-h" }, t("Contacten", "Contacts"), " ", h("span", { class: "n" }, `(${contacts.length})`)),
      h("p", { class: "muted small" }, t("Van alle toestellen samengevoegd, nieuwste eerst.", "Merged from every device, newest first.")),
      contacts.length === 0 ? h("p", { class: "empty" }, t("Nog geen contacten.", "No contacts yet.")) :
        h("ol", { class: "contacts", id: "contacts" }, contacts.map((c) => h("li", { class: fresh.has(c.id) ? "contact new" : "contact", dataset: { contact: c.id } },
          h("p", { class: "meta" },
            h("time", { datetime: c.occurred_at ?? "" }, fmtTime(c.occurred_at)), " · ",
            h("strong", null, enumLabel("mode", c.mode)),
            c.minutes != null ? ` · ${c.minutes} min` : "", " · ", coachName(coaches, c.coach_id),
            (c.participants ?? []).length ? h("span", { class: "muted" }, " · ", (c.participants ?? []).join(", ")) : null,
            fresh.has(c.id) ? [" ", badge(t("nieuw", "new"), "ok")] : null),
          c.note ? h("p", { class: "note" }, c.note) : h("p", { class: "muted" }, t("(geen notitie)", "(no note)")),
          c.follow_up ? h("p", { class: "follow" }, h("span", { class: "muted" }, t("Opvolging: ", "Follow-up: ")), c.follow_up) : null,
          historyButton("contacts", c.id, t("contact ", "contact ") + fmtTime(c.occurred_at))))));

  const planSection = (): HTMLElement => {
    const groups = cf.goals ?? [];
    const order = (labels.life_domains ?? []).map((d) => d.id);
    const sorted = [...groups].sort((a, b) => {
      const ia = order.indexOf(a.life_domain), ib = order.indexOf(b.life_domain);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    });
    return h("section", { class: "panel plan", "aria-labelledby": "plan-h" },
      h("h2", { id: "plan-h" }, t("Gezinsplan", "Family plan")),
      sorted.length === 0 ? h("p", { class: "empty" }, t("Nog geen doelen in het gezinsplan.", "No goals in the family plan yet.")) :
        sorted.map((g) => h("section", { class: "domain" },
          h("h3", null, regionLabel(labels, "life_domains", g.life_domain), " ", h("span", { class: "n" }, `(${g.goals.length})`)),
          h("ul", { class: "goals" }, g.goals.map((x) => h("li", { class: "goal st-" + x.status, dataset: { goal: x.id } },
            h("p", { class: "goal-text" }, "“", x.goal || "—", "”"),
            h("div", { class: "goal-meta" },
              badge(enumLabel("goal", x.status), "goal-" + x.status),
              x.scale != null ? h("span", { class: "scale", title: t("schaal 0–10", "scale 0–10") },
                h("span", { class: "scale-bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "10", "aria-valuenow": String(x.scale), "aria-label": t("schaal", "scale") },
                  h("span", { style: `width:${x.scale * 10}%` })), ` ${x.scale}/10`) : null),
            h("dl", { class: "kv compact" },
              x.actions ? h("div", { class: "wide" }, h("dt", null, t("Acties", "Actions")), h("dd", null, x.actions)) : null,
              h("div", null, h("dt", null, t("Wie", "Owner")), h("dd", null, x.owner || "—")),
              h("div", null, h("dt", null, t("Tegen", "Due")), h("dd", null, fmtDay(x.due_on))),
              x.strength ? h("div", { class: "wide" }, h("dt", null, t("Sterkte", "Strength")), h("dd", null, x.strength)) : null,
              x.concern ? h("div", { class: "wide" }, h("dt", null, t("Zorg", "Concern")), h("dd", null, x.concern)) : null),
            historyButton("plan_goals", x.id, x.goal)))))));
  };

  const trajectorySection = (): HTMLElement => {
    const tr = cf.trajectory;
    const past = cf.past_trajectories ?? [];
    return h("section", { class: "panel trajectory", "aria-labelledby": "tr-h" },
      h("h2", { id: "tr-h" }, t("Traject", "Trajectory")),
      !tr ? h("p", { class: "empty" }, t("Geen lopend traject.", "No current trajectory.")) : [
        h("dl", { class: "kv compact" },
          h("div", null, h("dt", null, t("Status", "Status")), h("dd", { id: "traj-status" }, badge(enumLabel("trajectory", tr.status), "st-" + tr.status))),
          h("div", null, h("dt", null, t("Gestart", "Started")), h("dd", null, fmtDay(tr.started_on))),
          tr.closed_on ? h("div", null, h("dt", null, t("Afgesloten", "Closed")), h("dd", null, fmtDay(tr.closed_on), " — ", regionLabel(labels, "closure_reasons", tr.closure_reason))) : null,
          h("div", null, h("dt", null, t("Gemandateerd", "Mandated")), h("dd", null, tr.mandated ? t("ja", "yes") : t("nee", "no"))),
          tr.rtj_requested ? h("div", null, h("dt", null, t("RTJ", "RTJ")), h("dd", null, t("aangevraagd", "requested"))) : null),
        h("h3", null, t("Coaches", "Coaches")),
        h("ul", { class: "plain coaches", id: "traj-coaches" }, (traj?.coaches ?? [{ user_id: tr.lead_coach_id, username: "", display_name: coachName(coaches, tr.lead_coach_id), role: "lead" }])
          .map((c) => h("li", { dataset: { role: c.role } }, h("strong", null, c.display_name || c.username), " — ", enumLabel("coachRole", c.role)))),
        isCoordinator && tr.status !== "closed" ? reassignBlock(tr) : null,
        historyButton("trajectories", tr.id, t("traject", "trajectory"))],
      evictionsBlock(),
      past.length ? [h("h3", null, t("Vorige trajecten", "Past trajectories")),
        h("ul", { class: "plain" }, past.map((p) => h("li", null, fmtDay(p.started_on), " – ", fmtDay(p.closed_on), ": ",
          enumLabel("trajectory", p.status), p.closure_reason ? " · " + regionLabel(labels, "closure_reasons", p.closure_reason) : "", " · ", coachName(coaches, p.lead_coach_id))))] : null);
  };

  const evictionsBlock = (): HTMLElement => {
    const ev = traj ? traj.evictions ?? [] : cf.evictions ?? [];
    return h("div", { id: "evictions", class: "evictions" },
      ev.length === 0 ? null : [
        h("h3", null, t("Verwijderd van toestellen", "Removed from devices")),
        h("ul", { class: "plain" }, ev.map((e) => h("li", { class: e.proven ? "proven" : "waiting", dataset: { device: e.device_id } },
          e.proven ? badge(t("bewezen", "proven"), "ok") : badge(t("wacht op bewijs", "awaiting proof"), "warn"), " ",
          h("strong", null, e.device_name || e.device_id), " ", t("van", "of"), " ", e.username,
          h("div", { class: "muted small" }, t("opdracht ", "told "), fmtTime(e.evicted_at),
            e.proven ? [" · ", t("bewijs ", "proof "), h("code", null, e.proof), " · ", fmtTime(e.proven_at)] : null))))]);
  };

  const reassignBlock = (tr: Trajectory): HTMLElement => {
    const key = `${tr.id}|${tr.lead_coach_id}|${(tr.co_coach_ids ?? []).join(",")}|${coaches.length}`;
    if (reassign && reassign.key === key) return reassign.el;
    const msg = h("p", { class: "form-msg", role: "alert" });
    const lead = h("select", { id: "ra-lead", name: "lead" }, coaches.map((c) => h("option", { value: c.id, selected: c.id === tr.lead_coach_id ? true : null },
      c.display_name || c.username, c.free != null ? t(` (${c.free} vrij)`, ` (${c.free} free)`) : "")));
    const cos = coaches.map((c) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "co", value: c.id, checked: (tr.co_coach_ids ?? []).includes(c.id) ? true : null }), " ", c.display_name || c.username));
    const submit = h("button", { type: "submit", class: "primary", id: "ra-submit" }, t("Toewijzen", "Reassign"));
    const el = h("details", { class: "reassign", id: "reassign" },
      h("summary", { id: "ra-summary" }, t("Ander coach toewijzen", "Reassign to another coach")),
      coaches.length === 0 ? h("p", { class: "empty" }, t("Geen coaches gevonden in deze regio.", "No coaches found in this region.")) :
        h("form", { onsubmit: async (e: Event) => {
          e.preventDefault();
          const co = cos.map((l) => l.querySelector("input")!).filter((i) => i.checked && i.value !== lead.value).map((i) => i.value);
          const newName = coachName(coaches, lead.value);
          msg.textContent = "";
          submit.disabled = true;
          try {
            const ok = await confirmDialog(t("Traject toewijzen", "Reassign the trajectory"),
              t(`${newName} wordt hoofdcoach van ${cf.family.label}. De toestellen van wie het gezin verliest, verwijderen het.`,
                `${newName} becomes the lead coach of ${cf.family.label}. The devices of whoever loses the family will remove it.`),
              t("Toewijzen", "Reassign"));
            if (!ok) {
              submit.focus();
              return;
            }
            traj = await ctx.api.put<TrajectoryDetail>(`/v1/trajectories/${encodeURIComponent(tr.id)}/assignment`, { lead_coach_id: lead.value, co_coach_ids: co });
            reassign = null;
            reassignedAt = Date.now();
            await load();
            say(t(`Toegewezen aan ${newName}. De bewijzen van verwijdering verschijnen zodra de toestellen synchroniseren.`,
              `Reassigned to ${newName}. Eviction proofs appear once the devices sync.`));
          } catch (err) {
            msg.textContent = errorText(err);
            lead.focus();
          } finally {
            submit.disabled = false;
          }
        } },
          h("div", { class: "field" }, h("label", { for: "ra-lead" }, t("Nieuwe hoofdcoach", "New lead coach")), lead),
          h("fieldset", { class: "cocoaches" }, h("legend", null, t("Co-coaches", "Co-coaches")), cos),
          msg, h("div", { class: "actions" }, submit)));
    reassign = { key, el };
    return el;
  };

  const signalsSection = (): HTMLElement => {
    const s = cf.signals ?? [];
    return h("section", { class: "panel signals", "aria-labelledby": "sig-h" },
      h("h2", { id: "sig-h" }, t("Signalen", "Signals"), " ", h("span", { class: "n" }, `(${s.length})`)),
      s.length === 0 ? h("p", { class: "empty" }, t("Geen open signalen.", "No open signals.")) :
        h("ul", { class: "plain" }, s.map((x) => h("li", { class: "signal sev-" + x.severity, dataset: { signal: x.id } },
          badge(enumLabel("severity", x.severity), "sev-" + x.severity), " ", label(x) || x.id,
          h("span", { class: "muted small" }, " · ", x.about === "referral" ? t("aanmelding", "referral") : t("traject", "trajectory"))))));
  };

  const membersSection = (): HTMLElement => {
    const ms = cf.members ?? [];
    return h("section", { class: "panel members", "aria-labelledby": "mem-h" },
      h("h2", { id: "mem-h" }, t("Gezinsleden", "Family members"), " ", h("span", { class: "n" }, `(${ms.length})`)),
      ms.length === 0 ? h("p", { class: "empty" }, t("Geen gezinsleden.", "No members.")) :
        h("ul", { class: "people" }, ms.map((m) => h("li", null,
          h("p", null, h("strong", null, [m.given_name, m.family_name].filter(Boolean).join(" ") || "—"), " · ", enumLabel("role", m.role),
            m.age_years != null ? [" · ", h("span", { class: "age" }, t(`${m.age_years} jaar`, `${m.age_years} years`))] : null,
            m.role === "unborn" && m.due_date ? [" · ", t("verwacht ", "due "), fmtDay(m.due_date)] : null,
            m.willing ? [" ", badge(t("wil samenwerken", "willing"), "ok")] : null),
          historyButton("persons", m.id, [m.given_name, m.family_name].join(" "))))));
  };

  const networkSection = (): HTMLElement => {
    const ns = cf.network ?? [];
    return h("section", { class: "panel network", "aria-labelledby": "net-h" },
      h("h2", { id: "net-h" }, t("Netwerk", "Network"), " ", h("span", { class: "n" }, `(${ns.length})`)),
      ns.length === 0 ? h("p", { class: "empty" }, t("Nog geen netwerk.", "No network yet.")) :
        h("ul", { class: "people" }, ns.map((n) => h("li", null,
          h("p", null, h("strong", null, n.name || "—"), " · ", n.relation || "—", " · ", enumLabel("kind", n.kind),
            n.organisation ? [" · ", n.organisation] : null,
            n.consent_to_contact ? null : [" ", badge(t("geen toestemming voor contact", "no consent to contact"), "warn")]),
          n.role_in_plan ? h("p", { class: "muted small" }, t("Rol in het plan: ", "Role in the plan: "), n.role_in_plan) : null,
          historyButton("network_members", n.id, n.name)))));
  };

  const referralsSection = (): HTMLElement => {
    const rs = cf.referrals ?? [];
    return h("section", { class: "panel referrals-case", "aria-labelledby": "refc-h" },
      h("h2", { id: "refc-h" }, t("Aanmeldingen", "Referrals"), " ", h("span", { class: "n" }, `(${rs.length})`)),
      rs.length === 0 ? h("p", { class: "empty" }, t("Geen aanmeldingen.", "No referrals.")) :
        h("ul", { class: "people" }, rs.map((r) => h("li", null,
          h("p", null, h("strong", null, fmtDay(r.received_on)), " · ", regionLabel(labels, "referral_channels", r.channel), " · ", badge(enumLabel("referral", r.status), "ref-" + r.status),
            r.eligibility ? [" ", r.eligibility.eligible ? badge(t("in aanmerking", "eligible"), "ok") : badge(t("niet in aanmerking", "not eligible"), "bad")] : null),
          r.question ? h("p", { class: "muted small" }, r.question) : null,
          r.outcome_reason ? h("p", { class: "small" }, t("Uitkomst: ", "Outcome: "), r.outcome_reason) : null,
          r.status === "open" ? h("p", { class: "small" }, h("a", { href: "#/intake" }, t("Naar het intakebord", "To the intake board"))) : null))));
  };

  const conflictsSection = (): HTMLElement => {
    const cs = cf.conflict_records ?? [];
    const side = (s: Side, win: boolean) => h("div", { class: "side " + (win ? "winner" : "loser") },
      h("h4", null, win ? t("Huidige waarde (wint)", "Current value (wins)") : t("Verloren waarde (bewaard)", "Lost value (kept)")),
      h("blockquote", null, show(s.value)),
      h("p", { class: "muted small" }, s.display_name || s.username || s.user_id, " · ", t("toestel ", "device "), s.device_id),
      h("p", { class: "muted small" }, t("geschreven ", "written "), fmtTime(hlcTime(s.hlc)), " · ", t("ontvangen ", "received "), fmtTime(s.received_at)));
    return h("section", { class: "panel conflicts", "aria-labelledby": "conf-h" },
      h("h2", { id: "conf-h" }, t("Conflicten", "Conflicts"), " ", h("span", { class: "n" }, `(${cs.length})`)),
      h("p", { class: "muted small" }, t("Twee toestellen schreven hetzelfde veld; de nieuwste wint, niets gaat verloren.", "Two devices wrote the same field; the latest wins, nothing is lost.")),
      cs.map((c) => h("article", { class: "conflict", dataset: { conflict: String(c.id) } },
        h("p", null, h("strong", null, `${c.collection} · ${c.field}`), h("span", { class: "muted small" }, " · ", t("vastgesteld ", "detected "), fmtTime(c.detected_at))),
        h("div", { class: "sides" }, side(c.winner, true), side(c.loser, false)))));
  };

  /** quarantineSection groups the open quarantined writes by row (a new
   *  contact arrives as one write per field) and lets the coordinator
   *  accept or discard a row's writes together. */
  const quarantineSection = (): HTMLElement => {
    const qs = cf.quarantined_writes ?? [];
    const groups = new Map<string, QuarantineItem[]>();
    for (const q of qs) {
      const k = `${q.collection}/${q.row_id}/${q.user_id}`;
      groups.set(k, [...(groups.get(k) ?? []), q]);
    }
    const hidden = new Set(["trajectory_id", "family_id", "region"]);
    const decide = async (items: QuarantineItem[], what: "accept" | "discard", btn: HTMLButtonElement) => {
      const q = items[0];
      const yes = await confirmDialog(
        what === "accept" ? t("In het dossier opnemen", "Accept into the case") : t("Verwerpen", "Discard"),
        what === "accept"
          ? t(`Wat ${q.display_name || q.username} schreef (${items.length} velden van ${q.collection}) komt in het dossier.`, `What ${q.display_name || q.username} wrote (${items.length} fields of ${q.collection}) goes into the case.`)
          : t(`Wat ${q.display_name || q.username} schreef blijft bewaard, maar komt niet in het dossier.`, `What ${q.display_name || q.username} wrote stays recorded but never reaches the case.`),
        what === "accept" ? t("Aanvaarden", "Accept") : t("Verwerpen", "Discard"));
      if (!yes) {
        btn.focus();
        return;
      }
      const done = new Set<string>();
      try {
        for (const it of items) {
          if (done.has(it.id)) continue;
          const r = await ctx.api.post<{ accepted_with?: string[] | null }>(`/v1/regions/${encodeURIComponent(region)}/quarantine/${encodeURIComponent(it.id)}/${what}`, {});
          done.add(it.id);
          for (const x of r?.accepted_with ?? []) done.add(x);
        }
        await load();
        say(what === "accept" ? t("Aanvaard: het staat in het dossier.", "Accepted: it is in the case.") : t("Verworpen: het blijft bewaard buiten het dossier.", "Discarded: it is kept outside the case."));
      } catch (err) {
        say(errorText(err), "bad");
        void load().catch(() => undefined);
      }
    };
    return h("section", { class: "panel quarantine", "aria-labelledby": "q-h" },
      h("h2", { id: "q-h" }, t("In quarantaine", "Quarantined"), " ", h("span", { class: "n" }, `(${groups.size})`)),
      h("p", { class: "muted small" }, qs[0]?.reason_text || t("Geschreven door een coach die het gezin intussen verloor. Niets is verloren; de coördinator beslist.", "Written by a coach who has since lost the family. Nothing is lost; the coordinator decides.")),
      h("ul", { class: "plain" }, [...groups.values()].map((items) => {
        const q = items[0];
        const note = items.find((x) => x.field === "note");
        const rest = items.filter((x) => x !== note && !hidden.has(x.field));
        return h("li", { class: "qitem", dataset: { quarantine: q.id } },
          h("p", null, h("strong", null, q.display_name || q.username), h("span", { class: "muted small" }, " · ", q.device_name || q.device_id, " · ", q.collection,
            " · ", t("geschreven ", "written "), fmtTime(q.written_at), " · ", t("ontvangen ", "received "), fmtTime(q.received_at))),
          note ? h("blockquote", null, show(note.value)) : null,
          rest.length ? h("p", { class: "small" }, rest.map((x, i) => [i ? " · " : "", h("span", { class: "muted" }, x.field, ": "),
            value(x.field, x.value)])) : null,
          isCoordinator ? h("div", { class: "actions" },
            h("button", { type: "button", class: "primary", id: "qa-" + q.id, onclick: (e: Event) => decide(items, "accept", e.currentTarget as HTMLButtonElement) }, t("Aanvaarden", "Accept")),
            h("button", { type: "button", id: "qd-" + q.id, onclick: (e: Event) => decide(items, "discard", e.currentTarget as HTMLButtonElement) }, t("Verwerpen", "Discard"))) : null);
      })));
  };

  replace(root, flash, content, liveNote);
  content.setAttribute("aria-busy", "true");
  replace(content, loading(t("Dossier laden…", "Loading the case…")));
  try {
    await load();
  } catch (err) {
    replace(content, err instanceof ApiError && err.status === 404 ? errorBox(err) : failed(err, () => ctx.navigate(`/cases/${encodeURIComponent(id)}`)),
      h("p", null, h("a", { href: "#/cases" }, "← ", t("Alle dossiers", "All cases"))));
    return;
  } finally {
    content.removeAttribute("aria-busy");
  }
  document.getElementById("case-h")?.focus();

  // Live: an event for this family (or a resync) re-fetches the case.
  const refresh = debounce(async () => {
    try {
      await load();
      // the history panels the reader opened follow the change too
      await Promise.all([...openHistory].map(([key, panel]) => {
        const [collection, row] = key.split("/");
        return fillHistory(panel, collection, row);
      }));
      liveNote.textContent = t("Bijgewerkt om ", "Updated at ") + new Date().toLocaleTimeString();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        replace(content, errorBox(err));
        return;
      }
      liveNote.textContent = t("Bijwerken mislukt: ", "Update failed: ") + errorText(err);
    }
  }, 300);
  live(ctx, (ev) => {
    if (ev.type === "resync" || ev.family_id === id) refresh();
  }, (s) => {
    liveNote.dataset.live = s;
    if (s === "closed") liveNote.textContent = t("Live verbinding verbroken; opnieuw verbinden…", "Live connection lost; reconnecting…");
  });
}

function show(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return v || "—";
  return JSON.stringify(v);
}
