// Entry of the store's writer thread (lmdb-writer-thread.ts). Plain JavaScript on purpose:
// a worker thread does not inherit a loader registered with tsx's register() API (as
// `bazaar` does), so TypeScript is made loadable here first. Registering again where a
// loader is already active (node --import=tsx) is harmless.
import { register } from 'tsx/esm/api';

register();
const { runWriterThread } = await import('./lmdb-writer-thread.ts');
runWriterThread();
