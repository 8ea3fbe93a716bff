// The coach's session on this device. Until the sync SDK (../sdk) is wired in,
// the app logs in itself with POST /v1/auth/login and keeps the answer in
// localStorage, so a reload without a network still knows who she is. The
// SDK's login (token refresh, device_revoked → wipe) replaces this module.
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

/** LoginError is a failed login, with a message for the coach. */
export class LoginError extends Error {
  constructor(
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY = "samenplan.coach.session";

/** current returns the stored session, or null. */
export function current(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? "null") as Session | null;
    return s && s.access_token && s.user ? s : null;
  } catch {
    return null;
  }
}

/** login signs the coach in as a new device of hers; only coaches use this
 *  app (the others are sent to the web client, and their device is revoked
 *  again). Throws LoginError. */
export async function login(username: string, password: string): Promise<Session> {
  if (!navigator.onLine) throw offline();
  let res: Response;
  try {
    res = await fetch("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password, device_name: deviceName() }),
    });
  } catch {
    throw offline();
  }
  const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  if (!res.ok) {
    if (res.status === 401) throw new LoginError("unauthorized", t("Gebruikersnaam of wachtwoord klopt niet.", "Username or password is wrong."));
    throw new LoginError(String(body?.code ?? "http_" + res.status), String(body?.message ?? res.statusText));
  }
  const x = body as unknown as { access_token: string; refresh_token: string; device_id: string; expires_in: number; user: User };
  const s: Session = { access_token: x.access_token, refresh_token: x.refresh_token, device_id: x.device_id, expires_at: Date.now() + x.expires_in * 1000, user: x.user };
  if (s.user.role !== "coach") {
    await revoke(s).catch(() => {});
    throw new LoginError("not_a_coach", t("Deze app is voor coaches. Gebruik de webtoepassing op ", "This app is for coaches. Use the web client at ") + location.origin + "/");
  }
  localStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

/** logout ends the session: on the server when it can be reached (the
 *  device is revoked, its tokens are useless afterwards), always here. */
export async function logout(): Promise<void> {
  const s = current();
  localStorage.removeItem(KEY);
  if (s && navigator.onLine) await revoke(s).catch(() => {});
}

function revoke(s: Session): Promise<Response> {
  return fetch("/v1/auth/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + s.access_token },
    body: JSON.stringify({ refresh_token: s.refresh_token, revoke_device: true }),
  });
}

function offline(): LoginError {
  return new LoginError(
    "network",
    t("Geen verbinding met de server. Aanmelden kan alleen online; daarna werkt de app ook zonder netwerk.", "No connection to the server. Logging in needs a network; after that the app works offline too."),
  );
}

/** deviceName names this phone or laptop for the device list: "Coach-app: Chrome op Android". */
export function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return "Coach-app: " + browser + (os ? t(" op ", " on ") + os : "");
}
