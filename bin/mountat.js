#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=256
// --max-semi-space-size=2: V8's young generation may otherwise grow to 3 × 16 MiB of semi-spaces,
// which the runner, allocating a little per action, fills and keeps (its RSS settled at ~111 MiB
// after ~1,300 actions here, ~84 MiB with 2 MiB semi-spaces). --max-old-space-size=256: V8 times its
// major collections by this limit, which is otherwise a share of the machine's memory (GiBs here): the
// runner's heap then grew by some 18 MiB between them under load (peak RSS 100 MiB with 32 actions
// in flight, 82 MiB with the limit); 256 MiB is still far above what it holds. V8 takes both flags
// only at start-up.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
