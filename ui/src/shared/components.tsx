/** What both pages show: the header with the API key entry, and an API error as the API sent it. */
import { useState } from "preact/hooks";
import { type ApiError, storedKey, storeKey } from "./api.ts";

export function KeyEntry({ onChange }: { onChange: () => void }) {
  const [draft, setDraft] = useState(storedKey());
  const [saved, setSaved] = useState(storedKey() !== "");
  return (
    <form
      class="key"
      onSubmit={(e) => {
        e.preventDefault();
        storeKey(draft.trim());
        setSaved(draft.trim() !== "");
        onChange();
      }}
    >
      <label for="api-key">API key</label>
      <input
        id="api-key"
        type="password"
        autocomplete="off"
        placeholder="sk-…"
        value={draft}
        onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
      />
      <button type="submit">{saved ? "Update key" : "Save key"}</button>
      <span class="hint">stored in this browser only</span>
    </form>
  );
}

export function Header({ title, other, onKey }: { title: string; other: { href: string; label: string }; onKey: () => void }) {
  return (
    <header class="top">
      <h1>{title}</h1>
      <nav aria-label="Pages">
        <a href={other.href}>{other.label}</a>
      </nav>
      <KeyEntry onChange={onKey} />
    </header>
  );
}

export function ErrorBox({ error }: { error: ApiError | Error }) {
  const api = "status" in error ? (error as ApiError) : undefined;
  return (
    <div class="error" role="alert" data-testid="api-error">
      <strong>{api ? (api.status ? `HTTP ${api.status}` : "Error in the stream") : "Error"}</strong>
      {api?.body.type ? ` ${api.body.type}` : ""}
      {api?.body.code ? ` (${api.body.code})` : ""}: {error.message}
      {api?.body.param ? <div>param: {api.body.param}</div> : null}
    </div>
  );
}
