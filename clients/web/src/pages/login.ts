import type { App } from "../app";
import { ApiError } from "../api";
import { h, replace } from "../dom";
import { t } from "../i18n";

export function renderLogin(root: HTMLElement, app: App): void {
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const msg = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { class: "login", onsubmit: async (e: Event) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      const s = await app.api.login(user.value.trim(), pass.value);
      const next = new URLSearchParams(location.hash.split("?")[1] ?? "").get("next");
      app.navigate(next && !next.startsWith("/login") ? next : app.home(s.user));
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.status === 401
        ? t("Gebruikersnaam of wachtwoord klopt niet.", "Wrong username or password.")
        : err instanceof ApiError ? err.message : String(err);
    }
  } },
    h("h1", null, "Samenplan"),
    h("label", { for: "username" }, t("Gebruikersnaam", "Username")), user,
    h("label", { for: "password" }, t("Wachtwoord", "Password")), pass,
    msg,
    h("button", { type: "submit" }, t("Aanmelden", "Log in")));
  replace(root, h("main", { class: "login-page" }, form));
  user.focus();
}
