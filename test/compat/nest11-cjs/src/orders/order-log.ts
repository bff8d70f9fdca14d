import { Injectable } from '@nestjs/common';
import { Money } from './money';
import { OrderPlaced } from './order-placed.event';

/** What the handlers saw, one line each; printed too, for the two-process run. */
@Injectable()
export class OrderLog {
  readonly lines: string[] = [];

  add(handler: string, event: OrderPlaced, where: string): void {
    const typed = event instanceof OrderPlaced && event.total instanceof Money && event.at instanceof Date;
    const line = `handled ${event.orderId} by ${handler} (${where}, ${typed ? 'typed' : 'untyped'})`;
    this.lines.push(line);
    process.stdout.write(`${line}\n`);
  }
}
