const { TestEnvironment } = require('jest-environment-node');

const TEST_LOGS = Symbol.for('nestjs-domain-events:test-logs');

/** The Node environment, telling test/support/test-logs.ts when each test ends and whether it failed. */
class LogOnFailureEnvironment extends TestEnvironment {
  handleTestEvent(event) {
    const logs = this.global[TEST_LOGS];
    if (!logs) return;
    if (event.name === 'test_done') logs.end(event.test.errors.length > 0 ? event.test.name : undefined);
    else if (event.name === 'hook_failure') logs.end(`${event.hook.type} of "${event.hook.parent.name}"`);
  }
}

module.exports = LogOnFailureEnvironment;
