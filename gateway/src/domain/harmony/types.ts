/** Harmony messages (spec §6), the shape the renderer takes and the parser returns. */

export type Role = "system" | "developer" | "user" | "assistant" | "tool";

export interface ToolDef {
  name: string;
  description: string;
  parameters: JsonSchema | null;
}

export interface ToolNamespace {
  name: string;
  description: string | null;
  tools: ToolDef[];
}

// biome-ignore lint/suspicious/noExplicitAny: JSON Schema is open-ended; the renderer reads the keywords it knows
export type JsonSchema = Record<string, any>;

export interface SystemContent {
  type: "system";
  model_identity: string | null;
  reasoning_effort: "low" | "medium" | "high" | null;
  knowledge_cutoff: string | null;
  conversation_start_date: string | null;
  channel_config: { valid_channels: string[]; channel_required: boolean } | null;
  tools: ToolNamespace[] | null;
}

/** A structured-output format (spec §6.11): rendered into the developer message; it only nudges the model. */
export interface ResponseFormatDef {
  name: string;
  description: string | null;
  schema: JsonSchema;
}

export interface DeveloperContent {
  type: "developer";
  instructions: string | null;
  tools: ToolNamespace[] | null;
  response_formats?: ResponseFormatDef[] | null;
}

export interface HarmonyMessage {
  role: Role;
  /** For role tool: the tool's name (rendered in place of the role); otherwise an author name. */
  name: string | null;
  recipient: string | null;
  channel: string | null;
  content_type: string | null;
  content: string | SystemContent | DeveloperContent;
}

export interface RenderOptions {
  /** Append <|start|>assistant so the model writes the next message. */
  for_completion: boolean;
  /** Harmony's auto_drop_analysis (spec §6.9). */
  auto_drop_analysis: boolean;
}
