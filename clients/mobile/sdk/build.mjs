// Bundles the SDK into dist/samenplan-sdk.js (one ES module, no
// dependencies) for shells that do not bundle TypeScript themselves.
import { build } from "esbuild";

await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outfile: "dist/samenplan-sdk.js",
  logLevel: "info",
});
