import { z } from 'zod';
import { configSchema } from './schema.js';

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodPrefault || current instanceof z.ZodOptional) {
      current = current.unwrap() as z.ZodType;
    } else {
      return current;
    }
  }
}

/**
 * Every leaf key of the config schema as a dotted path; array elements appear as `[]`
 * (`pulumi.orgs[].include`). Records such as `traces.headers` are leaves.
 * Used by the docs test and by the `unknown key` suggestions.
 */
export function leafKeyPaths(): string[] {
  const out: string[] = [];
  const walk = (schema: z.ZodType, prefix: string): void => {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
        walk(child, prefix === '' ? key : `${prefix}.${key}`);
      }
    } else if (inner instanceof z.ZodArray && unwrap(inner.element as z.ZodType) instanceof z.ZodObject) {
      walk(inner.element as z.ZodType, `${prefix}[]`);
    } else {
      out.push(prefix);
    }
  };
  walk(configSchema, '');
  return out;
}

/** The keys an object at `path` (as in a zod issue path) accepts; empty when it is not an object. */
export function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema = unwrap(configSchema);
  for (const segment of path) {
    if (schema instanceof z.ZodObject && typeof segment === 'string') {
      const child = (schema.shape as Record<string, z.ZodType | undefined>)[segment];
      if (child === undefined) return [];
      schema = unwrap(child);
    } else if (schema instanceof z.ZodArray && typeof segment === 'number') {
      schema = unwrap(schema.element as z.ZodType);
    } else {
      return [];
    }
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as Record<string, unknown>) : [];
}
