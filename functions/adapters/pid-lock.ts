import { open, readFile, rm } from 'node:fs/promises';
import { TransientError } from '../core/errors.js';

/**
 * An exclusive lock held by a file that names its owner's pid. A lock whose process is gone
 * is stale and is taken over. `waitMs` > 0 polls until the lock is free or the time is up.
 */
export async function acquirePidLock(
  file: string,
  options: { waitMs?: number; describe?: (pid: number) => string } = {},
): Promise<() => Promise<void>> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (!pid || !isAlive(pid)) {
      // Stale (or written half-way): remove it and try again at once.
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline)
      throw new TransientError(options.describe?.(pid) ?? `${file} is locked by pid ${pid}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
