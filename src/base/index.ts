export { describeError, errnoCodeOf, GrpcStatus, KINDS, kindOf, messageOf, MountatError, reportOf, type ErrorKind, type KindMapping } from './errors.js';
export { disposalErrors } from './disposable-stack.js';
export { inSession, type Settled } from './session.js';
