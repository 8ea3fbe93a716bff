// Dutch first, English beside it: every text the coach reads is given in both
// languages; the language switch (stored per browser, shared with the web
// client on the same origin) picks one.
export type Lang = "nl" | "en";

const KEY = "samenplan.lang";
let lang: Lang = readLang();

function readLang(): Lang {
  try {
    return localStorage.getItem(KEY) === "en" ? "en" : "nl";
  } catch {
    return "nl";
  }
}

export function currentLang(): Lang {
  return lang;
}

export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}

/** t returns the text in the current language. */
export function t(nl: string, en: string): string {
  return lang === "en" ? en : nl;
}

/** when formats an instant (ms since the epoch) for the coach: "vandaag 14:05"
 *  or "3 nov. 14:05" in Europe/Brussels. */
export function when(ms: number): string {
  const d = new Date(ms);
  const locale = lang === "en" ? "en-GB" : "nl-BE";
  const time = d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", timeZone: "Europe/Brussels" });
  const day = (x: Date) => x.toLocaleDateString("en-CA", { timeZone: "Europe/Brussels" });
  if (day(d) === day(new Date())) return t("vandaag ", "today ") + time;
  return d.toLocaleDateString(locale, { day: "numeric", month: "short", timeZone: "Europe/Brussels" }) + " " + time;
}
