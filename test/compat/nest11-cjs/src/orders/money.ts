import { ValueObject } from 'nestjs-domain-events';

@ValueObject()
export class Money {
  constructor(
    readonly amount: number,
    readonly currency: string,
  ) {}
}
