// The error model only: every layer, the OCI hook's start-up path included, imports this. The
// session (and with it the AsyncDisposableStack shim it installs) is ./session.js, for the
// lifecycle of an action alone.
export { describeError, errnoCodeOf, GrpcStatus, KINDS, kindOf, messageOf, MountatError, reportOf, type ErrorKind, type KindMapping } from './errors.js';
