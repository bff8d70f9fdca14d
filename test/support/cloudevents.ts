import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { CloudEvent, HTTP, type Message } from 'cloudevents';

/** A message as a foreign producer puts it on NATS: a body, and headers for binary mode. */
export interface RawMessage {
  readonly body: string | Uint8Array;
  readonly headers?: Record<string, string>;
}

/** A structured-mode OrderPlaced as a foreign producer would write it, with `fields` replacing or removing (undefined) members. */
export function orderPlaced(orderId: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    specversion: '1.0', id: `${orderId}-id`, source: '/hostile', type: 'OrderPlaced', time: '2026-11-24T10:00:00Z',
    datacontenttype: 'application/json', data: { orderId, total: 42 }, ...fields,
  });
}

export function toNatsHeaders(record: Record<string, string> | undefined): MsgHdrs | undefined {
  if (!record) return undefined;
  const h = natsHeaders();
  for (const [name, value] of Object.entries(record)) h.set(name, value);
  return h;
}

/**
 * OrderPlaced events made by the official CloudEvents SDK, as it puts them on the wire (its HTTP
 * binding maps to NATS headers one to one): structured and binary, with JSON data and with binary
 * data (`data_base64` in structured mode). Their order ids start with `prefix`.
 */
export function sdkOrders(prefix: string): RawMessage[] {
  const json = new CloudEvent({ type: 'OrderPlaced', source: '/sdk', data: { orderId: `${prefix}-json`, total: 42 } });
  const bytes = new CloudEvent({
    type: 'OrderPlaced', source: '/sdk', datacontenttype: 'application/json',
    data: Buffer.from(JSON.stringify({ orderId: `${prefix}-base64`, total: 42 })),
  });
  const asBinary = (event: CloudEvent<unknown>, orderId: string): RawMessage => {
    const { headers, body } = HTTP.binary(event.cloneWith({ id: `${event.id}-binary`, data: patched(event.data, orderId) }));
    return { headers: headers as Record<string, string>, body: body as string | Uint8Array };
  };
  return [
    { body: HTTP.structured(json).body as string },
    { body: HTTP.structured(bytes).body as string },
    asBinary(json, `${prefix}-json-binary`),
    asBinary(bytes, `${prefix}-base64-binary`),
  ];
}

function patched(data: unknown, orderId: string): unknown {
  if (data instanceof Uint8Array) return Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(data).toString()), orderId }));
  return { ...(data as object), orderId };
}

/** The SDK's reading of a NATS message (the NATS binding's `ce-datacontenttype` is the HTTP binding's `content-type`). */
export function sdkEvent(body: Uint8Array, headers: MsgHdrs | undefined): CloudEvent<unknown> {
  const record: Record<string, string> = { 'content-type': 'application/cloudevents+json' };
  if (headers) {
    delete record['content-type'];
    for (const [name, values] of headers) record[name.toLowerCase() === 'ce-datacontenttype' ? 'content-type' : name.toLowerCase()] = decodeURIComponent(values[0]);
  }
  const message: Message = { headers: record, body: Buffer.from(body).toString() };
  return HTTP.toEvent(message) as CloudEvent<unknown>;
}
