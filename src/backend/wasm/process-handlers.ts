// Emscripten's Node glue installs process-wide uncaughtException/unhandledRejection handlers that
// rethrow; they change the host program's error handling, so we remove them right after loading.
import type { EventEmitter } from 'node:events';

const events = ['uncaughtException', 'unhandledRejection'] as const;

/** Records the current handlers; the returned function removes any added since. */
export function snapshotProcessHandlers(): () => void {
  const emitter = process as unknown as EventEmitter;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  return () => {
    for (const e of events) {
      for (const l of emitter.listeners(e)) {
        if (!before.get(e)!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
      }
    }
  };
}
