/** What main.ts asks the two processes of the tiered example, and what they answer. */
export type Command =
  | { type: 'seed'; item: string; price: number }
  | { type: 'read'; item: string }
  | { type: 'write'; item: string; price: number }
  | { type: 'watch'; item: string; withinMs: number }
  | { type: 'close' };

export type Reply =
  | { type: 'done' }
  | { type: 'price'; price: number; from: string }
  | { type: 'watched'; dropped: boolean; at: number };
