import { Controller, Get, Header, Sse, type MessageEvent } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { AdminFeed } from './admin-feed.service.js';
import { ADMIN_PAGE } from './admin-page.js';

/** `/admin`: a page with no build step; `/admin/events`: Server-Sent Events; `/admin/state`: counters and rooms. */
@Controller('admin')
export class AdminController {
  constructor(private readonly feed: AdminFeed) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return ADMIN_PAGE;
  }

  @Get('state')
  state() {
    return this.feed.state();
  }

  @Sse('events')
  events(): Observable<MessageEvent> {
    return this.feed.events().pipe(map((data) => ({ data })));
  }
}
