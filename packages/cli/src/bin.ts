#!/usr/bin/env node
// The `offramp` command line (see program.ts): exit code 0 ok, 1 runtime error, 2 usage error.
import { run } from './program.js';

const code = await run(process.argv.slice(2));
// Dawn keeps handles alive; leave once stdout and stderr are flushed
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
