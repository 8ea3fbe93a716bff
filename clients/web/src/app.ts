// The application shell: the session, the role-based navigation, the
// region switch, and a hash router that renders one page at a time.
// Every navigation asks the server (GET /v1/me) whether the session still
// stands, so a revoked device or a dead session lands on the login page
// even on a page that calls nothing itself.
import { Api, ApiError, LogoutReason, SESSION_KEY, User } from "./api";
import { h, replace } from "./dom";
import { currentLang, setLang, t } from "./i18n";
import { errorBox, loading } from "./ui";

const REGION_KEY = "samenplan.region";

// errorBox lives in ui.ts now; exported here too for pages that import it from the shell.
export { errorBox };

/** Ctx is what every page gets. */
export interface Ctx {
  api: Api;
  user: User;
  /** region is the region the caller works in now (her first, or the one
   *  picked in the header); empty for an admin. */
  region: string;
  /** params are the route's :params and the hash's query string. */
  params: Record<string, string>;
  navigate(path: string): void;
  /** onLeave registers a cleanup (an event stream, a timer) run when the
   *  page is left. */
  onLeave(fn: () => void): void;
}

export type Role = User["role"];

export interface Route {
  path: string; // "/cases/:id"
  roles: Role[];
  nav?: [string, string]; // Dutch, English label in the navigation
  render(root: HTMLElement, ctx: Ctx): Promise<void> | void;
}

export class App {
  private routes: Route[] = [];
  private leave: (() => void)[] = [];
  readonly api: Api;
  private region = localStorage.getItem(REGION_KEY) ?? "";
  private seq = 0;
  private first = true;
  /** loginReason says why the login page is shown (null: a first visit);
   *  the login page tells the user. */
  loginReason: LogoutReason | null = null;

  constructor(private root: HTMLElement, private login: (root: HTMLElement, app: App) => void) {
    this.api = new Api((reason) => this.toLogin(reason));
    window.addEventListener("hashchange", () => this.render({ focus: "main" }));
    // Another tab logged out or in: follow it.
    window.addEventListener("storage", (e) => {
      if (e.key !== SESSION_KEY) return;
      if (!e.newValue && e.oldValue) this.toLogin("logout");
      else if (e.newValue && !e.oldValue && location.hash.startsWith("#/login")) this.render();
    });
    // An error no page caught still shows (never a blank page, never silence).
    window.addEventListener("unhandledrejection", (e) => this.flash(e.reason));
    document.documentElement.lang = currentLang();
  }

  add(...rs: Route[]): this {
    this.routes.push(...rs);
    return this;
  }

  navigate(path: string): void {
    if (location.hash === "#" + path) this.render({ focus: "main" });
    else location.hash = path;
  }

  /** toLogin shows the login page; after an expired session it comes back
   *  to where the user was once she logs in again. */
  toLogin(reason?: LogoutReason): void {
    this.cleanup();
    this.seq++;
    this.loginReason = reason ?? null;
    const onLogin = location.hash.startsWith("#/login");
    if (!onLogin) {
      const back = reason === "logout" ? "" : location.hash.slice(1);
      history.replaceState(null, "", "#/login" + (back && back !== "/" ? "?next=" + encodeURIComponent(back) : ""));
    }
    document.title = t("Aanmelden", "Log in") + " · Samenplan";
    this.login(this.root, this);
  }

  /** home is where a role starts. */
  home(u: User): string {
    const first = this.routes.find((r) => r.nav && r.roles.includes(u.role));
    return first ? first.path : "/";
  }

  private cleanup(): void {
    for (const fn of this.leave.splice(0)) {
      try {
        fn();
      } catch {
        // a cleanup that fails must not keep the next page from rendering
      }
    }
  }

  /** render shows the page of the current hash. opts.focus "main" moves the
   *  keyboard focus to the page (after a navigation), a selector to that
   *  element (after a re-render by a header control). */
  async render(opts: { focus?: "main" | string } = {}): Promise<void> {
    this.cleanup();
    const seq = ++this.seq;
    const s = this.api.session();
    const [path, query] = (location.hash.slice(1) || "/").split("?");
    if (!s || path === "/login") {
      if (s && path === "/login") return this.navigate(this.home(s.user));
      return this.toLogin(s ? undefined : this.first ? undefined : "expired");
    }
    const first = this.first;
    this.first = false;
    const user = s.user;
    if (!this.region || !user.regions.includes(this.region)) this.region = user.regions[0] ?? "";
    this.verify(seq, user);
    let match: { route: Route; params: Record<string, string> } | null = null;
    for (const r of this.routes) {
      const p = matchPath(r.path, path);
      if (p) {
        match = { route: r, params: p };
        break;
      }
    }
    if (path === "/" || (!match && path === "")) return this.navigate(this.home(user));
    const main = h("main", { id: "main", tabindex: "-1" });
    const skip = h("a", { class: "skip", href: "#main", onclick: (e: Event) => { e.preventDefault(); main.focus(); } },
      t("Naar de inhoud", "Skip to main content"));
    replace(this.root, skip, this.header(user, match?.route ?? null, path), h("div", { id: "flash" }), main);
    const navRoute = match ? this.navRouteOf(match.route.path) : null;
    document.title = (navRoute?.nav ? t(navRoute.nav[0], navRoute.nav[1]) + " · " : "") + "Samenplan";
    const focus = () => {
      if (opts.focus === "main" && !first) main.focus({ preventScroll: false });
      else if (opts.focus && opts.focus !== "main") (this.root.querySelector(opts.focus) as HTMLElement | null)?.focus();
    };
    if (!match) {
      replace(main, h("section", { class: "error", role: "alert" }, h("h1", null, t("Niet gevonden", "Not found")),
        h("p", null, t("Deze pagina bestaat niet.", "This page does not exist.")),
        h("p", null, h("a", { href: "#" + this.home(user) }, t("Naar het begin", "Go to the start")))));
      focus();
      return;
    }
    if (!match.route.roles.includes(user.role)) {
      replace(main, h("section", { class: "error no-access", role: "alert" }, h("h1", null, t("Geen toegang", "No access")),
        h("p", null, t("Deze pagina is niet voor jouw rol.", "This page is not for your role.")),
        h("p", null, h("a", { href: "#" + this.home(user) }, t("Naar het begin", "Go to the start")))));
      focus();
      return;
    }
    const ctx: Ctx = {
      api: this.api, user, region: this.region, params: { ...Object.fromEntries(new URLSearchParams(query ?? "")), ...match.params },
      navigate: (p) => this.navigate(p),
      onLeave: (fn) => this.leave.push(fn),
    };
    replace(main, loading());
    main.setAttribute("aria-busy", "true");
    focus();
    try {
      await match.route.render(main, ctx);
    } catch (err) {
      if (seq === this.seq) {
        replace(main, errorBox(err),
          h("p", null, h("button", { type: "button", class: "retry", onclick: () => this.render({ focus: "main" }) }, t("Opnieuw proberen", "Try again"))));
      }
    } finally {
      main.removeAttribute("aria-busy");
    }
  }

