#!/usr/bin/env node
// The `offramp` command line (see program.ts): exit code 0 ok, 1 runtime error, 2 usage error. The command
// runs in a child process whose stderr is filtered of Dawn's native adapter-limit notices (util/dawn-stderr.ts).
import { adoptParentTerminal, runFilteredChild, wantsFilteredChild } from './util/dawn-stderr.js';

let code: number;
if (wantsFilteredChild()) code = await runFilteredChild();
else {
  adoptParentTerminal();
  const { run } = await import('./program.js');
  code = await run(process.argv.slice(2));
}
// Dawn keeps handles alive; leave once stdout and stderr are flushed
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
