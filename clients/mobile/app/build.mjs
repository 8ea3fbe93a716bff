// Builds the coach app into dist/ (embedded by app.go, served at /coach/):
// src/main.ts bundled by esbuild into app.js (the SDK comes in from
// ../sdk/src through the bundle), static/ copied, and sw/sw.ts into sw.js
// with the build's version: a hash of every file of the app shell, so a new
// build gets a new cache name and its service worker replaces the old cache.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const BASE = "/coach/";
// The app shell: what the service worker pre-caches and serves offline.
const SHELL = ["index.html", "app.js", "styles.css", "manifest.webmanifest", "icon.svg", "icon-maskable.svg"];

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
// dist/.gitkeep is committed so that `go build` works before the first npm build.
writeFileSync("dist/.gitkeep", "");
cpSync("static", "dist", { recursive: true });

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outfile: "dist/app.js",
  logLevel: "warning",
});

const hash = createHash("sha256");
for (const f of SHELL) {
  hash.update(f + "\0");
  hash.update(readFileSync("dist/" + f)); // throws when a shell file is missing
}
const version = hash.digest("hex").slice(0, 12);

await build({
  entryPoints: ["sw/sw.ts"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  outfile: "dist/sw.js",
  logLevel: "warning",
  define: {
    __VERSION__: JSON.stringify(version),
    __SHELL__: JSON.stringify(SHELL.map((f) => (f === "index.html" ? BASE : BASE + f))),
  },
});
writeFileSync("dist/version.txt", version + "\n");
console.log(`coach app built into dist/ (shell version ${version})`);
