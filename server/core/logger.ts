// JSON logs (pino). Secrets are kept out by construction (no code logs inputs or headers); the
// redaction list is a second line of defence for anything that slips into an object.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mpk' },
      redact: {
        paths: [
          'authorization',
          'apiKey',
          'secret',
          'token',
          '*.authorization',
          '*.apiKey',
          '*.secret',
          '*.token',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
