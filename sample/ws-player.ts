import WebSocket from 'ws';

export interface ServerMessage {
  type: 'entered' | 'left' | 'tick' | 'error';
  room?: string;
  player?: string;
  tick?: number;
  at?: string;
  error?: string;
}

/** A player's WebSocket connection to a sample instance, keeping what it receives (with receipt times). */
export class WsPlayer {
  readonly messages: ServerMessage[] = [];
  readonly receivedAt: number[] = [];
  private waiters: Array<() => void> = [];

  private constructor(
    readonly name: string,
    private readonly socket: WebSocket,
    onMessage?: (message: ServerMessage, player: WsPlayer) => void,
  ) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      this.messages.push(message);
      this.receivedAt.push(Date.now());
      onMessage?.(message, this);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static connect(name: string, port: number, onMessage?: (message: ServerMessage, player: WsPlayer) => void): Promise<WsPlayer> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new WsPlayer(name, socket, onMessage)));
      socket.once('error', reject);
    });
  }

  join(room: string): void {
    this.socket.send(JSON.stringify({ type: 'join', room, player: this.name }));
  }

  leave(): void {
    this.socket.send(JSON.stringify({ type: 'leave' }));
  }

  /** Resolves with the first message (already received or to come) that matches, or rejects after the timeout. */
  async waitFor(matches: (message: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(matches);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}
