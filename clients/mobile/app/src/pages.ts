// The coach's pages, on the SDK's local store (they work offline): my
// families, a family (members, plan goals by life domain, network, contact
// timeline) and the quick contact after a visit.
import type { JsonValue, Replica, Row, User } from "../../sdk/src/index";
import { h, type Child } from "./dom";
import { t, when } from "./i18n";

/** Flash is a one-line message shown above the next page. */
export interface Flash {
  kind: "ok" | "bad";
  text: string;
}

const str = (v: JsonValue | undefined): string => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));

/** isMine tells whether a trajectory is hers: lead or co-coach, not closed. */
function isMine(tr: Row, user: User): boolean {
  const co = tr.fields.co_coach_ids;
  return tr.fields.status !== "closed" && (tr.fields.lead_coach_id === user.id || (Array.isArray(co) && co.includes(user.id)));
}

/** familiesPage: only her own families (an open trajectory she coaches), from the local store. */
export async function familiesPage(r: Replica, user: User): Promise<Node> {
  const [families, trajectories, contacts] = await Promise.all([r.query("families"), r.query("trajectories"), r.query("contacts")]);
  const mine = new Map<string, Row[]>();
  for (const tr of trajectories) {
    if (!isMine(tr, user)) continue;
    const f = str(tr.fields.family_id);
    mine.set(f, [...(mine.get(f) ?? []), tr]);
  }
  const lastContact = new Map<string, string>();
  for (const c of contacts) {
    const tr = str(c.fields.trajectory_id);
    const at = str(c.fields.occurred_at);
    if (at > (lastContact.get(tr) ?? "")) lastContact.set(tr, at);
  }
  const rows = families
    .filter((f) => mine.has(f.id))
    .map((f) => {
      const last = (mine.get(f.id) ?? []).map((tr) => lastContact.get(tr.id) ?? "").sort().pop() ?? "";
      return { f, last };
    })
    .sort((a, b) => str(a.f.fields.label).localeCompare(str(b.f.fields.label)));
  return h(
    "section",
    { class: "families" },
    h("h1", null, t("Mijn gezinnen", "My families")),
    rows.length === 0
      ? h("p", { class: "notice" }, t("Nog geen gezinnen op dit toestel. Ze komen mee bij de volgende synchronisatie.", "No families on this device yet. They arrive with the next sync."))
      : h(
          "ul",
          { class: "cards" },
          rows.map(({ f, last }) =>
            h(
              "li",
              null,
              h("a", { class: "card", href: `#/gezin/${f.id}` }, h("strong", null, str(f.fields.label) || t("(zonder naam)", "(no name)")), h("span", { class: "muted" }, str(f.fields.municipality)), h("span", { class: "muted" }, last ? t("laatste contact ", "last contact ") + when(Date.parse(last)) : t("nog geen contact", "no contact yet"))),
            ),
          ),
        ),
  );
}

const MODES: [string, string, string][] = [
  ["home_visit", "Huisbezoek", "Home visit"],
  ["office", "Op kantoor", "At the office"],
  ["outdoor", "Buiten", "Outdoors"],
  ["phone", "Telefoon", "Phone"],
  ["video", "Video", "Video"],
];
const ROLES: Record<string, [string, string]> = { parent: ["ouder", "parent"], child: ["kind", "child"], youngster: ["jongere", "youngster"], unborn: ["ongeboren", "unborn"], other: ["andere", "other"] };
const KINDS: Record<string, [string, string]> = { informal: ["informeel", "informal"], professional: ["professioneel", "professional"], volunteer: ["vrijwilliger", "volunteer"] };
const GOAL_STATUS: Record<string, [string, string]> = { open: ["open", "open"], in_progress: ["bezig", "in progress"], achieved: ["bereikt", "achieved"], dropped: ["losgelaten", "dropped"] };
const tr2 = (m: Record<string, [string, string]>, k: string): string => (m[k] ? t(m[k][0], m[k][1]) : k);
const modeLabel = (k: string): string => {
  const m = MODES.find((x) => x[0] === k);
  return m ? t(m[1], m[2]) : k;
};

