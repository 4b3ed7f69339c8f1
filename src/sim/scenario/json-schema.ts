/** The JSON Schema of the scenario format, generated from the zod schema. */
import { z } from "zod";
import { scenarioSchema } from "./schema.ts";

export function scenarioJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(scenarioSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return {
    $schema: js.$schema,
    $id: "https://iommu-sim.invalid/scenarios/schema.json",
    title: "iommu-sim scenario",
    ...js,
  };
}
