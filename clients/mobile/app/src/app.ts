// The coach app's shell: a header, the sync status bar, and the page of the
// hash route (#/login, #/ my families, #/gezin/<id>, #/gezin/<id>/contact).
// The page contract is the web client's: <main> is aria-busy while a page
// loads. Pages read the SDK's local store, so they work offline.
import type { SyncStatus as SdkStatus, User } from "../../sdk/src/index";
import { h, replace } from "./dom";
import { currentLang, setLang, t, when } from "./i18n";
import { netState, onNetState, type NetState } from "./offline";
import { contactPage, familiesPage, familyPage, goalPage, problemsPage, type Flash } from "./pages";
import { consultPage, referralPage, signalsPage } from "./intake";
import { openCoachReplica, replica, replicaError } from "./replica";
import { deviceName } from "./session";

let root: HTMLElement;
let main: HTMLElement;
let bar: HTMLElement;
let status: SdkStatus | null = null;
let flash: Flash | null = null;
let rendering = 0;
/** wiping is set while the app itself wipes the replica (log out, a non-coach's login). */
let wiping = false;

export async function start(el: HTMLElement): Promise<void> {
  root = el;
  document.documentElement.lang = currentLang();
  await openCoachReplica();
  if (replica) {
    status = await replica.status();
    replica.onStatus((s) => {
      const wasIn = !!status?.user;
      status = s;
      if (wasIn && !s.user && !wiping) {
        // Signed out by the server (device revoked: the SDK wiped the data).
        flash = { kind: "bad", text: t("Je bent afgemeld en de gegevens op dit toestel zijn gewist (toestel ingetrokken of sessie verlopen).", "You were logged out and the data on this device was wiped (device revoked or session expired).") };
        void route();
        return;
      }
      renderBar();
    });
    replica.onChange(() => {
      // A form keeps what she is typing; the other pages follow the store.
      if (!/\/(contact|doel\/[0-9a-f-]+)$|#\/(permanentie|aanmelding)/.test(location.hash)) void route();
    });
    if (replica.user()) replica.startAutoSync(30_000);
  }
  addEventListener("hashchange", () => void route());
  onNetState(() => renderBar());
  await route();
}

/** me is the logged-in coach, null when signed out. */
function me(): User | null {
  return replica?.user() ?? null;
}

async function route(): Promise<void> {
  const user = me();
  const path = location.hash.replace(/^#/, "") || "/";
  if (!user) {
    if (path !== "/login") location.replace("#/login"); // hashchange renders it
    else renderLogin();
    return;
  }
  if (path === "/login") {
    location.replace("#/");
    return;
  }
  if (!main?.isConnected || !root.querySelector("header.top")) renderShell(user);
  const ticket = ++rendering;
  main.setAttribute("aria-busy", "true");
  try {
    const m = /^\/gezin\/([0-9a-f-]+)(\/contact|\/doel\/([0-9a-f-]+))?$/.exec(path);
    const shown = flash;
    flash = null;
    let page: Node;
    if (!replica) throw new Error(replicaError);
    const setFlash = (f: Flash) => (flash = f);
    if (path === "/problemen") page = await problemsPage(replica);
    else if (path === "/permanentie") page = await consultPage(replica, user, setFlash);
    else if (path.startsWith("/aanmelding")) page = await referralPage(replica, user, new URLSearchParams(path.split("?")[1] ?? "").get("consult") ?? "", setFlash);
    else if (path === "/signalen") page = await signalsPage(replica);
    else if (m && m[3]) page = await goalPage(replica, m[1]!, m[3], (f) => (flash = f));
    else if (m && m[2]) page = await contactPage(replica, user, m[1]!, (f) => (flash = f));
    else if (m) page = await familyPage(replica, m[1]!);
    else page = await familiesPage(replica, user);
    if (ticket !== rendering) return; // a newer route is rendering
    replace(main, shown ? h("p", { class: "flash " + shown.kind, role: "status" }, shown.text) : null, page);
  } catch (e) {
    if (ticket === rendering) replace(main, h("p", { class: "error", role: "alert" }, t("Deze pagina kon niet geladen worden: ", "This page could not be loaded: ") + String(e)));
  } finally {
    if (ticket === rendering) main.removeAttribute("aria-busy");
  }
}

function renderLogin(): void {
  const err = h("p", { class: "form-error", role: "alert" }, flash?.text ?? "");
  flash = null;
  const user = h("input", { id: "username", name: "username", autocomplete: "username", autocapitalize: "none", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, t("Aanmelden", "Log in"));
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        err.textContent = "";
        submit.disabled = true;
        try {
          await logIn(user.value.trim(), pass.value);
          location.replace("#/");
          await route();
        } catch (e) {
          err.textContent = e instanceof Error ? e.message : String(e);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", null, "Samenplan"),
    h("p", { class: "tagline" }, t("Voor coaches: je gezinnen, ook zonder netwerk.", "For coaches: your families, offline too.")),
    h("label", { for: "username" }, t("Gebruikersnaam", "Username")),
    user,
    h("label", { for: "password" }, t("Wachtwoord", "Password")),
    pass,
    err,
    submit,
    langButton(),
  );
  bar = h("div", { class: "syncbar", role: "status" });
  main = h("main", { id: "main", class: "login-page", tabindex: "-1" }, form);
  replace(root, bar, main);
  renderBar();
  user.focus();
}

/** logIn signs in through the SDK; only coaches use this app. Throws an
 *  Error with a message for her. */
async function logIn(username: string, password: string): Promise<void> {
  if (!replica) throw new Error(t("Deze browser kan geen gegevens bewaren (IndexedDB), dus de app werkt hier niet: ", "This browser cannot store data (IndexedDB), so the app cannot work here: ") + replicaError);
  if (!navigator.onLine) throw new Error(t("Geen verbinding met de server. Aanmelden kan alleen online; daarna werkt de app ook zonder netwerk.", "No connection to the server. Logging in needs a network; after that the app works offline too."));
  let u: User;
  try {
    u = await replica.login(username, password, deviceName(currentLang()));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "unauthorized") throw new Error(t("Gebruikersnaam of wachtwoord klopt niet.", "Username or password is wrong."));
    if (code === "offline") throw new Error(t("Geen verbinding met de server. Aanmelden kan alleen online.", "No connection to the server. Logging in needs a network."));
    throw e;
  }
  if (u.role !== "coach") {
    await wipe();
    throw new Error(t("Deze app is voor coaches. Gebruik de webtoepassing op ", "This app is for coaches. Use the web client at ") + location.origin + "/");
  }
  replica.startAutoSync(30_000);
}

function renderShell(u: User): void {
  bar = h("div", { class: "syncbar", role: "status", "aria-live": "polite" });
  main = h("main", { id: "main", tabindex: "-1" });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/" }, "Samenplan coach"),
    h(
      "nav",
      null,
      h("a", { href: "#/" }, t("Gezinnen", "Families")),
      h("a", { href: "#/permanentie" }, t("Permanentie", "Permanence")),
      h("a", { href: "#/aanmelding" }, t("Aanmelding", "Referral")),
      h("a", { href: "#/signalen" }, t("Signalen", "Signals")),
    ),
    h(
      "div",
      { class: "who" },
      h("span", { class: "user", title: u.username }, u.display_name || u.username),
      langButton(),
      h("button", { class: "link", onclick: () => void logOut() }, t("Afmelden", "Log out")),
    ),
  );
  replace(root, header, bar, main);
  renderBar();
}

async function logOut(): Promise<void> {
  const pending = status?.pending ?? 0;
  if (pending > 0 && !confirm(t(`${pending} wijzigingen zijn nog niet naar de server gestuurd en gaan verloren. Toch afmelden?`, `${pending} changes have not reached the server and will be lost. Log out anyway?`))) return;
  // The SDK has no logout on the server yet: the device stays registered
  // (an admin can revoke it); its tokens are gone from this device.
  await wipe();
  location.replace("#/login");
  await route();
}

/** wipe deletes the replica's data and credentials on the coach's own request. */
async function wipe(): Promise<void> {
  if (!replica) return;
  wiping = true;
  try {
    await replica.wipe();
    status = await replica.status();
  } finally {
    wiping = false;
  }
}

function langButton(): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "link lang",
      lang: currentLang() === "nl" ? "en" : "nl",
      onclick: () => {
        setLang(currentLang() === "nl" ? "en" : "nl");
        root.replaceChildren();
        void route();
      },
    },
    currentLang() === "nl" ? "English" : "Nederlands",
  );
}

