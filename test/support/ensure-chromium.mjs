// Runs before `npm test` (the `pretest` script): the web console's browser test drives
// Debian's Chromium with playwright-core, because browser downloads from the npm registry's
// packages do not work on our machines. Installs it once where it is missing and this
// process may (root with apt-get); otherwise says how, and the console test names it.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    console.error(
      `pretest: ${path} is missing and cannot be installed from here: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH; the console test needs it`,
    );
  } else {
    console.error("pretest: installing Debian's chromium for the console's browser test (once)");
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
      stdio: 'inherit',
      env,
    });
  }
}
