import type { Route } from "../app";
import { h, replace } from "../dom";
import { t } from "../i18n";

// Scaffolding: the page is being built (issue 5).
export const routes: Route[] = [
  {
    path: "/intake",
    roles: ["coordinator", "reviewer", "coach"],
    nav: ["Intake", "Intake"],
    render(root) {
      replace(root, h("h1", null, t("Intake", "Intake")), h("p", null, t("Deze pagina wordt gebouwd.", "This page is being built.")));
    },
  },
];
