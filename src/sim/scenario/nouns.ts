/**
 * Words for what a schema accepts, where its type alone says too little
 * ("a size like 4K, 2M or 0x1000" rather than "a string"), for messages.
 */
import { z } from "zod";

export const nouns = z.registry<{ noun: string }>();

/** `schema`, registered with the words messages use for it. */
export function named<T extends z.ZodType>(schema: T, noun: string): T {
  nouns.add(schema, { noun });
  return schema;
}