async function familyData(r: Replica, familyId: string) {
  const [family, persons, trajectories, goals, network, contacts] = await Promise.all([
    r.get("families", familyId),
    r.query("persons"),
    r.query("trajectories"),
    r.query("plan_goals"),
    r.query("network_members"),
    r.query("contacts"),
  ]);
  const trs = trajectories.filter((x) => x.fields.family_id === familyId);
  const trIds = new Set(trs.map((x) => x.id));
  return {
    family,
    persons: persons.filter((p) => p.fields.family_id === familyId),
    trajectories: trs,
    goals: goals.filter((g) => trIds.has(str(g.fields.trajectory_id))),
    network: network.filter((n) => n.fields.family_id === familyId),
    contacts: contacts.filter((c) => trIds.has(str(c.fields.trajectory_id))).sort((a, b) => str(b.fields.occurred_at).localeCompare(str(a.fields.occurred_at))),
  };
}

function notHere(): Node {
  return h("section", null, h("h1", null, t("Gezin niet gevonden", "Family not found")), h("p", null, t("Dit gezin staat niet (meer) op dit toestel.", "This family is not (or no longer) on this device.")), h("a", { href: "#/" }, t("Naar mijn gezinnen", "To my families")));
}

/** familyPage: members, plan goals by life domain, network and the contact timeline. */
export async function familyPage(r: Replica, familyId: string): Promise<Node> {
  const d = await familyData(r, familyId);
  if (!d.family) return notHere();
  const byDomain = new Map<string, Row[]>();
  for (const g of d.goals) {
    const dom = str(g.fields.life_domain) || t("(geen levensdomein)", "(no life domain)");
    byDomain.set(dom, [...(byDomain.get(dom) ?? []), g]);
  }
  const section = (cls: string, title: string, empty: string, items: Child[]): Node =>
    h("section", { class: cls }, h("h2", null, title), items.length ? h("ul", { class: "list" }, items) : h("p", { class: "muted" }, empty));
  return h(
    "article",
    { class: "family" },
    h("p", null, h("a", { href: "#/" }, "← " + t("Mijn gezinnen", "My families"))),
    h("h1", null, str(d.family.label) || t("(zonder naam)", "(no name)")),
    h("p", { class: "muted" }, str(d.family.municipality)),
    h("a", { class: "button primary", href: `#/gezin/${familyId}/contact` }, t("Contact na een huisbezoek", "Contact after a visit")),
    section(
      "members",
      t("Gezinsleden", "Members"),
      t("Geen gezinsleden.", "No members."),
      d.persons.map((p) => h("li", null, `${str(p.fields.given_name)} ${str(p.fields.family_name)}`.trim(), " ", h("span", { class: "muted" }, tr2(ROLES, str(p.fields.role)), p.fields.birth_date ? " · °" + str(p.fields.birth_date) : "", p.fields.willing === true ? " · " + t("wil samenwerken", "willing to work with the coach") : ""))),
    ),
    h(
      "section",
      { class: "plan" },
      h("h2", null, t("Gezinsplan", "Family plan")),
      byDomain.size === 0
        ? h("p", { class: "muted" }, t("Nog geen doelen.", "No goals yet."))
        : [...byDomain.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([dom, gs]) =>
            h("div", { class: "domain" }, h("h3", null, dom.replace(/_/g, " ")), h("ul", { class: "list" }, gs.map((g) => h("li", null, h("strong", null, str(g.fields.goal) || "—"), h("span", { class: "muted" }, " · " + tr2(GOAL_STATUS, str(g.fields.status) || "open"), typeof g.fields.scale === "number" ? ` · ${g.fields.scale}/10` : ""), g.fields.actions ? h("div", { class: "muted" }, str(g.fields.actions)) : null, h("a", { class: "edit", href: `#/gezin/${familyId}/doel/${g.id}` }, t("Bewerken", "Edit")))))),
          ),
    ),
    section(
      "network",
      t("Netwerk", "Network"),
      t("Nog geen netwerk.", "No network yet."),
      d.network.map((n) => h("li", null, str(n.fields.name), " ", h("span", { class: "muted" }, [...new Set([str(n.fields.relation), tr2(KINDS, str(n.fields.kind)), str(n.fields.organisation)].filter(Boolean))].join(" · ")))),
    ),
    section(
      "timeline",
      t("Contacten", "Contacts"),
      t("Nog geen contacten.", "No contacts yet."),
      d.contacts.map((c) =>
        h("li", null, h("strong", null, c.fields.occurred_at ? when(Date.parse(str(c.fields.occurred_at))) : "—"), " ", h("span", { class: "muted" }, modeLabel(str(c.fields.mode)), typeof c.fields.minutes === "number" ? ` · ${c.fields.minutes} min` : "", Array.isArray(c.fields.participants) && c.fields.participants.length ? t(" · met ", " · with ") + c.fields.participants.join(", ") : ""), c.fields.note ? h("p", { class: "note" }, str(c.fields.note)) : null, c.fields.follow_up ? h("p", { class: "muted" }, t("Opvolging: ", "Follow-up: ") + str(c.fields.follow_up)) : null),
      ),
    ),
  );
}

