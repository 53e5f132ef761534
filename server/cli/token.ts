// `npm run token -- --role admin --sub alice [--email a@x] [--ttl 3600]`: prints a dev token
// signed with MPK_JWT_SECRET (or the generated dev secret in MPK_DATA_DIR).
import { parseArgs } from 'node:util';
import { mintToken, type Role } from '../auth/authenticator.js';
import { loadConfig } from '../config.js';
import { ROLES } from '../db/enums.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'user' },
    sub: { type: 'string' },
    email: { type: 'string' },
    ttl: { type: 'string', default: '86400' },
  },
});
const role = values.role!.toUpperCase() as Role;
const ttl = Number(values.ttl);
if (!values.sub || !ROLES.includes(role) || !Number.isInteger(ttl) || ttl <= 0) {
  console.error(
    'usage: npm run token -- --role admin|user|worker|observer --sub <user id> [--email <email>] [--ttl <seconds>]',
  );
  process.exit(2);
}
const config = await loadConfig();
console.log(
  await mintToken({
    secret: config.jwtSecret,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    sub: values.sub,
    role,
    email: values.email,
    expiresInSeconds: ttl,
  }),
);