/** renderBar tells the truth about the network, the app's offline copy and
 *  the sync: nothing is shown as synced that is not. */
function renderBar(n: NetState = netState()): void {
  if (!bar?.isConnected) return;
  const parts: (HTMLElement | string)[] = [];
  parts.push(h("span", { class: n.online ? "net on" : "net off" }, n.online ? "Online" : "Offline"));
  if (n.error) parts.push(h("span", { class: "bad" }, t("Niet offline beschikbaar", "Not available offline")));
  else parts.push(h("span", { class: n.cached ? "ok cached" : "muted cached" }, n.cached ? t("App offline beschikbaar", "App available offline") : t("App wordt offline bewaard…", "Saving the app for offline use…")));
  const s = status;
  if (!replica) {
    parts.push(h("span", { class: "warn sync", title: replicaError }, t("Deze browser kan geen gegevens bewaren: de app werkt hier niet", "This browser cannot store data: the app does not work here")));
  } else if (s && s.user) {
    parts.push(h("span", { class: s.pending ? "warn pending" : "ok pending" }, s.pending ? t(`${s.pending} veldwijzigingen nog niet verstuurd`, `${s.pending} field changes not sent yet`) : t("Alles verstuurd", "Everything sent")));
    parts.push(h("span", { class: "muted last" }, s.lastSync ? t("Laatste sync ", "Last sync ") + when(s.lastSync) : t("Nog nooit gesynchroniseerd", "Never synced")));
    if (s.state === "syncing") parts.push(h("span", { class: "muted" }, t("Bezig met synchroniseren…", "Syncing…")));
    if (s.lastError && s.lastErrorCode !== "offline") parts.push(h("span", { class: "bad error-text", title: s.lastErrorCode }, t("Sync mislukt: ", "Sync failed: ") + s.lastError));
    if (s.rejected.length) parts.push(h("a", { class: "bad rejected", href: "#/problemen" }, t(`${s.rejected.length} wijzigingen geweigerd door de server`, `${s.rejected.length} changes refused by the server`)));
    const qRows = new Set(s.quarantined.map((p) => p.change.collection + "/" + p.change.id)).size;
    if (qRows) parts.push(h("a", { class: "bad quarantine", href: "#/problemen" }, t(`${qRows === 1 ? "1 notitie" : qRows + " notities"} in quarantaine: het gezin is niet meer van jou, de coördinator krijgt ze`, `${qRows} ${qRows === 1 ? "note" : "notes"} in quarantine: the family is no longer yours, the coordinator receives them`)));
    if (n.online && s.state !== "syncing") parts.push(h("button", { class: "link sync-now", onclick: () => void replica?.sync().catch(() => {}) }, t("Nu synchroniseren", "Sync now")));
  }
  if (n.updated) parts.push(h("button", { class: "link", onclick: () => location.reload() }, t("Nieuwe versie: herladen", "New version: reload")));
  replace(bar, parts);
  bar.title = n.version ? t("App-versie ", "App version ") + n.version : "";
}
