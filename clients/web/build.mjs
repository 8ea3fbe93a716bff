// Builds the web client into dist/ (embedded by clients/web/web.go):
// src/main.ts bundled and minified by esbuild, index.html and styles.css
// copied. `node build.mjs --watch` rebuilds on change.
import { build, context } from "esbuild";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";

const opts = {
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outfile: "dist/app.js",
  logLevel: "info",
};

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
// dist/.gitkeep is committed so that `go build` works before the first npm build.
writeFileSync("dist/.gitkeep", "");
cpSync("static", "dist", { recursive: true });
if (process.argv.includes("--watch")) {
  const ctx = await context(opts);
  await ctx.watch();
} else {
  await build(opts);
}
