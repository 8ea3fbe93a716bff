// The application shell: the session, the role-based navigation, the
// region switch, and a hash router that renders one page at a time.
import { Api, User } from "./api";
import { h, replace } from "./dom";
import { currentLang, setLang, t } from "./i18n";
import { errorBox } from "./ui";

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
  private region = "";

  constructor(private root: HTMLElement, private login: (root: HTMLElement, app: App) => void) {
    this.api = new Api(() => this.toLogin());
    window.addEventListener("hashchange", () => this.render());
  }

  add(...rs: Route[]): this {
    this.routes.push(...rs);
    return this;
  }

  navigate(path: string): void {
    if (location.hash === "#" + path) this.render();
    else location.hash = path;
  }

  toLogin(): void {
    this.cleanup();
    const back = location.hash.startsWith("#/login") ? "" : location.hash.slice(1);
    if (!location.hash.startsWith("#/login")) history.replaceState(null, "", "#/login" + (back ? "?next=" + encodeURIComponent(back) : ""));
    this.login(this.root, this);
  }

  /** home is where a role starts. */
  home(u: User): string {
    const first = this.routes.find((r) => r.nav && r.roles.includes(u.role));
    return first ? first.path : "/";
  }

  private cleanup(): void {
    for (const fn of this.leave.splice(0)) fn();
  }

  async render(): Promise<void> {
    this.cleanup();
    const s = this.api.session();
    const [path, query] = (location.hash.slice(1) || "/").split("?");
    if (!s || path === "/login") {
      if (s && path === "/login") return this.navigate(this.home(s.user));
      return this.toLogin();
    }
    const user = s.user;
    if (!this.region || !user.regions.includes(this.region)) this.region = user.regions[0] ?? "";
    let match: { route: Route; params: Record<string, string> } | null = null;
    for (const r of this.routes) {
      const p = matchPath(r.path, path);
      if (p) {
        match = { route: r, params: p };
        break;
      }
    }
    if (!match || path === "/") return this.navigate(this.home(user));
    const params = { ...Object.fromEntries(new URLSearchParams(query ?? "")), ...match.params };
    const main = h("main", { id: "main", tabindex: "-1" });
    replace(this.root, this.header(user, match.route), main);
    if (!match.route.roles.includes(user.role)) {
      replace(main, h("section", { class: "error", role: "alert" }, h("h1", null, t("Geen toegang", "No access")),
        h("p", null, t("Deze pagina is niet voor jouw rol.", "This page is not for your role."))));
      return;
    }
    const ctx: Ctx = {
      api: this.api, user, region: this.region, params,
      navigate: (p) => this.navigate(p),
      onLeave: (fn) => this.leave.push(fn),
    };
    replace(main, h("p", { class: "loading", role: "status" }, t("Laden…", "Loading…")));
    try {
      await match.route.render(main, ctx);
    } catch (err) {
      replace(main, errorBox(err));
    }
  }

  private header(user: User, current: Route): HTMLElement {
    const links = this.routes
      .filter((r) => r.nav && r.roles.includes(user.role))
      .map((r) => h("a", { href: "#" + r.path, class: r === current ? "active" : null, "aria-current": r === current ? "page" : null },
        t(r.nav![0], r.nav![1])));
    const regionPick = user.regions.length > 1
      ? h("select", { "aria-label": t("Regio", "Region"), onchange: (e: Event) => { this.region = (e.target as HTMLSelectElement).value; this.render(); } },
        user.regions.map((r) => h("option", { value: r, selected: r === this.region ? true : null }, r)))
      : this.region ? h("span", { class: "region" }, this.region) : null;
    return h("header", { class: "top" },
      h("a", { class: "brand", href: "#/" }, "Samenplan"),
      h("nav", { "aria-label": t("Hoofdmenu", "Main menu") }, links),
      h("div", { class: "who" },
        regionPick,
        h("span", { class: "user", title: user.role }, user.display_name || user.username, " · ", roleName(user.role)),
        h("button", { type: "button", class: "link", onclick: () => { setLang(currentLang() === "nl" ? "en" : "nl"); this.render(); } },
          currentLang() === "nl" ? "English" : "Nederlands"),
        h("button", { type: "button", id: "logout", onclick: () => this.api.logout() }, t("Afmelden", "Log out"))));
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
