// `node --import` this file to run a process as if rabbitmq-client were not installed.
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  if (specifier === 'rabbitmq-client' || specifier.startsWith('rabbitmq-client/')) {
    const error = new Error("Cannot find package 'rabbitmq-client' imported from " + context.parentURL);
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
