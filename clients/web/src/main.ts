import { App } from "./app";
import { renderLogin } from "./pages/login";
import { routes as intake } from "./pages/intake";
import { routes as cases } from "./pages/cases";
import { routes as signals } from "./pages/signals";
import { routes as reports } from "./pages/reports";
import { routes as rules } from "./pages/rules";
import { routes as admin } from "./pages/admin";

const app = new App(document.getElementById("app")!, renderLogin);
app.add(...intake, ...cases, ...signals, ...reports, ...rules, ...admin);
app.render();
