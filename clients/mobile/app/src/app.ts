// The coach app's shell: a header, the sync status bar, and the page of the
// hash route (#/login, #/ my families). The page contract is the web
// client's: <main> is aria-busy while a page loads.
import { h, replace } from "./dom";
import { currentLang, setLang, t, when } from "./i18n";
import { netState, onNetState, type NetState } from "./offline";
import { current, login, LoginError, logout, type Session } from "./session";

/** SyncStatus is what the status bar tells of the local store's sync. It is
 *  filled by the sync SDK once it is wired in; until then `wired` is false
 *  and the bar says so instead of pretending all is synced. */
export interface SyncStatus {
  wired: boolean;
  syncing: boolean;
  pending: number; // local changes not yet accepted by the server
  lastSyncAt: number | null; // ms since the epoch
  error: string; // the last sync's failure, "" when it succeeded
  quarantined: number; // notes the server put in quarantine (family no longer hers)
}

const sync: SyncStatus = { wired: false, syncing: false, pending: 0, lastSyncAt: null, error: "", quarantined: 0 };

let root: HTMLElement;
let main: HTMLElement;
let bar: HTMLElement;

export function start(el: HTMLElement): void {
  root = el;
  document.documentElement.lang = currentLang();
  addEventListener("hashchange", () => void route());
  void route();
}

async function route(): Promise<void> {
  const session = current();
  const path = location.hash.replace(/^#/, "") || "/";
  if (!session) {
    if (path !== "/login") {
      location.replace("#/login");
      return;
    }
    renderLogin();
    return;
  }
  if (path === "/login") {
    location.replace("#/");
    return;
  }
  renderShell(session);
  main.setAttribute("aria-busy", "true");
  try {
    renderFamilies();
  } finally {
    main.removeAttribute("aria-busy");
  }
}

function renderLogin(): void {
  const err = h("p", { class: "form-error", role: "alert" });
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
          await login(user.value.trim(), pass.value);
          location.replace("#/");
        } catch (e) {
          err.textContent = e instanceof LoginError ? e.message : String(e);
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
  onNetState(renderBar);
  user.focus();
}

function renderShell(s: Session): void {
  bar = h("div", { class: "syncbar", role: "status", "aria-live": "polite" });
  main = h("main", { id: "main", tabindex: "-1" });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/" }, t("Samenplan coach", "Samenplan coach")),
    h(
      "div",
      { class: "who" },
      h("span", { class: "user", title: s.user.username }, s.user.display_name || s.user.username),
      langButton(),
      h(
        "button",
        {
          class: "link",
          onclick: async () => {
            if (sync.pending > 0 && !confirm(t(`${sync.pending} wijzigingen zijn nog niet gesynchroniseerd en gaan verloren. Toch afmelden?`, `${sync.pending} changes are not synced yet and will be lost. Log out anyway?`))) return;
            await logout();
            location.replace("#/login");
            void route();
          },
        },
        t("Afmelden", "Log out"),
      ),
    ),
  );
  replace(root, header, bar, main);
  onNetState(renderBar);
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
        void route();
      },
    },
    currentLang() === "nl" ? "English" : "Nederlands",
  );
}

/** renderBar tells the truth about the network, the app's offline copy and
 *  the sync: nothing shown as synced that is not. */
function renderBar(n: NetState = netState()): void {
  if (!bar?.isConnected) return;
  const parts: (HTMLElement | string)[] = [];
  parts.push(h("span", { class: n.online ? "net on" : "net off" }, n.online ? t("Online", "Online") : t("Offline", "Offline")));
  if (n.error) parts.push(h("span", { class: "bad" }, t("Niet offline beschikbaar", "Not available offline")));
  else parts.push(h("span", { class: n.cached ? "ok cached" : "muted cached" }, n.cached ? t("App offline beschikbaar", "App available offline") : t("App wordt offline bewaard…", "Saving the app for offline use…")));
  if (!sync.wired) {
    parts.push(h("span", { class: "muted sync" }, t("Synchronisatie nog niet aangesloten", "Sync not wired in yet")));
  } else {
    parts.push(h("span", { class: sync.pending ? "warn pending" : "ok pending" }, sync.pending ? t(`${sync.pending} wijzigingen wachten`, `${sync.pending} changes waiting`) : t("Alles verstuurd", "Everything sent")));
    parts.push(h("span", { class: "muted last" }, sync.lastSyncAt ? t("Laatste sync ", "Last sync ") + when(sync.lastSyncAt) : t("Nog nooit gesynchroniseerd", "Never synced")));
    if (sync.syncing) parts.push(h("span", { class: "muted" }, t("Bezig…", "Syncing…")));
    if (sync.error) parts.push(h("span", { class: "bad error-text" }, sync.error));
    if (sync.quarantined) parts.push(h("span", { class: "bad quarantine" }, t(`${sync.quarantined} notities in quarantaine (gezin niet meer van jou; de coördinator krijgt ze)`, `${sync.quarantined} notes in quarantine (family no longer yours; the coordinator receives them)`)));
  }
  if (n.updated) parts.push(h("button", { class: "link", onclick: () => location.reload() }, t("Nieuwe versie: herladen", "New version: reload")));
  replace(bar, parts);
  bar.title = n.version ? t("App-versie ", "App version ") + n.version : "";
}

function renderFamilies(): void {
  replace(
    main,
    h("h1", null, t("Mijn gezinnen", "My families")),
    h("p", { class: "notice" }, t("Je gezinnen verschijnen hier zodra de synchronisatie aangesloten is.", "Your families will appear here once sync is wired in.")),
  );
}
