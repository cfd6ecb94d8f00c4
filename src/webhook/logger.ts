// One structured logger (pino, JSON lines). At info level nothing carries a
// certificate, a token or a whole object: requests are logged by uid, kind,
// name and decision only. Redaction is a second line of defence.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { component: 'kube-bluegreen-webhook' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['*.cert', '*.key', '*.caBundle', '*.token', '*.authorization', '*.headers.authorization', 'tls.*'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
