/** The default largest message, in bytes: nats-server's default `max_payload`. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** The longest event id: ids are kept per consumer for redeliveries and idempotency. */
export const MAX_ID_LENGTH = 256;
/** The longest `source`. */
export const MAX_SOURCE_LENGTH = 1024;
/** The longest `datatypes` value, in characters: checked before it is parsed. */
export const MAX_DATATYPES_LENGTH = 65_536;
/** The most digits of a `bigint` (parsing a decimal string takes time quadratic in its length). */
export const MAX_BIGINT_DIGITS = 1_024;
/** The longest string tagged `Date` (an ISO-8601 timestamp has about 30). */
export const MAX_DATE_LENGTH = 64;
