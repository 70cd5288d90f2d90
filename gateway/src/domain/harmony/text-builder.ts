/**
 * Text streamed in many small pieces (one per token), kept until its message ends. Appending to a string
 * leaves one cons-string node per piece alive for the message's lifetime — at 64 streams the largest
 * share of what the gateway's young-generation GC has to copy and promote. This keeps one array slot
 * per piece instead and joins them when the text is read.
 */
export class TextBuilder {
  #pieces: string[] = [];
  #text = "";

  append(piece: string): void {
    if (piece) this.#pieces.push(piece);
  }

  get empty(): boolean {
    return this.#text === "" && this.#pieces.length === 0;
  }

  toString(): string {
    if (this.#pieces.length > 0) {
      this.#text += this.#pieces.join("");
      this.#pieces = [];
    }
    return this.#text;
  }
}