  /** verify asks the server whether the session still stands (a revoked
   *  device or a session expired elsewhere goes to login, by the Api) and
   *  follows changes to the account (role, regions, name). */
  private verify(seq: number, user: User): void {
    this.api.me().then((me) => {
      const fresh: User = { id: me.id, username: me.username, display_name: me.display_name, role: me.role, regions: me.regions ?? [] };
      if (JSON.stringify(fresh) === JSON.stringify({ id: user.id, username: user.username, display_name: user.display_name, role: user.role, regions: user.regions })) return;
      this.api.setUser(fresh);
      if (seq === this.seq) this.render();
    }, () => {
      // 401: the Api has gone to login already; offline or 5xx: the page shows its own error
    });
  }

  /** flash shows an error outside a page (a failed action nobody caught). */
  private flash(err: unknown): void {
    if (err instanceof ApiError && err.status === 401) return; // on its way to login
    const slot = document.getElementById("flash");
    if (!slot) return;
    const close = h("button", { type: "button", class: "link", onclick: () => replace(slot) }, t("Sluiten", "Close"));
    replace(slot, h("div", { class: "flash" }, errorBox(err), close));
  }

  /** navRouteOf is the navigation entry a path belongs to: "/cases/:id"
   *  belongs to "/cases". */
  private navRouteOf(path: string): Route | null {
    return this.routes.find((r) => r.nav && (r.path === path || path.startsWith(r.path + "/"))) ?? null;
  }

  private header(user: User, current: Route | null, path: string): HTMLElement {
    const active = current ? this.navRouteOf(current.path) : this.navRouteOf(path);
    const links = this.routes
      .filter((r) => r.nav && r.roles.includes(user.role))
      .map((r) => h("a", { href: "#" + r.path, class: r === active ? "active" : null, "aria-current": r === active ? "page" : null },
        t(r.nav![0], r.nav![1])));
    const regionPick = user.regions.length > 1
      ? h("select", {
        id: "region-pick", "aria-label": t("Regio", "Region"), onchange: (e: Event) => {
          this.region = (e.target as HTMLSelectElement).value;
          localStorage.setItem(REGION_KEY, this.region);
          this.render({ focus: "#region-pick" });
        },
      }, user.regions.map((r) => h("option", { value: r, selected: r === this.region ? true : null }, r)))
      : this.region ? h("span", { class: "region", title: t("Regio", "Region") }, this.region) : null;
    const logout = h("button", { type: "button", id: "logout" }, t("Afmelden", "Log out"));
    logout.addEventListener("click", () => {
      logout.disabled = true;
      void this.api.logout();
    });
    return h("header", { class: "top" },
      h("a", { class: "brand", href: "#/" }, "Samenplan"),
      links.length ? h("nav", { "aria-label": t("Hoofdmenu", "Main menu") }, links) : null,
      h("div", { class: "who" },
        regionPick,
        h("span", { class: "user", title: user.username }, user.display_name || user.username,
          (user.display_name || "").toLowerCase() === roleName(user.role).toLowerCase() ? null : [" · ", roleName(user.role)]),
        h("button", {
          type: "button", class: "link", id: "lang", lang: currentLang() === "nl" ? "en" : "nl",
          onclick: () => { setLang(currentLang() === "nl" ? "en" : "nl"); this.render({ focus: "#lang" }); },
        }, currentLang() === "nl" ? "English" : "Nederlands"),
        logout));
  }
}

export function roleName(r: Role): string {
  switch (r) {
    case "coach": return t("coach", "coach");
    case "coordinator": return t("coördinator", "coordinator");
    case "reviewer": return t("reviewer", "reviewer");
    case "admin": return t("beheerder", "admin");
  }
}

function matchPath(pattern: string, path: string): Record<string, string> | null {
  const a = pattern.split("/"), b = path.split("/");
  if (a.length !== b.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(":")) out[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return null;
  }
  return out;
}
