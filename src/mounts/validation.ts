// Turning a precompiled validator's first error into one line that names the field and,
// where it helps, the value. Shared by every layer that validates JSON against schemas/.

export interface ValidatorError {
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

export type Validator = ((data: unknown) => boolean) & { errors?: ValidatorError[] | null };

/** A validator that is a type guard for `T`: the one compiled from the schema `T` was generated from. */
export type SchemaValidator<T> = ((data: unknown) => data is T) & { errors?: ValidatorError[] | null };

/**
 * `validator` as the type guard it is for `T`. scripts/generate-types.mjs compiles each validator
 * and generates each type from the same schema, but the validator is plain JavaScript (ajv's
 * standalone code, under @ts-nocheck): this pairing is the one claim the compiler cannot check.
 */
export function schemaValidator<T>(validator: Validator): SchemaValidator<T> {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- ajv's generated code is untyped; it checks the schema T is generated from
  return validator as SchemaValidator<T>;
}

/** "/mounts/0/kind" → "plan.mounts[0].kind" */
export function fieldName(rootName: string, instancePath: string): string {
  return (
    rootName +
    instancePath
      .replace(/\/(\d+)(?=\/|$)/g, '[$1]')
      .replace(/\/([^/[]+)/g, (_, key: string) =>
        /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key.replace(/~1/g, '/').replace(/~0/g, '~'))}]`,
      )
  );
}

export function describeSchemaError(rootName: string, error: ValidatorError, data?: unknown): string {
  const where = fieldName(rootName, error.instancePath);
  const value = data === undefined ? undefined : valueAt(data, error.instancePath);
  const shown = value === undefined || typeof value === 'object' ? '' : ` (got ${JSON.stringify(value)})`;
  if (Array.isArray(error.params.allowedValues)) {
    return `${where} must be one of ${error.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}${shown}`;
  }
  if ('allowedValue' in error.params) {
    return `${where} must be ${JSON.stringify(error.params.allowedValue)}${shown}`;
  }
  if (typeof error.params.additionalProperty === 'string') {
    return `${where} has an unknown field ${JSON.stringify(error.params.additionalProperty)}`;
  }
  if (typeof error.params.pattern === 'string') {
    return `${where} must match ${error.params.pattern}${shown}`;
  }
  return `${where} ${error.message ?? 'is invalid'}${shown}`;
}

function valueAt(data: unknown, pointer: string): unknown {
  let current = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof current !== 'object' || current === null) return undefined;
    current = Reflect.get(current, key);
  }
  return current;
}

/** Validate, or throw `makeError(line)` for the first problem. `T` is the type generated from `validator`'s schema. */
export function validateOrThrow<T>(validator: Validator, data: unknown, rootName: string, makeError: (line: string) => Error): T {
  const isT = schemaValidator<T>(validator);
  if (!isT(data)) {
    const first = isT.errors?.[0];
    throw makeError(first ? describeSchemaError(rootName, first, data) : `${rootName} is invalid`);
  }
  return data;
}
