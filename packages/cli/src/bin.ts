#!/usr/bin/env node
// The `offramp` command line.
import { Command } from 'commander';
import { demo } from './commands/demo.js';

const program = new Command();
program.name('offramp').description('Early-exit neural networks on WebGPU').option('--verbose', 'show stack traces on errors');

program
  .command('demo')
  .description('run an early-exit batch on the GPU and show where each sample left')
  .option('--backend <gpu|cpu|auto>', 'device to run on', 'auto')
  .option('--batch <n>', 'batch size', (v) => Number.parseInt(v, 10), 32)
  .option('--json', 'machine-readable summary on stdout')
  .action(async (o) => {
    const r = await demo(o);
    if (o.json) console.log(JSON.stringify(r));
  });

program.parseAsync().catch((e: Error) => {
  console.error(`offramp: ${program.opts().verbose ? e.stack : e.message}`);
  process.exit(1);
});
