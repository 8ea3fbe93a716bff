// Admin: the accounts and their devices, and revoking a device (a lost
// phone). The admin reads no case content: this page calls only /v1/users
// and /v1/devices.
import type { Ctx, Route } from "../app";
import { roleName } from "../app";
import type { User } from "../api";
import { h, replace } from "../dom";
import { t } from "../i18n";
import { badge, busy, confirmDialog, errorBox, fmtDateTime, fmtNumber, localTable, notice } from "../ui";

/** Account is a user as GET /v1/users gives it. */
interface Account extends User {
  organisation?: string;
  fte: number;
  volunteer: boolean;
  created_at: string;
  disabled: boolean;
}

/** Device is a device as GET /v1/devices gives it. */
interface Device {
  id: string;
  user_id: string;
  username: string;
  name: string;
  created_at: string;
  last_seen: string;
  revoked_at?: string;
  revoked_by?: string;
}

const ROLE_ORDER: Record<string, number> = { admin: 0, coordinator: 1, reviewer: 2, coach: 3 };

export const routes: Route[] = [
  { path: "/admin", roles: ["admin"], nav: ["Beheer", "Admin"], render: renderAccounts },
  { path: "/admin/users/:id", roles: ["admin"], render: renderAccount },
];

async function renderAccounts(root: HTMLElement, ctx: Ctx): Promise<void> {
  root.classList.add("page-admin");
  const [users, devices] = await Promise.all([
    ctx.api.get<Account[]>("/v1/users"),
    ctx.api.get<Device[]>("/v1/devices"),
  ]);
  const active = new Map<string, number>();
  for (const d of devices) if (!d.revoked_at) active.set(d.user_id, (active.get(d.user_id) ?? 0) + 1);
  users.sort((a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) || a.username.localeCompare(b.username));
  const regions = [...new Set(users.flatMap((u) => u.regions ?? []))].sort();

  const search = h("input", { type: "search", id: "account-search", placeholder: t("naam of gebruikersnaam", "name or username") });
  const role = h("select", { id: "account-role" },
    h("option", { value: "" }, t("alle rollen", "all roles")),
    (["coordinator", "reviewer", "coach", "admin"] as const).map((r) => h("option", { value: r }, roleName(r))));
  const region = h("select", { id: "account-region" },
    h("option", { value: "" }, t("alle regio's", "all regions")),
    regions.map((r) => h("option", { value: r }, r)));
  for (const [el, key] of [[search, "q"], [role, "role"], [region, "region"]] as const) el.value = ctx.params[key] ?? "";
  const count = h("p", { class: "count", role: "status" });
  const list = h("div", { id: "accounts" });

  const show = () => {
    const q = search.value.trim().toLowerCase();
    const rows = users.filter((u) =>
      (!q || u.username.toLowerCase().includes(q) || (u.display_name ?? "").toLowerCase().includes(q)) &&
      (!role.value || u.role === role.value) &&
      (!region.value || (u.regions ?? []).includes(region.value)));
    count.textContent = t(`${fmtNumber(rows.length)} van ${fmtNumber(users.length)} accounts`, `${fmtNumber(rows.length)} of ${fmtNumber(users.length)} accounts`);
    replace(list, localTable<Account>({
      caption: t("Accounts", "Accounts"),
      rows,
      limit: 20,
      empty: t("Geen accounts die aan de filter voldoen.", "No accounts match the filter."),
      rowProps: (u) => ({ "data-username": u.username, class: u.disabled ? "disabled" : null }),
      columns: [
        { label: t("Gebruikersnaam", "Username"), cell: (u) => h("a", { href: `#/admin/users/${encodeURIComponent(u.id)}` }, u.username) },
        { label: t("Naam", "Name"), cell: (u) => u.display_name },
        { label: t("Rol", "Role"), cell: (u) => roleName(u.role) },
        { label: t("Regio's", "Regions"), cell: (u) => (u.regions ?? []).join(", ") || "—" },
        { label: t("Organisatie", "Organisation"), cell: (u) => u.organisation || "—" },
        { label: t("Actieve apparaten", "Active devices"), class: "num", cell: (u) => fmtNumber(active.get(u.id) ?? 0) },
        { label: t("Status", "Status"), cell: (u) => u.disabled ? badge(t("uitgeschakeld", "disabled"), "error") : badge(t("actief", "active"), "ok") },
      ],
    }));
    // Keep the filter in the address, so back and reload return to it.
    const qs = new URLSearchParams();
    if (search.value.trim()) qs.set("q", search.value.trim());
    if (role.value) qs.set("role", role.value);
    if (region.value) qs.set("region", region.value);
    const want = "#/admin" + (qs.toString() ? "?" + qs : "");
    if (location.hash !== want) history.replaceState(null, "", want);
  };
  search.addEventListener("input", show);
  role.addEventListener("change", show);
  region.addEventListener("change", show);

  replace(root,
    h("h1", null, t("Accounts en apparaten", "Accounts and devices")),
    h("p", { class: "lede" }, t(
      "Beheer ziet accounts en apparaten, geen dossiers. Kies een account om zijn apparaten te zien of een verloren toestel in te trekken.",
      "Admins see accounts and devices, no case files. Pick an account to see its devices or revoke a lost one.")),
    h("form", { class: "filters", role: "search", onsubmit: (e: Event) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: search.id }, t("Zoeken", "Search")), search),
      h("div", { class: "field" }, h("label", { for: role.id }, t("Rol", "Role")), role),
      h("div", { class: "field" }, h("label", { for: region.id }, t("Regio", "Region")), region)),
    count,
    list);
  show();
}

