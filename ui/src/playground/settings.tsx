/**
 * The playground's request settings: model, system prompt, reasoning effort, sampling, and two JSON
 * editors (function tools; a JSON Schema for structured output) validated as the user types.
 */
import { useState } from "preact/hooks";
import type { Settings } from "./chat.ts";

export const EXAMPLE_TOOLS = `[
  {
    "type": "function",
    "function": {
      "name": "get_weather",
      "description": "Current weather in a city",
      "parameters": {
        "type": "object",
        "properties": { "city": { "type": "string" } },
        "required": ["city"]
      }
    }
  }
]`;

/** The tools editor's text as OpenAI function tools, or why it is not. */
export function parseTools(text: string): unknown[] | string {
  if (!text.trim()) return [];
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  if (!Array.isArray(v)) return "tools must be a JSON array";
  for (const [i, t] of v.entries()) {
    const f = (t as { type?: unknown; function?: { name?: unknown; parameters?: unknown } }) ?? {};
    if (f.type !== "function" || typeof f.function?.name !== "string") return `tool ${i}: needs type "function" and function.name`;
    if (f.function.parameters !== undefined && (typeof f.function.parameters !== "object" || f.function.parameters === null))
      return `tool ${i}: function.parameters must be a JSON Schema object`;
  }
  return v;
}

/** The schema editor's text as a JSON Schema object (null when empty), or why it is not. */
export function parseSchema(text: string): Record<string, unknown> | null | string {
  if (!text.trim()) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : "the schema must be a JSON object";
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
}

function Choice<T extends string>(p: { id: string; label: string; value: T; options: readonly T[]; onChange: (v: T) => void }) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      <select id={p.id} value={p.value} onChange={(e) => p.onChange((e.target as HTMLSelectElement).value as T)}>
        {p.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </div>
  );
}

function JsonEditor(p: {
  id: string;
  label: string;
  value: string;
  error: string | undefined;
  onInput: (v: string) => void;
  placeholder?: string;
}) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      <textarea
        id={p.id}
        rows={8}
        spellcheck={false}
        value={p.value}
        placeholder={p.placeholder}
        aria-invalid={p.error ? "true" : "false"}
        aria-describedby={`${p.id}-status`}
        onInput={(e) => p.onInput((e.target as HTMLTextAreaElement).value)}
      />
      <div id={`${p.id}-status`} class={p.error ? "invalid" : "valid"}>
        {p.error ?? (p.value.trim() ? "valid" : "none")}
      </div>
    </div>
  );
}

export interface SettingsPanelProps {
  models: string[];
  settings: Settings;
  onChange: (s: Settings) => void;
  /** Whether the editors hold valid JSON (the send button waits for them). */
  onValidity: (ok: boolean) => void;
}

export function SettingsPanel({ models, settings: s, onChange, onValidity }: SettingsPanelProps) {
  const [toolsText, setToolsText] = useState("");
  const [schemaText, setSchemaText] = useState("");
  const tools = parseTools(toolsText);
  const schema = parseSchema(schemaText);
  const set = (patch: Partial<Settings>) => onChange({ ...s, ...patch });
  const edit = (tText: string, sText: string) => {
    setToolsText(tText);
    setSchemaText(sText);
    const t = parseTools(tText);
    const sc = parseSchema(sText);
    onValidity(typeof t !== "string" && typeof sc !== "string");
    onChange({ ...s, tools: typeof t === "string" ? [] : t, schema: typeof sc === "string" ? null : sc });
  };
  const num = (e: Event) => (e.target as HTMLInputElement).value;
  return (
    <section class="settings" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <Choice id="model" label="Model" value={s.model} options={models} onChange={(model) => set({ model })} />
      <div class="field">
        <label for="system">System prompt</label>
        <textarea id="system" rows={2} value={s.system} onInput={(e) => set({ system: (e.target as HTMLTextAreaElement).value })} />
      </div>
      <div class="row">
        <Choice
          id="effort"
          label="Reasoning effort"
          value={s.reasoningEffort}
          options={["low", "medium", "high"] as const}
          onChange={(reasoningEffort) => set({ reasoningEffort })}
        />
        <div class="field">
          <label for="temperature">Temperature</label>
          <input
            id="temperature"
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={s.temperature}
            onInput={(e) => set({ temperature: Number(num(e)) })}
          />
        </div>
        <div class="field">
          <label for="seed">Seed</label>
          <input id="seed" type="number" value={s.seed} onInput={(e) => set({ seed: num(e) })} />
        </div>
        <div class="field">
          <label for="max-tokens">Max tokens</label>
          <input id="max-tokens" type="number" value={s.maxTokens} onInput={(e) => set({ maxTokens: num(e) })} />
        </div>
      </div>
      <JsonEditor
        id="tools"
        label="Tools (JSON: OpenAI function tools)"
        value={toolsText}
        placeholder={EXAMPLE_TOOLS}
        error={typeof tools === "string" ? tools : undefined}
        onInput={(v) => edit(v, schemaText)}
      />
      <Choice
        id="tool-choice"
        label="Tool choice"
        value={s.toolChoice}
        options={["auto", "required", "none"] as const}
        onChange={(toolChoice) => set({ toolChoice })}
      />
      <JsonEditor
        id="schema"
        label="Structured output (JSON Schema)"
        value={schemaText}
        placeholder='{"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}'
        error={typeof schema === "string" ? schema : undefined}
        onInput={(v) => edit(toolsText, v)}
      />
    </section>
  );
}
