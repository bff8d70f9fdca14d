import 'reflect-metadata';
import { MemoryBroker } from '../../lib/index.js';
import { InProcessInstance } from '../support/instances.js';
import { describeEventBusBehaviour } from './event-bus-behaviour.js';

const broker = new MemoryBroker();

describeEventBusBehaviour('the memory transport (instances in one process, codec on)', (name, options) =>
  InProcessInstance.start(name, { ...options, bus: { transport: 'memory', memory: { broker, codec: true } } }),
);