async function renderAccount(root: HTMLElement, ctx: Ctx): Promise<void> {
  root.classList.add("page-admin");
  const id = ctx.params.id;
  const user = await ctx.api.get<Account>(`/v1/users/${encodeURIComponent(id)}`);
  const status = h("div", { id: "device-status", tabindex: "-1" });
  const list = h("section", { id: "devices", "aria-labelledby": "devices-title" });

  const load = async () => {
    list.setAttribute("aria-busy", "true");
    try {
      const devices = await ctx.api.get<Device[]>(`/v1/devices?user=${encodeURIComponent(user.id)}`);
      // Active first, most recently seen first; the revoked after them.
      devices.sort((a, b) => Number(!!a.revoked_at) - Number(!!b.revoked_at) || b.last_seen.localeCompare(a.last_seen));
      const activeCount = devices.filter((d) => !d.revoked_at).length;
      replace(list,
        h("h2", { id: "devices-title" }, t("Apparaten", "Devices"), " ",
          badge(t(`${activeCount} actief`, `${activeCount} active`), activeCount ? "info" : "muted")),
        localTable<Device>({
          caption: t(`Apparaten van ${user.username}`, `Devices of ${user.username}`),
          rows: devices,
          limit: 20,
          empty: t("Dit account heeft nog geen apparaten: er werd nog niet mee aangemeld.", "This account has no devices yet: nobody has logged in with it."),
          rowProps: (d) => ({ "data-device": d.id, class: d.revoked_at ? "revoked" : null }),
          columns: [
            { label: t("Apparaat", "Device"), cell: (d) => [d.name || "—", d.id === ctx.api.session()?.device_id ? [" ", badge(t("dit apparaat", "this device"), "info")] : null] },
            { label: t("Aangemeld op", "Logged in"), cell: (d) => fmtDateTime(d.created_at) },
            { label: t("Laatst gezien", "Last seen"), cell: (d) => fmtDateTime(d.last_seen) },
            { label: t("Status", "Status"), cell: (d) => d.revoked_at
              ? [badge(t("ingetrokken", "revoked"), "error"), h("small", { class: "revoked-when" }, " ",
                t(`op ${fmtDateTime(d.revoked_at)}`, `on ${fmtDateTime(d.revoked_at)}`),
                d.revoked_by ? t(` door ${d.revoked_by}`, ` by ${d.revoked_by}`) : "")]
              : badge(t("actief", "active"), "ok") },
            { label: t("Actie", "Action"), cell: (d) => d.revoked_at ? "" : revokeButton(d) },
          ],
        }));
    } catch (err) {
      replace(list, errorBox(err));
    } finally {
      list.removeAttribute("aria-busy");
    }
  };

  const revokeButton = (d: Device): HTMLElement => {
    const own = d.id === ctx.api.session()?.device_id;
    const b = h("button", { type: "button", class: "revoke", "aria-label": t(`Apparaat ${d.name} intrekken`, `Revoke device ${d.name}`) },
      t("Intrekken", "Revoke"));
    b.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: t("Apparaat intrekken?", "Revoke this device?"),
        message: [
          h("p", null, h("strong", null, d.name || d.id), " ", t(`van ${user.username}`, `of ${user.username}`)),
          h("p", null, t(
            "Het toestel kan daarna niet meer aanmelden of synchroniseren en wist zijn gegevens bij de volgende verbinding. Dit kan niet ongedaan gemaakt worden.",
            "The device can no longer log in or sync, and wipes its data when it next connects. This cannot be undone.")),
          own ? notice("warn", t("Dit is het apparaat waarmee je nu aangemeld bent: je wordt afgemeld.", "This is the device you are logged in with: you will be logged out.")) : null,
        ],
        confirm: t("Intrekken", "Revoke"),
        danger: true,
      });
      if (!ok) return;
      const done = await busy(b, () => ctx.api.post(`/v1/devices/${encodeURIComponent(d.id)}/revoke`), status);
      if (done === undefined) return; // busy() put the error in status
      replace(status, notice("ok", t(`Apparaat „${d.name}” van ${user.username} is ingetrokken.`, `Device "${d.name}" of ${user.username} is revoked.`)));
      status.focus();
      await load();
    });
    return b;
  };

  // Disabling an account revokes every device of it (server side); an admin
  // cannot disable her own account.
  const self = user.id === ctx.user.id;
  const toggle = h("button", { type: "button", id: "account-toggle", class: user.disabled ? null : "danger-outline", disabled: self ? true : null,
    title: self ? t("Je eigen account kan je niet uitschakelen.", "You cannot disable your own account.") : null },
  user.disabled ? t("Account weer inschakelen", "Enable account") : t("Account uitschakelen", "Disable account"));
  toggle.addEventListener("click", async () => {
    const disable = !user.disabled;
    const ok = await confirmDialog(disable
      ? {
        title: t("Account uitschakelen?", "Disable this account?"),
        message: h("p", null, t(
          `${user.username} kan daarna niet meer aanmelden, en al zijn apparaten worden ingetrokken (ze wissen hun gegevens bij de volgende verbinding). Het account blijft bestaan en kan weer ingeschakeld worden.`,
          `${user.username} can no longer log in, and all of the account's devices are revoked (they wipe their data when they next connect). The account stays and can be enabled again.`)),
        confirm: t("Uitschakelen", "Disable"), danger: true,
      }
      : {
        title: t("Account weer inschakelen?", "Enable this account again?"),
        message: h("p", null, t(`${user.username} kan weer aanmelden, met een nieuw apparaat.`, `${user.username} can log in again, with a new device.`)),
        confirm: t("Inschakelen", "Enable"),
      });
    if (!ok) return;
    const done = await busy(toggle, () => ctx.api.patch(`/v1/users/${encodeURIComponent(user.id)}`, { disabled: disable }), status);
    if (done === undefined) return;
    ctx.navigate(`/admin/users/${encodeURIComponent(user.id)}?done=${disable ? "disabled" : "enabled"}`);
  });
  const doneNotice = ctx.params.done === "disabled" ? notice("ok", t(`Account ${user.username} is uitgeschakeld; zijn apparaten zijn ingetrokken.`, `Account ${user.username} is disabled; its devices are revoked.`))
    : ctx.params.done === "enabled" ? notice("ok", t(`Account ${user.username} is weer ingeschakeld.`, `Account ${user.username} is enabled again.`))
      : null;
  if (doneNotice) status.append(doneNotice);

  replace(root,
    h("p", { class: "back" }, h("a", { href: "#/admin" }, "← ", t("Alle accounts", "All accounts"))),
    h("h1", null, user.display_name || user.username, " ", h("span", { class: "muted" }, user.username)),
    h("dl", { class: "account-facts" },
      h("dt", null, t("Rol", "Role")), h("dd", null, roleName(user.role)),
      h("dt", null, t("Regio's", "Regions")), h("dd", null, (user.regions ?? []).join(", ") || "—"),
      h("dt", null, t("Organisatie", "Organisation")), h("dd", null, user.organisation || "—"),
      user.role === "coach" ? [h("dt", null, t("FTE", "FTE")), h("dd", null, fmtNumber(user.fte, 2), user.volunteer ? t(" · vrijwilliger", " · volunteer") : "")] : null,
      h("dt", null, t("Aangemaakt", "Created")), h("dd", null, fmtDateTime(user.created_at)),
      h("dt", null, t("Status", "Status")), h("dd", { id: "account-status" }, user.disabled ? badge(t("uitgeschakeld", "disabled"), "error") : badge(t("actief", "active"), "ok"))),
    h("p", { class: "account-actions" }, toggle),
    status,
    list);
  await load();
}