/** contactPage: the quick contact after a visit, saved at once to the local store (offline too). */
export async function contactPage(r: Replica, user: User, familyId: string, flash: (f: Flash) => void): Promise<Node> {
  const d = await familyData(r, familyId);
  if (!d.family) return notHere();
  const tr = d.trajectories.find((x) => isMine(x, user)) ?? d.trajectories.find((x) => x.fields.status !== "closed");
  if (!tr) return h("section", null, h("h1", null, str(d.family.label)), h("p", null, t("Dit gezin heeft geen lopend traject: een contact kan niet bewaard worden.", "This family has no open trajectory: a contact cannot be saved.")));
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const err = h("p", { class: "form-error", role: "alert" });
  const at = h("input", { id: "occurred_at", type: "datetime-local", value: now, required: true });
  const mode = h("select", { id: "mode" }, MODES.map(([v, nl, en]) => h("option", { value: v }, t(nl, en))));
  const minutes = h("input", { id: "minutes", type: "number", min: "0", max: "600", step: "5", value: "60", inputmode: "numeric" });
  const people = d.persons.map((p) => ({ name: str(p.fields.given_name) || str(p.fields.family_name), box: h("input", { type: "checkbox", value: p.id }) }));
  const others = h("input", { id: "others", placeholder: t("bv. grootmoeder, leerkracht", "e.g. grandmother, teacher") });
  const note = h("textarea", { id: "note", rows: "6", required: true });
  const follow = h("textarea", { id: "follow_up", rows: "2" });
  const save = h("button", { type: "submit", class: "primary" }, t("Bewaren", "Save"));
  return h(
    "form",
    {
      class: "contact",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        err.textContent = "";
        const participants = [...people.filter((p) => p.box.checked).map((p) => p.name), ...others.value.split(",").map((x) => x.trim()).filter(Boolean)];
        const id = r.newId();
        save.disabled = true;
        try {
          await r.writeRow("contacts", id, {
            trajectory_id: tr.id, // the parent link first
            coach_id: user.id,
            occurred_at: new Date(at.value).toISOString(),
            mode: mode.value,
            minutes: Math.max(0, Math.round(Number(minutes.value) || 0)),
            participants,
            note: note.value,
            follow_up: follow.value || null,
          });
          flash({ kind: "ok", text: t("Contact bewaard op dit toestel; het wordt verstuurd bij de volgende synchronisatie.", "Contact saved on this device; it is sent with the next sync.") });
          location.hash = `#/gezin/${familyId}`;
        } catch (e) {
          err.textContent = t("Niet bewaard: ", "Not saved: ") + (e instanceof Error ? e.message : String(e));
          save.disabled = false;
        }
      },
    },
    h("p", null, h("a", { href: `#/gezin/${familyId}` }, "← " + str(d.family.label))),
    h("h1", null, t("Contact na een huisbezoek", "Contact after a visit")),
    h("label", { for: "occurred_at" }, t("Wanneer", "When")),
    at,
    h("label", { for: "mode" }, t("Soort contact", "Mode")),
    mode,
    h("label", { for: "minutes" }, t("Minuten", "Minutes")),
    minutes,
    h("fieldset", null, h("legend", null, t("Wie was erbij", "Participants")), people.map((p) => h("label", { class: "check" }, p.box, " ", p.name)), h("label", { for: "others" }, t("Anderen (met komma's)", "Others (comma-separated)")), others),
    h("label", { for: "note" }, t("Notitie", "Note")),
    note,
    h("label", { for: "follow_up" }, t("Opvolging", "Follow-up")),
    follow,
    err,
    save,
  );
}

/** problemsPage lists the writes the server did not take: quarantined (the
 *  family is no longer hers; the coordinator has them) and rejected, each
 *  with its value, until she dismisses it. */
