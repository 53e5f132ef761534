// `npm run token -- --role admin --sub alice [--email a@x] [--ttl 3600]`: prints a dev token
// signed with MPK_JWT_SECRET (or the generated dev secret in MPK_DATA_DIR).
import { mintToken, type Role, signingConfig } from '../auth/authenticator.js';
import { ConfigError, loadConfig } from '../config.js';
import { ROLES } from '../db/enums.js';
import { cliArgs, usageError } from './args.js';

const USAGE = `usage: npm run token -- --role admin|user|worker|observer --sub <user id> [--email <email>] [--ttl <seconds>]

Prints a JWT signed with MPK_JWT_SECRET (or the development secret generated in MPK_DATA_DIR), with
MPK_JWT_ISSUER and MPK_JWT_AUDIENCE when they are set. Default role: user; default ttl: 86400.`;
const { values } = cliArgs(USAGE, {
  role: { type: 'string', default: 'user' },
  sub: { type: 'string' },
  email: { type: 'string' },
  ttl: { type: 'string', default: '86400' },
});
const role = values.role.toUpperCase() as Role;
const ttl = Number(values.ttl);
if (!values.sub) usageError('--sub is required.', USAGE);
if (!ROLES.includes(role)) usageError(`Unknown role "${values.role}".`, USAGE);
if (!Number.isInteger(ttl) || ttl <= 0)
  usageError(`--ttl must be a whole number of seconds, not "${values.ttl}".`, USAGE);
try {
  const config = await loadConfig();
  console.log(
    await mintToken({
      ...signingConfig(config),
      sub: values.sub,
      role,
      email: values.email,
      expiresInSeconds: ttl,
    }),
  );
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
