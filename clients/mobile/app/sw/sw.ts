// The coach app's service worker: it pre-caches the app shell in a cache named
// after the build (build.mjs injects __VERSION__, a hash of the shell's files,
// and __SHELL__, their URLs), serves the shell cache-first so the app opens
// without a network, leaves the API (/v1/*) to the network, and on activation
// deletes the caches of older builds.
/// <reference lib="webworker" />
export {}; // a module, so that `self` below is this file's own declaration
declare const self: ServiceWorkerGlobalScope;
declare const __VERSION__: string;
declare const __SHELL__: string[];

const PREFIX = "samenplan-coach-";
const CACHE = PREFIX + __VERSION__;
const SCOPE = "/coach/";
const INDEX = "/coach/";

self.addEventListener("install", (ev) => {
  ev.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // cache: "reload" so a new build never pre-caches a stale copy from the HTTP cache.
      await cache.addAll(__SHELL__.map((u) => new Request(u, { cache: "reload" })));
      // The shell is cached whole before this worker takes over, so taking over
      // at once cannot mix two builds' files in one page load.
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (ev) => {
  const req = ev.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  // The API and anything outside the app go to the network, uncached: the
  // case file lives in the SDK's local store, not in this cache.
  if (url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  if (req.mode === "navigate") {
    ev.respondWith(fromCache(INDEX, req));
    return;
  }
  ev.respondWith(fromCache(req, req));
});

/** fromCache answers from this build's cache, or else from the network. */
async function fromCache(key: RequestInfo, req: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key, { ignoreSearch: true });
  return hit ?? fetch(req);
}

// The page asks which build is active ({type: "version"}) to show it.
self.addEventListener("message", (ev) => {
  if ((ev.data as { type?: string } | null)?.type === "version") ev.ports[0]?.postMessage({ version: __VERSION__, cache: CACHE });
});
