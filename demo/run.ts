// `npm run demo`: starts the demo (demo.ts), prints where to look and how to sign in, and stops
// it cleanly on Ctrl-C or SIGTERM. PORT, HOST and MPK_DATA_DIR as for the server; DEMO_AGENTS
// sets how many agents run.
import path from 'node:path';
import { stopOnSignal } from '../server/core/shutdown.js';
import { type Demo, startDemo } from './demo.js';
import { ADMIN } from './story.js';

const time = () => new Date().toISOString().slice(11, 19);
const log = (line: string) => console.log(`${time()}  ${line}`);

let demo: Demo | undefined;
// Held until start-up is over, so the embedded database is never cut off in the middle of its
// migrations or the backfill.
const signals = stopOnSignal(async (signal) => {
  log(`${signal}: stopping the agents, MPK and the fake provider`);
  await demo!.stop();
  log('stopped');
});

function banner(d: Demo) {
  // Relative when it is inside this folder (the default), so that the lines below can be pasted.
  const relative = path.relative(process.cwd(), d.dataDir);
  const dataDir = relative && !relative.startsWith('..') ? relative : d.dataDir;
  // The token command reads the same generated secret; a secret set in this shell would win over it.
  const unset = d.ignoredEnv.includes('MPK_JWT_SECRET') ? 'MPK_JWT_SECRET= ' : '';
  return [
    '',
    `MPK demo is running (data in ${dataDir}, wiped at every start)`,
    `  Dashboard   ${d.url}/`,
    `  GraphiQL    ${d.url}/graphql`,
    `  Sign in     on the dashboard's sign-in page choose "Sign in for development" (role admin shows everything),`,
    `              or ask for a token: curl -s -X POST ${d.url}/api/dev-sign-in ` +
      `-H 'content-type: application/json' -d '{"role":"admin","sub":"${ADMIN.id}"}'`,
    `  Admin token ${unset}MPK_DATA_DIR=${dataDir} npm run -s token -- ` +
      `--role admin --sub ${ADMIN.id} --email ${ADMIN.email}`,
    `              (for GraphiQL: header Authorization: Bearer <token>)`,
    '  Ctrl-C stops the demo.',
    '',
  ].join('\n');
}

const agents = Number(process.env.DEMO_AGENTS ?? 6);
try {
  demo = await startDemo({
    port: Number(process.env.PORT ?? 4000),
    host: process.env.HOST ?? '127.0.0.1',
    dataDir: process.env.MPK_DATA_DIR ?? '.data/demo',
    agents: Number.isInteger(agents) && agents >= 0 ? agents : 6,
    logLevel: process.env.LOG_LEVEL,
    log,
  });
} catch (error) {
  console.error(`The demo cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
console.log(banner(demo));
await signals.started();
