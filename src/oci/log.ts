// Structured logs (pino JSON lines), opened only when asked for: loading pino costs about
// 40 ms, too much for a hook on every container start that logs nothing by default.
export interface HookLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  flush(): void;
}

const silent: HookLog = { info() {}, warn() {}, flush() {} };

/**
 * `file` "-" logs to stderr (`stderr` where given: a hook server sends those lines back to the
 * launcher, which prints them); undefined logs nothing.
 */
export async function openLog(file: string | undefined, level: string, bindings: object, stderr?: (text: string) => void): Promise<HookLog> {
  if (file === undefined) return silent;
  const { pino } = await import('pino');
  // sync: the hook exits right after its last line, which must not be lost in a buffer.
  const destination =
    file === '-' && stderr
      ? { write: (line: string) => stderr(line) }
      : pino.destination({ dest: file === '-' ? 2 : file, sync: true, append: true, mkdir: file !== '-' });
  const logger = pino({ level, base: { pid: process.pid, ...bindings } }, destination);
  return {
    info: (fields, message) => logger.info(fields, message),
    warn: (fields, message) => logger.warn(fields, message),
    flush: () => logger.flush(),
  };
}