export async function problemsPage(r: Replica): Promise<Node> {
  const s = await r.status();
  const all = [...s.quarantined, ...s.rejected].sort((a, b) => b.at - a.at);
  return h(
    "section",
    { class: "problems" },
    h("p", null, h("a", { href: "#/" }, "← " + t("Mijn gezinnen", "My families"))),
    h("h1", null, t("Niet aanvaarde wijzigingen", "Changes not accepted")),
    all.length === 0
      ? h("p", { class: "muted" }, t("Geen: de server heeft alles aanvaard.", "None: the server accepted everything."))
      : h(
          "ul",
          { class: "list" },
          all.map((p) =>
            h(
              "li",
              { class: p.kind },
              h("strong", null, p.kind === "quarantined" ? t("In quarantaine", "In quarantine") : t("Geweigerd", "Refused")),
              h("span", { class: "muted" }, ` · ${when(p.at)} · ${p.change.collection}.${p.change.field}`),
              h("p", { class: "note" }, typeof p.change.value === "string" ? p.change.value : JSON.stringify(p.change.value)),
              h("p", { class: "muted" }, p.kind === "quarantined" ? t("Het gezin is niet meer van jou; de coördinator van de regio krijgt deze wijziging. Ze is niet verloren.", "The family is no longer yours; the region's coordinator receives this change. It is not lost.") : p.message),
              h("button", { type: "button", onclick: () => void r.dismiss(p.id).then(() => dispatchEvent(new HashChangeEvent("hashchange"))) }, t("Gezien", "Seen")),
            ),
          ),
        ),
  );
}

/** goalPage edits one plan goal; only the fields she changed are written
 *  (each is its own last-writer-wins field), at once and offline. */
export async function goalPage(r: Replica, familyId: string, goalId: string, flash: (f: Flash) => void): Promise<Node> {
  const g = await r.get("plan_goals", goalId);
  const fam = await r.get("families", familyId);
  if (!g || !fam) return notHere();
  const err = h("p", { class: "form-error", role: "alert" });
  const goal = h("textarea", { id: "goal", rows: "3" });
  goal.value = str(g.goal);
  const status = h("select", { id: "status" }, Object.entries(GOAL_STATUS).map(([v, [nl, en]]) => h("option", { value: v, selected: (str(g.status) || "open") === v }, t(nl, en))));
  const scale = h("input", { id: "scale", type: "number", min: "0", max: "10", step: "1", inputmode: "numeric", value: typeof g.scale === "number" ? String(g.scale) : "" });
  const actions = h("textarea", { id: "actions", rows: "3" });
  actions.value = str(g.actions);
  const due = h("input", { id: "due_on", type: "date", value: str(g.due_on) });
  const save = h("button", { type: "submit", class: "primary" }, t("Bewaren", "Save"));
  return h(
    "form",
    {
      class: "goal",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        err.textContent = "";
        const next: Record<string, JsonValue> = {
          goal: goal.value,
          status: status.value,
          scale: scale.value === "" ? null : Math.min(10, Math.max(0, Math.round(Number(scale.value)))),
          actions: actions.value,
          due_on: due.value || null,
        };
        const changed: Record<string, JsonValue> = {};
        for (const [k, v] of Object.entries(next)) if (JSON.stringify(v) !== JSON.stringify(g[k] ?? (k === "goal" || k === "actions" ? "" : k === "status" ? "open" : null))) changed[k] = v;
        save.disabled = true;
        try {
          if (Object.keys(changed).length) await r.writeRow("plan_goals", goalId, changed);
          flash({ kind: "ok", text: Object.keys(changed).length ? t("Doel bewaard op dit toestel; het wordt verstuurd bij de volgende synchronisatie.", "Goal saved on this device; it is sent with the next sync.") : t("Niets gewijzigd.", "Nothing changed.") });
          location.hash = `#/gezin/${familyId}`;
        } catch (e) {
          err.textContent = t("Niet bewaard: ", "Not saved: ") + (e instanceof Error ? e.message : String(e));
          save.disabled = false;
        }
      },
    },
    h("p", null, h("a", { href: `#/gezin/${familyId}` }, "← " + str(fam.label))),
    h("h1", null, t("Doel bewerken", "Edit goal")),
    h("p", { class: "muted" }, str(g.life_domain).replace(/_/g, " ")),
    h("label", { for: "goal" }, t("Doel (in de woorden van het gezin)", "Goal (in the family's words)")),
    goal,
    h("label", { for: "status" }, t("Stand", "Status")),
    status,
    h("label", { for: "scale" }, t("Schaal (0–10)", "Scale (0–10)")),
    scale,
    h("label", { for: "actions" }, t("Acties", "Actions")),
    actions,
    h("label", { for: "due_on" }, t("Tegen", "Due")),
    due,
    err,
    save,
  );
}
