/**
 * The headers of one message, name -> values, as a broker carries them (nats.js `MsgHdrs` is one).
 * Only binary-mode CloudEvents need them; a message without headers has none (undefined).
 */
export type MessageHeaders = Iterable<readonly [name: string, values: readonly string[]]>;
