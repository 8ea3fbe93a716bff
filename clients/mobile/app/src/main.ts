// The coach app's entry: the offline machinery first (so the app is cached
// for offline use even if a page fails), then the shell.
import { start } from "./app";
import { startOffline } from "./offline";

startOffline();
void start(document.getElementById("app")!);
