// The replica: placeholder while the implementation lands (next commit).
import { SyncError } from "./errors.js";
import type { Replica, ReplicaOptions } from "./index.js";

/** openReplica opens the replica kept in opts.store. */
export async function openReplica(opts: ReplicaOptions): Promise<Replica> {
  void opts;
  throw new SyncError("internal", "openReplica: not implemented yet");
}
