import { MsgHdrsImpl } from '@nats-io/transport-node';
import type { MessageHeaders } from '../event-transport.js';

/** `NATS/1.0\r\n` before the headers, `\r\n` after them. */
const HEADER_BLOCK_FRAMING = 12;

/** @internal nats.js headers from the bus's; their values are valid header values already (the codec percent-encodes them). */
export function natsHeaders(headers: MessageHeaders): MsgHdrsImpl {
  const record: Record<string, string[]> = {};
  for (const [name, values] of headers) record[name] = values as string[];
  return MsgHdrsImpl.fromRecord(record) as MsgHdrsImpl;
}

/** @internal The bytes the headers take on the wire (`Name: value\r\n` each, ASCII), counted toward the server's max_payload. */
export function headerBytes(headers: MessageHeaders): number {
  let bytes = HEADER_BLOCK_FRAMING;
  for (const [name, values] of headers) for (const value of values) bytes += name.length + value.length + 4;
  return bytes;
}
