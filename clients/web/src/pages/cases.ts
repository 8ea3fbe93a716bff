import type { Route } from "../app";
import { h, replace } from "../dom";
import { t } from "../i18n";

// Scaffolding: the page is being built (issue 5).
export const routes: Route[] = [
  {
    path: "/cases",
    roles: ["coordinator", "reviewer"],
    nav: ["Dossiers", "Cases"],
    render(root) {
      replace(root, h("h1", null, t("Dossiers", "Cases")), h("p", null, t("Deze pagina wordt gebouwd.", "This page is being built.")));
    },
  },
];
