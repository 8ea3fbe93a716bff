// The offline machinery of the page: the service worker is registered (it
// caches the app shell, sw/sw.ts), the network state is followed, and a new
// build that takes over is announced so the coach reloads when it suits her.

/** NetState is what the status bar shows of the network and the app's cache. */
export interface NetState {
  online: boolean;
  /** the active service worker's build, once it answers; "" before */
  version: string;
  /** the app is cached for offline use (a service worker controls the page) */
  cached: boolean;
  /** a newer build took over while this page was open */
  updated: boolean;
  /** registering the service worker failed (e.g. a private window) */
  error: string;
}

const state: NetState = { online: navigator.onLine, version: "", cached: false, updated: false, error: "" };
const listeners = new Set<(s: NetState) => void>();

export function netState(): NetState {
  return { ...state };
}

/** onNetState calls fn now and on every change; it returns the unsubscribe. */
export function onNetState(fn: (s: NetState) => void): () => void {
  listeners.add(fn);
  fn(netState());
  return () => listeners.delete(fn);
}

function set(p: Partial<NetState>): void {
  Object.assign(state, p);
  for (const fn of listeners) fn(netState());
}

/** startOffline registers the service worker at /coach/sw.js (scope /coach/)
 *  and follows the network. */
export function startOffline(): void {
  addEventListener("online", () => set({ online: true }));
  addEventListener("offline", () => set({ online: false }));
  if (!("serviceWorker" in navigator)) {
    set({ error: "no service worker support" });
    return;
  }
  const sw = navigator.serviceWorker;
  const hadController = !!sw.controller;
  sw.addEventListener("controllerchange", () => {
    set({ cached: true, updated: hadController || state.updated });
    void askVersion();
  });
  if (sw.controller) {
    set({ cached: true });
    void askVersion();
  }
  sw.register("/coach/sw.js", { scope: "/coach/" }).catch((err: unknown) => set({ error: String(err) }));
}

async function askVersion(): Promise<void> {
  const ctl = navigator.serviceWorker.controller;
  if (!ctl) return;
  const ch = new MessageChannel();
  const answer = new Promise<{ version: string }>((res) => (ch.port1.onmessage = (ev) => res(ev.data)));
  ctl.postMessage({ type: "version" }, [ch.port2]);
  const r = await Promise.race([answer, new Promise<null>((res) => setTimeout(() => res(null), 2000))]);
  if (r) set({ version: r.version });
}
