import { runCli } from '../local/cli/output.js';
import { buildProgram } from '../local/cli/program.js';

await runCli(buildProgram(), process.argv);
