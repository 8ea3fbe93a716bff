// The shell: login, the role's navigation, the session across reloads, logout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useHarness } from "./harness.mjs";

const sp = useHarness();

test("a coordinator logs in and sees the navigation of her role", async () => {
  const page = await sp.page();
  await page.goto(sp.url + "/");
  await page.locator("#username").waitFor();
  await sp.shot(page, "login");
  await sp.login(page, "coordinator.kempen.demo");
  const nav = page.getByRole("navigation", { name: "Hoofdmenu" });
  const links = await nav.getByRole("link").allTextContents();
  for (const want of ["Intake", "Dossiers", "Signalen", "Rapport", "Regels"]) assert.ok(links.includes(want), `nav ${links} lacks ${want}`);
  assert.ok(!links.includes("Beheer"), "a coordinator has no admin page");
  await sp.shot(page, "coordinator-home");
  assert.deepEqual(sp.pageErrors(page), []);
});
