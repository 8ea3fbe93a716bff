// Live updates: GET /v1/events as a text/event-stream read through fetch()
// (EventSource cannot send the Authorization header). Events carry ids
// only; the page re-fetches what changed. The stream reconnects with a
// growing pause and ends when the page is left.
import type { Ctx } from "../../app";

export interface LiveEvent {
  type: string; // case | referral | consult | resync
  region: string;
  family_id?: string;
  kind?: string;
  id?: string;
}

export type LiveState = "connecting" | "open" | "closed";

/** live subscribes to the server's events until the page is left.
 *  onEvent gets every event; after a reconnect it gets a synthetic
 *  "resync" (events may have been missed meanwhile). */
export function live(ctx: Ctx, onEvent: (ev: LiveEvent) => void, onState?: (s: LiveState) => void): void {
  const abort = new AbortController();
  ctx.onLeave(() => abort.abort());
  let pause = 1000;
  let connectedBefore = false;
  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      onState?.("connecting");
      try {
        const token = await ctx.api.token();
        const res = await fetch("/v1/events", { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" }, signal: abort.signal });
        if (res.status === 401) {
          // let the API client refresh the session (or end it), then try again
          await ctx.api.get("/v1/me").catch(() => undefined);
          throw new Error("unauthorized");
        }
        if (!res.ok || !res.body) throw new Error("events: HTTP " + res.status);
        onState?.("open");
        if (connectedBefore) onEvent({ type: "resync", region: ctx.region });
        connectedBefore = true;
        pause = 1000;
        await read(res.body, onEvent);
      } catch {
        if (abort.signal.aborted) return;
      }
      onState?.("closed");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 30_000);
    }
  };
  void run();
}

async function read(body: ReadableStream<Uint8Array>, onEvent: (ev: LiveEvent) => void): Promise<void> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let type = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // a comment: hello, keep-alive
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") type = val;
        else if (field === "data") data.push(val);
      }
      if (!data.length) continue;
      try {
        const payload = JSON.parse(data.join("\n")) as Omit<LiveEvent, "type">;
        onEvent({ ...payload, type });
      } catch {
        // not ours; ignore
      }
    }
  }
}

/** debounce runs fn once after a quiet spell of ms. */
export function debounce(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}
