// Shared pieces of every page: tables that paginate, loading / notice / error
// states, confirm and reason dialogs, badges, form fields, and dates and
// numbers in nl-BE or en-GB. Labels passed in are already translated (t()).
//
// This API is stable: pages of several engineers use it. Add, do not change.
import { ApiError } from "./api";
import { Child, h, replace } from "./dom";
import { currentLang, t } from "./i18n";

export type { Child } from "./dom";

// ---- Tables ----------------------------------------------------------------

/** Column is one column of a table. */
export interface Column<T> {
  /** label is the header text. */
  label: string;
  /** cell renders the row's cell. */
  cell: (row: T) => Child;
  /** class goes on the th and every td: "num" right-aligns numbers. */
  class?: string;
}

/** Page is the window of a paginated list: total rows, page size and offset;
 *  onPage is called with the offset of the page the user asks for. */
export interface Page {
  total: number;
  limit: number;
  offset: number;
  onPage(offset: number): void;
}

export interface TableOpts<T> {
  columns: Column<T>[];
  /** rows are the rows of this page (not the whole list, for table()). */
  rows: T[];
  /** caption names the table for screen readers (and shows it when
   *  captionVisible). */
  caption?: string;
  captionVisible?: boolean;
  /** empty is shown instead of the table when there are no rows. */
  empty?: string;
  /** rowProps gives attributes of a row's tr (class, data-*, …). */
  rowProps?: (row: T) => Record<string, unknown>;
  /** page adds a pager under the table (server-side pagination). */
  page?: Page;
}

/** table renders rows in a table, with a pager under it when opts.page is
 *  given. The wrapper scrolls sideways on narrow screens. */
