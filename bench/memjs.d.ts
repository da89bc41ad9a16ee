/** The part of memjs (which ships no types) the bench uses. */
declare module 'memjs' {
  export interface ClientOptions {
    expires?: number;
    timeout?: number;
  }
  export class Client {
    static create(servers?: string, options?: ClientOptions): Client;
    get(key: string, callback: (error: Error | null, value: Buffer | null, flags: Buffer | null) => void): void;
    set(key: string, value: string | Buffer, options: { expires?: number }): Promise<boolean>;
    quit(): void;
  }
  const memjs: { Client: typeof Client };
  export default memjs;
}
