// The login page: username and password of an account; a new device per
// login (docs/api.md). After an expired or revoked session it says so and
// returns to the page the user was on.
import type { App } from "../app";
import { ApiError } from "../api";
import { h, replace } from "../dom";
import { currentLang, setLang, t } from "../i18n";
import { notice } from "../ui";

export function renderLogin(root: HTMLElement, app: App): void {
  const user = h("input", { id: "username", name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const msg = h("p", { class: "form-error", role: "alert", id: "login-error" });
  const submit = h("button", { type: "submit", class: "primary" }, t("Aanmelden", "Log in"));
  const why = app.loginReason === "expired"
    ? notice("warn", t("Je sessie is verlopen of ingetrokken. Meld je opnieuw aan.", "Your session expired or was revoked. Please log in again."))
    : app.loginReason === "logout"
      ? notice("ok", t("Je bent afgemeld.", "You are logged out."))
      : null;
  const form = h("form", { class: "login", "aria-labelledby": "login-title", onsubmit: async (e: Event) => {
    e.preventDefault();
    msg.textContent = "";
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    submit.textContent = t("Bezig met aanmelden…", "Logging in…");
    try {
      const s = await app.api.login(user.value.trim(), pass.value);
      app.loginReason = null;
      const next = new URLSearchParams(location.hash.split("?")[1] ?? "").get("next");
      app.navigate(next && next.startsWith("/") && !next.startsWith("/login") ? next : app.home(s.user));
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.status === 401
        ? t("Gebruikersnaam of wachtwoord klopt niet.", "Wrong username or password.")
        : err instanceof ApiError && err.status === 429
          ? t("Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.", "Too many failed attempts. Try again in a quarter of an hour.")
          : err instanceof ApiError ? err.message : String(err);
      pass.select();
      pass.focus();
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
      submit.textContent = t("Aanmelden", "Log in");
    }
  } },
    h("h1", { id: "login-title" }, "Samenplan"),
    h("p", { class: "tagline" }, t("Aanmelden voor coördinatoren, reviewers en beheerders", "Log in for coordinators, reviewers and admins")),
    why,
    h("label", { for: "username" }, t("Gebruikersnaam", "Username")), user,
    h("label", { for: "password" }, t("Wachtwoord", "Password")), pass,
    msg,
    submit,
    h("button", {
      type: "button", class: "link lang", lang: currentLang() === "nl" ? "en" : "nl",
      onclick: () => { setLang(currentLang() === "nl" ? "en" : "nl"); renderLogin(root, app); },
    }, currentLang() === "nl" ? "English" : "Nederlands"));
  replace(root, h("main", { class: "login-page", id: "main" }, form));
  user.focus();
}