export function table<T>(opts: TableOpts<T>): HTMLElement {
  const wrap = h("div", { class: "table-block" });
  if (opts.rows.length === 0) {
    replace(wrap, opts.caption && opts.captionVisible ? h("h3", { class: "caption" }, opts.caption) : null,
      notice("info", opts.empty ?? t("Niets te tonen.", "Nothing to show.")));
    if (opts.page && opts.page.offset > 0) wrap.append(pager(opts.page));
    return wrap;
  }
  const tbl = h("table", null,
    opts.caption ? h("caption", { class: opts.captionVisible ? null : "sr-only" }, opts.caption) : null,
    h("thead", null, h("tr", null, opts.columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
    h("tbody", null, opts.rows.map((r) =>
      h("tr", opts.rowProps ? opts.rowProps(r) : null, opts.columns.map((c) => h("td", { class: c.class }, c.cell(r)))))));
  wrap.append(h("div", { class: "table-scroll" }, tbl));
  if (opts.page) wrap.append(pager(opts.page));
  return wrap;
}

/** localTable paginates a whole list in the browser: it shows limit rows
 *  (50 by default) and re-renders itself on prev/next. */
export function localTable<T>(opts: Omit<TableOpts<T>, "page"> & { limit?: number; offset?: number }): HTMLElement {
  const limit = opts.limit ?? 50;
  const holder = h("div", { class: "local-table" });
  const show = (offset: number, focusPager: boolean) => {
    const el = table({
      ...opts,
      rows: opts.rows.slice(offset, offset + limit),
      page: opts.rows.length > limit ? { total: opts.rows.length, limit, offset, onPage: (o) => show(o, true) } : undefined,
    });
    replace(holder, el);
    if (focusPager) (holder.querySelector(".pager button:not([disabled])") as HTMLElement | null)?.focus();
  };
  show(Math.max(0, opts.offset ?? 0), false);
  return holder;
}

/** pager is the prev/next navigation of a paginated list: "1–50 van 230". */
export function pager(p: Page): HTMLElement {
  const from = p.total === 0 ? 0 : p.offset + 1;
  const to = Math.min(p.offset + p.limit, p.total);
  const prev = Math.max(0, p.offset - p.limit);
  const next = p.offset + p.limit;
  return h("nav", { class: "pager", "aria-label": t("Paginering", "Pagination") },
    h("button", { type: "button", class: "prev", "aria-label": t("Vorige pagina", "Previous page"), disabled: p.offset <= 0,
      onclick: () => p.onPage(prev) }, "‹ ", t("Vorige", "Previous")),
    h("span", { class: "range", "aria-live": "polite" },
      t(`${fmtNumber(from)}–${fmtNumber(to)} van ${fmtNumber(p.total)}`, `${fmtNumber(from)}–${fmtNumber(to)} of ${fmtNumber(p.total)}`)),
    h("button", { type: "button", class: "next", "aria-label": t("Volgende pagina", "Next page"), disabled: next >= p.total,
      onclick: () => p.onPage(next) }, t("Volgende", "Next"), " ›"));
}

// ---- States ----------------------------------------------------------------

/** loading is the "Laden…" line a page or a part of it shows while it waits. */
export function loading(text?: string): HTMLElement {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text ?? t("Laden…", "Loading…"));
}

export type NoticeKind = "info" | "ok" | "warn" | "error";

/** notice is a one-line message: info and ok are role=status, warn and
 *  error role=alert. */
export function notice(kind: NoticeKind, ...text: Child[]): HTMLElement {
  return h("p", { class: "notice " + kind, role: kind === "warn" || kind === "error" ? "alert" : "status" }, text);
}

/** errorBox shows an error the way every page does: never a blank page.
 *  A 403 reads as "no access", a 404 as "not found". */
export function errorBox(err: unknown): HTMLElement {
  const e = err instanceof ApiError ? err : null;
  const offline = e?.status === 0;
  const title = e?.status === 403 ? t("Geen toegang", "No access")
    : e?.status === 404 ? t("Niet gevonden", "Not found")
      : offline ? t("Geen verbinding met de server", "No connection to the server")
        : t("Er ging iets mis", "Something went wrong");
  const text = offline ? t("Controleer de verbinding en probeer het opnieuw.", "Check the connection and try again.")
    : e ? e.message : err instanceof Error ? err.message : String(err);
  return h("section", { class: "error", role: "alert" },
    h("h2", null, title),
    h("p", null, text),
    e && !offline ? h("p", { class: "code" }, e.code) : null);
}

/** loadInto shows loading() in el, awaits fetch, then puts render(data) in
 *  el; a failure puts errorBox(err) there instead. It never throws. */
export async function loadInto<T>(el: HTMLElement, fetch: () => Promise<T>, render: (data: T) => Child): Promise<void> {
  el.setAttribute("aria-busy", "true");
  replace(el, loading());
  try {
    const data = await fetch();
    replace(el, render(data));
  } catch (err) {
    replace(el, errorBox(err));
  } finally {
    el.removeAttribute("aria-busy");
  }
}

/** busy disables button while action runs (one click, one request) and
 *  puts an error it throws into errorEl (or alerts a notice after the
 *  button). Resolves to the action's result, or undefined on failure. */
export async function busy<T>(button: HTMLButtonElement, action: () => Promise<T>, errorEl?: HTMLElement): Promise<T | undefined> {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (errorEl) replace(errorEl);
  try {
    return await action();
  } catch (err) {
    const box = errorBox(err);
    if (errorEl) replace(errorEl, box);
    else button.insertAdjacentElement("afterend", box);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** badge is a small label: a status, a role, a count. */
export function badge(text: Child, kind: NoticeKind | "muted" = "muted"): HTMLElement {
  return h("span", { class: "badge " + kind }, text);
}

// ---- Forms -----------------------------------------------------------------

let fieldSeq = 0;

/** field wraps a control with its label (and an optional hint), giving the
 *  control an id when it has none. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  if (!control.id) control.id = "f" + ++fieldSeq;
  const hintEl = hint ? h("small", { class: "hint", id: control.id + "-hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

// ---- Dialogs ---------------------------------------------------------------

export interface ConfirmOpts {
  title: string;
  message?: Child;
  /** confirm is the label of the button that says yes ("Intrekken"). */
  confirm: string;
  cancel?: string;
  /** danger paints the confirm button red. */
  danger?: boolean;
}

/** confirmDialog asks a yes/no question in a modal dialog. Resolves true on
 *  confirm, false on cancel or Escape. Focus returns where it was. */
export function confirmDialog(o: ConfirmOpts): Promise<boolean> {
  return modal(o, null).then((r) => r !== null);
}

export interface PromptOpts extends ConfirmOpts {
  /** label names the text field ("Reden"). */
  label: string;
  /** required keeps confirm disabled until something is typed. */
  required?: boolean;
  multiline?: boolean;
  value?: string;
}

/** promptDialog asks for a text (a reason) in a modal dialog. Resolves the
 *  trimmed text on confirm, null on cancel or Escape. */
export function promptDialog(o: PromptOpts): Promise<string | null> {
  const input = o.multiline
    ? h("textarea", { rows: 4, required: o.required ? true : null })
    : h("input", { type: "text", required: o.required ? true : null });
  input.value = o.value ?? "";
  return modal(o, { input, label: o.label, required: !!o.required });
}

function modal(o: ConfirmOpts, ask: { input: HTMLInputElement | HTMLTextAreaElement; label: string; required: boolean } | null): Promise<string | null> {
  const before = document.activeElement as HTMLElement | null;
  return new Promise((resolve) => {
    const ok = h("button", { type: "submit", class: o.danger ? "danger" : "primary", value: "ok" }, o.confirm);
    const cancel = h("button", { type: "button", class: "cancel" }, o.cancel ?? t("Annuleren", "Cancel"));
    const titleId = "dlg" + ++fieldSeq;
    const form = h("form", { method: "dialog" },
      h("h2", { id: titleId }, o.title),
      o.message !== undefined ? h("div", { class: "message" }, o.message) : null,
      ask ? field(ask.label, ask.input) : null,
      h("div", { class: "actions" }, cancel, ok));
    const dlg = h("dialog", { class: "confirm", "aria-labelledby": titleId }, form);
    let answer: string | null = null;
    const sync = () => { if (ask?.required) ok.disabled = ask.input.value.trim() === ""; };
    ask?.input.addEventListener("input", sync);
    sync();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (ask && ask.required && ask.input.value.trim() === "") return;
      answer = ask ? ask.input.value.trim() : "";
      dlg.close();
    });
    cancel.addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => {
      dlg.remove();
      before?.focus?.();
      resolve(answer);
    });
    document.body.append(dlg);
    dlg.showModal();
    (ask ? ask.input : cancel).focus();
  });
}

