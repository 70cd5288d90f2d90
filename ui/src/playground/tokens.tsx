/**
 * The raw Harmony tokens of the conversation up to a turn, on demand: POST /tokenize renders the same
 * messages a chat request sends and names each token (`return_token_strs`). The names come in the
 * byte-level alphabet vLLM answers in (a space is `Ġ`); the page turns them back into text to read:
 * whitespace made visible, special tokens set apart, and a token holding only part of a character
 * shown as its bytes in hex, never as a replacement character.
 */
import { useState } from "preact/hooks";
import { apiJson } from "../shared/api.ts";
import { ErrorBox } from "../shared/components.tsx";
import { apiMessages, type Message, type Settings } from "./chat.ts";

export interface TokenView {
  id: number;
  kind: "special" | "text" | "bytes";
  /** What the page shows for it. */
  label: string;
}

const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
/** The bytes that are not printable Latin-1, in order: the byte-level alphabet writes them as U+0100 onwards. */
const moved = Array.from({ length: 256 }, (_, b) => b).filter((b) => !printable(b));

/** A byte-level name's bytes; null when it is not one (a special's name, or something else). */
function nameBytes(name: string): Uint8Array | null {
  const out = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const b = printable(c) ? c : moved[c - 0x100];
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

const VISIBLE: Record<string, string> = { " ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍" };
const strict = new TextDecoder("utf-8", { fatal: true });
const SPECIAL = /^<\|[a-z0-9_]+\|>$/;

/** How the page shows one token, from its id and the name /tokenize gave it. */
export function tokenView(id: number, name: string): TokenView {
  if (SPECIAL.test(name) && id >= 199_998) return { id, kind: "special", label: name };
  const bytes = nameBytes(name);
  if (!bytes) return { id, kind: "text", label: name };
  try {
    return { id, kind: "text", label: strict.decode(bytes).replace(/[ \n\t\r]/g, (c) => VISIBLE[c] as string) };
  } catch {
    return { id, kind: "bytes", label: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ") };
  }
}

function TokenList({ views }: { views: TokenView[] }) {
  return (
    <div class="tokens" data-testid="harmony-tokens">
      <p class="hint">
        {views.length} tokens. Special tokens are highlighted; ␣ is a space, ⏎ a newline; a token holding part of a character shows its
        bytes in hex. Each token's id follows it.
      </p>
      <ol class="token-list" aria-label="Harmony tokens">
        {views.map((v, i) => (
          <li key={i} class={`tok ${v.kind}`} data-kind={v.kind} data-id={String(v.id)}>
            <span class="tok-text">{v.label}</span> <span class="tok-id">{v.id}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The Harmony tokens the gateway renders for the conversation up to a turn (POST /tokenize). */
export function HarmonyTokens({ settings, history }: { settings: Settings; history: Message[] }) {
  const [state, setState] = useState<{ views?: TokenView[]; error?: Error }>();
  const load = async () => {
    try {
      const r = await apiJson<{ tokens: number[]; token_strs?: string[] }>("/tokenize", {
        method: "POST",
        body: JSON.stringify({
          model: settings.model,
          messages: apiMessages(settings, history),
          reasoning_effort: settings.reasoningEffort,
          ...(settings.tools.length ? { tools: settings.tools } : {}),
          return_token_strs: true,
        }),
      });
      setState({ views: r.tokens.map((id, i) => tokenView(id, r.token_strs?.[i] ?? String(id))) });
    } catch (e) {
      setState({ error: e as Error });
    }
  };
  if (!state)
    return (
      <button type="button" class="link" onClick={load}>
        Show Harmony tokens
      </button>
    );
  if (state.error) return <ErrorBox error={state.error} />;
  return <TokenList views={state.views ?? []} />;
}
