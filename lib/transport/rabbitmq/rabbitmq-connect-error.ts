/** The RabbitMQ transport could not start: no client package, or no broker to connect to. */
export class RabbitMqConnectError extends Error {
  override readonly name = 'RabbitMqConnectError';
}
