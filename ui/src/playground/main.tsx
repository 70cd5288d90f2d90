/** The playground (/): chat with a model through the gateway's OpenAI-compatible API, streamed. */
import "../style.css";
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { apiJson } from "../shared/api.ts";
import { ErrorBox, Header } from "../shared/components.tsx";
import { type Message, type Settings, streamTurn, type TurnStats } from "./chat.ts";
import { SettingsPanel } from "./settings.tsx";
import { HarmonyTokens } from "./tokens.tsx";

const fmt = (n: number | undefined, digits = 0) => (n === undefined ? "–" : n.toFixed(digits));

function Stats({ s }: { s: TurnStats }) {
  return (
    <p class="stats" data-testid="stats">
      {`${fmt(s.promptTokens)} prompt · ${fmt(s.completionTokens)} completion (${fmt(s.reasoningTokens)} reasoning) tokens · TTFT ${fmt(s.ttftMs)} ms · ${fmt(s.tokensPerS, 1)} tokens/s · ${fmt(s.totalMs)} ms`}
    </p>
  );
}

function ToolAnswer({ name, args, onSend }: { name: string; args: string; onSend: (result: string) => void }) {
  const [text, setText] = useState("");
  const id = `tool-result-${name}-${args.length}`;
  return (
    <form
      class="tool-answer"
      onSubmit={(e) => {
        e.preventDefault();
        onSend(text);
      }}
    >
      <label for={id}>Result of {name}</label>
      <textarea id={id} rows={2} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <button type="submit">Send result</button>
    </form>
  );
}

function Turn(p: {
  m: Message;
  index: number;
  streaming: boolean;
  settings: Settings;
  history: Message[];
  onToolResult: (id: string, r: string) => void;
}) {
  const { m } = p;
  if (m.role !== "assistant")
    return (
      <li class={`msg ${m.role}`} data-testid={`msg-${m.role}`}>
        <span class="who">{m.role === "tool" ? "tool result" : "you"}</span>
        <div class="text">{m.content}</div>
      </li>
    );
  const answered = new Set(p.history.filter((h) => h.role === "tool").map((h) => h.toolCallId));
  return (
    <li class="msg assistant" data-testid="msg-assistant" aria-busy={p.streaming ? "true" : "false"}>
      <span class="who">assistant</span>
      <div class="turn">
        {m.reasoning || p.streaming ? (
          <details class="reasoning" open>
            <summary>Reasoning</summary>
            <div class="text" data-testid="reasoning">
              {m.reasoning}
            </div>
          </details>
        ) : null}
        <div class="answer">
          <div class="text" data-testid="answer">
            {m.content}
          </div>
          {m.toolCalls?.map((c) => (
            <div class="tool-call" key={c.id} data-testid="tool-call">
              <code>
                {c.name}({c.arguments})
              </code>
              {!p.streaming && !answered.has(c.id) ? (
                <ToolAnswer name={c.name} args={c.arguments} onSend={(r) => p.onToolResult(c.id, r)} />
              ) : null}
            </div>
          ))}
        </div>
      </div>
      {m.stats ? <Stats s={m.stats} /> : null}
      {!p.streaming ? <HarmonyTokens settings={p.settings} history={p.history.slice(0, p.index + 1)} /> : null}
    </li>
  );
}

function Playground() {
  const [models, setModels] = useState<string[]>([]);
  const [settings, setSettings] = useState<Settings>({
    model: "",
    system: "",
    reasoningEffort: "medium",
    temperature: 1,
    seed: "",
    maxTokens: "",
    tools: [],
    toolChoice: "auto",
    schema: null,
  });
  const [valid, setValid] = useState(true);
  const [history, setHistory] = useState<Message[]>([]);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const abort = useRef<AbortController>();

  const loadModels = () =>
    apiJson<{ data: Array<{ id: string }> }>("/v1/models")
      .then((r) => {
        const ids = r.data.map((m) => m.id);
        setModels(ids);
        setSettings((s) => ({ ...s, model: ids.includes(s.model) ? s.model : (ids[0] ?? "") }));
        setError(undefined);
      })
      .catch(setError);
  useEffect(() => {
    loadModels();
  }, []);

  const run = async (next: Message[]) => {
    setHistory(next);
    setBusy(true);
    setError(undefined);
    abort.current = new AbortController();
    try {
      const m = await streamTurn(settings, next, (partial) => setHistory([...next, partial]), abort.current.signal);
      setHistory([...next, m]);
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <Header title="ExpertMesh playground" other={{ href: "/dashboard", label: "Dashboard" }} onKey={loadModels} />
      <main class="playground">
        <SettingsPanel models={models} settings={settings} onChange={setSettings} onValidity={setValid} />
        <section class="chat" aria-labelledby="chat-title">
          <h2 id="chat-title">Chat</h2>
          <ol class="messages" aria-live="polite">
            {history.map((m, i) => (
              <Turn
                key={i}
                m={m}
                index={i}
                streaming={busy && i === history.length - 1}
                settings={settings}
                history={history}
                onToolResult={(id, content) => run([...history, { role: "tool", toolCallId: id, content }])}
              />
            ))}
          </ol>
          {error ? <ErrorBox error={error} /> : null}
          <form
            class="composer"
            onSubmit={(e) => {
              e.preventDefault();
              if (!draft.trim()) return;
              run([...history, { role: "user", content: draft }]);
              setDraft("");
            }}
          >
            <label for="prompt">Message</label>
            <textarea id="prompt" rows={3} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
            <div class="buttons">
              <button type="submit" disabled={busy || !valid || !settings.model}>
                Send
              </button>
              <button type="button" disabled={!busy} onClick={() => abort.current?.abort()}>
                Stop
              </button>
              <button type="button" disabled={busy} onClick={() => setHistory([])}>
                Clear
              </button>
            </div>
          </form>
        </section>
      </main>
    </>
  );
}

render(<Playground />, document.getElementById("app") as HTMLElement);
