#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2: V8's young generation may otherwise grow to 3 × 16 MiB of semi-spaces,
// which the runner, allocating a little per action, fills and keeps (its RSS settled at ~111 MiB
// after ~1,300 actions here, ~84 MiB with 2 MiB semi-spaces). V8 takes the flag only at start-up.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
