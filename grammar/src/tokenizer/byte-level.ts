/**
 * The byte-level alphabet of GPT-2-style BPE vocabularies (Hugging Face `tokenizers`' ByteLevel): every
 * byte as one printable character, so any byte sequence — part of a UTF-8 character included — is a
 * string. Bytes that are printable Latin-1 (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves; the
 * other 68 (controls, space, DEL, the C1 range, NBSP, soft hyphen) take U+0100 onwards in byte order,
 * so a space reads `Ġ` and a newline `Ċ`. o200k_harmony as Hugging Face ships it (gpt-oss's
 * tokenizer.json) writes its vocabulary in this alphabet: a token's string here is the string
 * `convert_ids_to_tokens` gives, which is what vLLM's /tokenize returns as `token_strs`.
 */

const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);

/** Byte → its character; character code → its byte (-1 outside the alphabet). */
const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Int16Array(0x100 + 68).fill(-1);
{
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const code = printable(b) ? b : next++;
    BYTE_TO_CHAR[b] = String.fromCharCode(code);
    CHAR_TO_BYTE[code] = b;
  }
}

/** Bytes as byte-level characters, one character per byte. */
export function byteLevelString(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}

/** The bytes a byte-level string stands for; null when a character is outside the alphabet. */
export function byteLevelBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE[s.charCodeAt(i)] ?? -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}
