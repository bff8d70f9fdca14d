import { MemoryBroker, MemoryTransport } from '../../lib/index.js';
import { describeTransportConformance } from './transport-conformance.js';

for (const encodes of [true, false]) {
  describeTransportConformance(`memory (${encodes ? 'through the codec' : 'objects by reference'})`, () => ({
    prefix: 'conformance',
    echoesOwnBroadcast: false,
    durable: false,
    async connect(count) {
      const broker = new MemoryBroker();
      return Array.from({ length: count }, () => new MemoryTransport(broker, encodes));
    },
    async teardown() {},
  }));
}
