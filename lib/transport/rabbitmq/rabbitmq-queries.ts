import { randomUUID } from 'node:crypto';
import type { AsyncMessage, Connection, Envelope } from 'rabbitmq-client';
import { Header, wireCount } from './rabbitmq-topology.js';

/** How long reading a stream up to its end may take. */
const READ_TIMEOUT_MS = 60_000;
/** Records read ahead of the one being visited. */
const READ_AHEAD = 1_000;
const NO_BODY = Buffer.alloc(0);

/** @internal Sends a message and resolves once the broker confirmed it. */
export type ConfirmedSend = (envelope: Envelope, body: Buffer) => Promise<void>;

/** Where a stream read starts: an offset, `first`, or an interval back from now (`90s`). */
export type StreamStart = number | string;

/**
 * @internal Reads a stream from `from` up to a marker appended now, visiting the records before it
 * one at a time (a stream has no end to ask for, so a reader appends its own). `visit` may be
 * async: the next record waits for it.
 */
export async function readStream(
  connection: Connection,
  send: ConfirmedSend,
  stream: string,
  from: StreamStart,
  visit: (message: AsyncMessage, offset: number) => void | Promise<void>,
): Promise<void> {
  const marker = randomUUID();
  await send({ routingKey: stream, durable: true, headers: { [Header.Marker]: marker } }, NO_BODY);
  const channel = await connection.acquire();
  let timer: NodeJS.Timeout | undefined;
  try {
    await channel.basicQos({ prefetchCount: READ_AHEAD });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`reading ${stream} took longer than ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS);
      channel.once('close', () => reject(new Error(`the channel reading ${stream} closed`)));
      let done = false;
      let visited: Promise<void> = Promise.resolve();
      channel
        .basicConsume({ queue: stream, arguments: { 'x-stream-offset': from } }, (message) => {
          visited = visited
            .then(async () => {
              if (done) return; // read ahead past the marker
              if (message.headers?.[Header.Marker] === marker) {
                done = true;
                return resolve();
              }
              await visit(message, wireCount(message.headers?.['x-stream-offset']));
              channel.basicAck({ deliveryTag: message.deliveryTag });
            })
            .catch((error: Error) => {
              done = true;
              reject(error);
            });
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await channel.close().catch(() => undefined);
  }
}

/** @internal Whether a queue exists; asked on a channel of its own, since a passive declare of a missing queue closes it. */
export async function queueExists(connection: Connection, queue: string): Promise<boolean> {
  const channel = await connection.acquire();
  try {
    await channel.queueDeclare({ queue, passive: true });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'NOT_FOUND') return false;
    throw error;
  } finally {
    await channel.close().catch(() => undefined);
  }
}
