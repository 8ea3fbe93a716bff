// The coach's replica of the case file, from the sync SDK (../sdk): opened
// once per page load on IndexedDB. When it cannot be opened (IndexedDB
// unavailable or blocked), `replica` is null and `replicaError` says why:
// the app then refuses to log in rather than pretend to keep notes.
import { openIdbStore, openReplica, type Replica } from "../../sdk/src/index";

export let replica: Replica | null = null;
export let replicaError = "";

/** DB is the IndexedDB database of the coach app's replica. */
export const DB = "samenplan-coach";

export async function openCoachReplica(): Promise<void> {
  try {
    replica = await openReplica({ baseUrl: "", store: await openIdbStore(DB) });
  } catch (e) {
    replica = null;
    replicaError = e instanceof Error ? e.message : String(e);
  }
}