// ---- Dates and numbers -----------------------------------------------------

/** locale is the formatting locale of the current language. */
export function locale(): string {
  return currentLang() === "en" ? "en-GB" : "nl-BE";
}

const ZONE = "Europe/Brussels";
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function toDate(v: string | number | Date): Date {
  if (v instanceof Date) return v;
  if (typeof v === "string" && DATE_ONLY.test(v)) return new Date(v + "T12:00:00Z"); // a calendar day, whatever the zone
  return new Date(v);
}

/** fmtDate shows a day: "23 nov. 2026" (nl-BE), "23 Nov 2026" (en-GB), in
 *  Brussels time. "2026-11-23" is a calendar day, not midnight UTC. Empty
 *  for null or an unreadable value. */
export function fmtDate(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined || v === "") return "";
  const d = toDate(v);
  if (isNaN(d.getTime())) return String(v);
  return d.toLocaleDateString(locale(), { day: "numeric", month: "short", year: "numeric", timeZone: ZONE });
}

/** fmtDateTime shows a moment: "23 nov. 2026 14:05" in Brussels time. */
export function fmtDateTime(v: string | number | Date | null | undefined): string {
  if (v === null || v === undefined || v === "") return "";
  const d = toDate(v);
  if (isNaN(d.getTime())) return String(v);
  return d.toLocaleString(locale(), { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: ZONE });
}

/** fmtNumber shows a number with the locale's separators ("1.234,5"). */
export function fmtNumber(n: number | null | undefined, maxDigits = 1): string {
  if (n === null || n === undefined || isNaN(n)) return "";
  return n.toLocaleString(locale(), { maximumFractionDigits: maxDigits });
}

/** fmtDays says a number of days: "1 dag", "12 dagen". */
export function fmtDays(n: number | null | undefined): string {
  if (n === null || n === undefined || isNaN(n)) return "";
  return n === 1 ? t("1 dag", "1 day") : t(`${fmtNumber(n)} dagen`, `${fmtNumber(n)} days`);
}
