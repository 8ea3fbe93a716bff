// The HTTP API of docs/api.md: a session kept in localStorage (it survives
// a reload), the access token refreshed shortly before it expires and once
// on a 401, and every error turned into an ApiError with the server's
// stable code (status 0, code "network": the server could not be reached).
import { t } from "./i18n";

export interface User {
  id: string;
  username: string;
  display_name: string;
  role: "coach" | "coordinator" | "reviewer" | "admin";
  regions: string[];
}

export interface Session {
  access_token: string;
  refresh_token: string;
  device_id: string;
  expires_at: number; // ms since the epoch
  user: User;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body: unknown,
  ) {
    super(message);
  }
}

/** SESSION_KEY is the localStorage key of the session. */
export const SESSION_KEY = "samenplan.session";
const KEY = SESSION_KEY;

/** LogoutReason says why a session ended: the user logged out, or the
 *  server no longer accepts it (expired, revoked device, bad tokens). */
export type LogoutReason = "logout" | "expired";

export class Api {
  private refreshing: Promise<boolean> | null = null;

  /** onLoggedOut runs when the session ends (expired, revoked, logout). */
  constructor(private onLoggedOut: (reason: LogoutReason) => void) {}

  session(): Session | null {
    try {
      const s = JSON.parse(localStorage.getItem(KEY) ?? "null") as Session | null;
      return s && s.access_token && s.user ? s : null;
    } catch {
      return null;
    }
  }

  private save(s: Session | null): void {
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
  }

  async login(username: string, password: string): Promise<Session> {
    const r = await this.send("POST", "/v1/auth/login", { username, password, device_name: deviceName() }, false);
    const s = toSession(r);
    this.save(s);
    return s;
  }

  /** logout ends the session on the server and revokes this browser's
   *  device (its tokens are useless afterwards), then locally. */
  async logout(): Promise<void> {
    const s = this.session();
    if (s) {
      try {
        await this.send("POST", "/v1/auth/logout", { refresh_token: s.refresh_token, revoke_device: true }, false);
      } catch {
        // the session is gone locally either way
      }
    }
    this.save(null);
    this.onLoggedOut("logout");
  }

  /** me asks the server who the session belongs to; a revoked device or
   *  an expired session ends the session (onLoggedOut) and throws. */
  me(): Promise<User & { device_id: string }> {
    return this.get("/v1/me");
  }

  /** setUser keeps a fresher copy of the user (from me()) in the session. */
  setUser(u: User): void {
    const s = this.session();
    if (s) this.save({ ...s, user: { id: u.id, username: u.username, display_name: u.display_name, role: u.role, regions: u.regions ?? [] } });
  }

  get<T>(path: string): Promise<T> {
    return this.send("GET", path) as Promise<T>;
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.send("POST", path, body) as Promise<T>;
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.send("PUT", path, body) as Promise<T>;
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.send("PATCH", path, body) as Promise<T>;
  }
  del<T>(path: string): Promise<T> {
    return this.send("DELETE", path) as Promise<T>;
  }
  /** text fetches a non-JSON answer (CSV, YAML) with the session's token. */
  async text(path: string, accept = "text/plain"): Promise<string> {
    const res = await this.fetch("GET", path, undefined, true, accept);
    return res.text();
  }
  /** token returns a valid access token (refreshing it when it is about
   *  to expire), for EventSource-like clients that cannot use send. */
  async token(): Promise<string> {
    let s = this.session();
    if (s && s.expires_at - Date.now() < 30_000) {
      await this.refresh();
      s = this.session();
    }
    if (!s) throw new ApiError(401, "unauthorized", "not logged in", null);
    return s.access_token;
  }

  private async send(method: string, path: string, body?: unknown, auth = true): Promise<unknown> {
    const res = await this.fetch(method, path, body, auth);
    if (res.status === 204) return null;
    const type = res.headers.get("Content-Type") ?? "";
    return type.includes("json") ? res.json() : res.text();
  }

  private async fetch(method: string, path: string, body: unknown, auth: boolean, accept = "application/json"): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: accept };
      if (body !== undefined) headers["Content-Type"] = typeof body === "string" ? "application/yaml" : "application/json";
      let s = auth ? this.session() : null;
      if (auth && !s) {
        this.onLoggedOut("expired");
        throw new ApiError(401, "unauthorized", "not logged in", null);
      }
      if (s && attempt === 0 && s.expires_at - Date.now() < 30_000 && (await this.refresh())) s = this.session();
      if (s) headers.Authorization = "Bearer " + s.access_token;
      let res: Response;
      try {
        res = await fetch(path, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
      } catch {
        throw new ApiError(0, "network", t("Geen verbinding met de server.", "No connection to the server."), null);
      }
      if (res.ok) return res;
      if (res.status === 401 && auth && attempt === 0 && (await this.refresh())) continue;
      let payload: { code?: string; message?: string } | null = null;
      try {
        payload = await res.json();
      } catch {
        payload = null;
      }
      if (res.status === 401 && auth) {
        this.save(null);
        this.onLoggedOut("expired");
      }
      throw new ApiError(res.status, payload?.code ?? "http_" + res.status, payload?.message ?? res.statusText, payload);
    }
  }

  /** refresh rotates the refresh token; false ends the session. A refresh
   *  token works once (reuse revokes the device), so tabs of one browser
   *  take turns (Web Locks) and a tab that finds the token already rotated
   *  by another uses the new session instead of refreshing again. */
  private refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    const before = this.session()?.refresh_token;
    const run = async (): Promise<boolean> => {
      const s = this.session();
      if (!s) return false;
      if (s.refresh_token !== before && s.expires_at - Date.now() > 30_000) return true; // another tab did it
      let res: Response;
      try {
        res = await fetch("/v1/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: s.refresh_token }),
        });
      } catch {
        return false; // offline: keep the session, the caller sees the error
      }
      if (!res.ok) {
        if (res.status === 401 || res.status === 400) this.save(null);
        return false;
      }
      this.save(toSession(await res.json()));
      return true;
    };
    const turn: Promise<boolean> = navigator.locks ? (navigator.locks.request("samenplan.refresh", run) as unknown as Promise<boolean>) : run();
    const done = turn.finally(() => {
      this.refreshing = null;
    });
    this.refreshing = done;
    return done;
  }
}

/** deviceName names this browser for the device list: "Web: Chrome op Linux". */
function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return "Web: " + browser + (os ? t(" op ", " on ") + os : "");
}

function toSession(r: unknown): Session {
  const x = r as { access_token: string; refresh_token: string; device_id: string; expires_in: number; user: User };
  return { access_token: x.access_token, refresh_token: x.refresh_token, device_id: x.device_id, expires_at: Date.now() + x.expires_in * 1000, user: x.user };
}
