// The coach's intake work, on the local store (offline too): a permanence
// consult (the referrer coached by phone), a referral, and her signals.
import type { JsonValue, Replica, User } from "../../sdk/src/index";
import { h } from "./dom";
import { currentLang, t, when } from "./i18n";
import type { Flash } from "./pages";

const str = (v: JsonValue | undefined): string => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));
const localNow = (): string => new Date(Date.now() - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

function field(id: string, label: string, input: HTMLElement): HTMLElement[] {
  return [h("label", { for: id }, label), input];
}

function check(id: string, label: string): [HTMLInputElement, HTMLElement] {
  const box = h("input", { id, type: "checkbox" });
  return [box, h("label", { class: "check", for: id }, box, " ", label)];
}

/** consultPage logs a permanence consult, and optionally a referral that
 *  came out of it (linked by referral_id). */
export async function consultPage(r: Replica, user: User, flash: (f: Flash) => void): Promise<Node> {
  const region = user.regions[0] ?? "";
  const mine = (await r.query("consults")).filter((c) => c.fields.coach_id === user.id).sort((a, b) => str(b.fields.at).localeCompare(str(a.fields.at))).slice(0, 10);
  const err = h("p", { class: "form-error", role: "alert" });
  const at = h("input", { id: "at", type: "datetime-local", value: localNow(), required: true });
  const referrer = h("input", { id: "referrer", placeholder: t("naam en organisatie", "name and organisation") });
  const question = h("textarea", { id: "question", rows: "3", required: true });
  const advice = h("textarea", { id: "advice", rows: "3" });
  const minutes = h("input", { id: "minutes", type: "number", min: "0", max: "600", step: "5", value: "20", inputmode: "numeric" });
  const [withReferral, withReferralLabel] = check("with_referral", t("Er volgt een aanmelding (maak ze meteen aan)", "A referral follows (create it now)"));
  const save = h("button", { type: "submit", class: "primary" }, t("Bewaren", "Save"));
  return h(
    "section",
    { class: "consults" },
    h("h1", null, t("Permanentie", "Permanence")),
    h(
      "form",
      {
        class: "consult",
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          err.textContent = "";
          save.disabled = true;
          try {
            const id = r.newId();
            await r.writeRow("consults", id, {
              region,
              at: new Date(at.value).toISOString(),
              referrer: referrer.value,
              question: question.value,
              advice: advice.value,
              minutes: Math.max(0, Math.round(Number(minutes.value) || 0)),
              coach_id: user.id,
            });
            flash({ kind: "ok", text: t("Permanentiegesprek bewaard op dit toestel.", "Permanence consult saved on this device.") });
            location.hash = withReferral.checked ? `#/aanmelding?consult=${id}` : "#/permanentie";
            if (!withReferral.checked) dispatchEvent(new HashChangeEvent("hashchange"));
          } catch (e) {
            err.textContent = t("Niet bewaard: ", "Not saved: ") + (e instanceof Error ? e.message : String(e));
            save.disabled = false;
          }
        },
      },
      field("at", t("Wanneer", "When"), at),
      field("referrer", t("Verwijzer", "Referrer"), referrer),
      field("question", t("Vraag", "Question"), question),
      field("advice", t("Advies, afspraken", "Advice, agreements"), advice),
      field("minutes", t("Minuten", "Minutes"), minutes),
      withReferralLabel,
      err,
      save,
    ),
    h("h2", null, t("Mijn laatste gesprekken", "My latest consults")),
    mine.length === 0
      ? h("p", { class: "muted" }, t("Nog geen.", "None yet."))
      : h("ul", { class: "list" }, mine.map((c) => h("li", { class: "consult-item" }, h("strong", null, c.fields.at ? when(Date.parse(str(c.fields.at))) : "—"), " ", h("span", { class: "muted" }, str(c.fields.referrer)), h("p", { class: "note" }, str(c.fields.question)), c.fields.referral_id ? h("p", { class: "muted" }, t("Met aanmelding", "With a referral")) : null))),
  );
}

/** referralPage logs a referral for the region's intake; from a consult
 *  (?consult=<id>) it is linked to that consult. */
