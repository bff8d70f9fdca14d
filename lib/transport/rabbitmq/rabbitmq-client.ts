import type * as RabbitMqClient from 'rabbitmq-client';
import { RabbitMqConnectError } from './rabbitmq-connect-error.js';

/** The npm package of the RabbitMQ client: an optional peer dependency, loaded only when the transport is. */
export const RABBITMQ_CLIENT_PACKAGE = 'rabbitmq-client';

export type RabbitMqClientModule = typeof RabbitMqClient;

/** Loads the client, or fails saying what to install: applications on other transports never need it. */
export async function loadRabbitMqClient(): Promise<RabbitMqClientModule> {
  try {
    const loaded = (await import(RABBITMQ_CLIENT_PACKAGE)) as RabbitMqClientModule & { default?: RabbitMqClientModule };
    return loaded.Connection ? loaded : loaded.default!;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new RabbitMqConnectError(
        `EVENT_BUS_TRANSPORT=rabbitmq needs the RabbitMQ client: npm install ${RABBITMQ_CLIENT_PACKAGE} (an optional peer dependency of nestjs-domain-events)`,
        { cause: error },
      );
    }
    throw error;
  }
}
