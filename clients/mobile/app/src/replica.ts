// The coach's replica of the case file, from the sync SDK (../sdk): opened
// once per page load on IndexedDB. While the SDK's replica cannot be opened
// (its implementation not landed, IndexedDB unavailable), `replica` is null,
// `replicaError` says why, and the app logs in with session.ts instead, so
// the shell and its offline machinery still work; the status bar says that
// nothing is synced.
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