export async function referralPage(r: Replica, user: User, consultId: string, flash: (f: Flash) => void): Promise<Node> {
  const region = user.regions[0] ?? "";
  const consult = consultId ? await r.get("consults", consultId) : null;
  const err = h("p", { class: "form-error", role: "alert" });
  const today = localNow().slice(0, 10);
  const received = h("input", { id: "received_on", type: "date", value: today, required: true });
  const channel = h("input", { id: "channel", value: consult ? "permanentie" : "" });
  const name = h("input", { id: "referrer_name", value: consult ? str(consult.referrer) : "" });
  const org = h("input", { id: "referrer_org" });
  const municipality = h("input", { id: "municipality" });
  const question = h("textarea", { id: "question", rows: "4", required: true });
  question.value = consult ? str(consult.question) : "";
  const [consent, consentL] = check("consent", t("Het gezin stemt in met de aanmelding", "The family consents to the referral"));
  const [articulated, articulatedL] = check("articulated", t("Gearticuleerde hulpvraag", "Articulated help request"));
  const [mandated, mandatedL] = check("mandated", t("Met mandaat (toegangspoort)", "Mandated (gateway)"));
  const [crisis, crisisL] = check("crisis", t("Crisishulp nodig", "Crisis help needed"));
  const save = h("button", { type: "submit", class: "primary" }, t("Aanmelding bewaren", "Save referral"));
  return h(
    "form",
    {
      class: "referral",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        err.textContent = "";
        save.disabled = true;
        try {
          const id = r.newId();
          await r.writeRow("referrals", id, {
            region,
            received_on: received.value,
            channel: channel.value,
            referrer_name: name.value,
            referrer_org: org.value,
            municipality: municipality.value,
            question: question.value,
            consent: consent.checked,
            articulated: articulated.checked,
            mandated: mandated.checked,
            crisis: crisis.checked,
          });
          if (consult) await r.write("consults", consultId, "referral_id", id);
          flash({ kind: "ok", text: t("Aanmelding bewaard op dit toestel; ze komt op het intakebord na de synchronisatie.", "Referral saved on this device; it reaches the intake board after the sync.") });
          location.hash = "#/permanentie";
        } catch (e) {
          err.textContent = t("Niet bewaard: ", "Not saved: ") + (e instanceof Error ? e.message : String(e));
          save.disabled = false;
        }
      },
    },
    h("h1", null, t("Aanmelding", "Referral")),
    consult ? h("p", { class: "muted" }, t("Uit het permanentiegesprek van ", "From the permanence consult of ") + (consult.at ? when(Date.parse(str(consult.at))) : "")) : null,
    field("received_on", t("Ontvangen op", "Received on"), received),
    field("channel", t("Kanaal", "Channel"), channel),
    field("referrer_name", t("Verwijzer", "Referrer"), name),
    field("referrer_org", t("Organisatie", "Organisation"), org),
    field("municipality", t("Gemeente", "Municipality"), municipality),
    field("question", t("Vraag", "Question"), question),
    consentL,
    articulatedL,
    mandatedL,
    crisisL,
    err,
    save,
  );
}

/** signalsPage lists her fired signals (from the last complete pull). */
export async function signalsPage(r: Replica): Promise<Node> {
  const [signals, families] = await Promise.all([r.signals(), r.query("families")]);
  const label = new Map(families.map((f) => [f.id, str(f.fields.label)]));
  const rank = (s: string) => ({ critical: 0, warning: 1, info: 2 })[s] ?? 3;
  const sorted = [...signals].sort((a, b) => rank(a.severity) - rank(b.severity));
  return h(
    "section",
    { class: "signals" },
    h("h1", null, t("Mijn signalen", "My signals")),
    sorted.length === 0
      ? h("p", { class: "muted" }, t("Geen signalen bij de laatste synchronisatie.", "No signals at the last sync."))
      : h(
          "ul",
          { class: "list" },
          sorted.map((s) =>
            h("li", { class: "signal " + s.severity }, h("strong", null, currentLang() === "en" && s.label_en ? s.label_en : s.label), " ", label.has(s.family_id) ? h("a", { href: `#/gezin/${s.family_id}` }, label.get(s.family_id)) : null),
          ),
        ),
  );
}
