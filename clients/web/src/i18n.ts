// Dutch first, English beside it: every text the user reads is given in
// both languages; the language switch (stored per browser) picks one.
export type Lang = "nl" | "en";

const KEY = "samenplan.lang";
let lang: Lang = (localStorage.getItem(KEY) as Lang) === "en" ? "en" : "nl";

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

/** label picks the label of a rule or config term (label / label_en). */
export function label(x: { label?: string; label_en?: string }): string {
  return (lang === "en" && x.label_en) || x.label || x.label_en || "";
}
