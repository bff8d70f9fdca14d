import { Controller, Get, Header, NotFoundException, Param, Post, Sse, type MessageEvent } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { AdminFeed } from './admin-feed.service.js';
import { ADMIN_PAGE } from './admin-page.js';

/**
 * `/admin`: a page with no build step; `/admin/events`: Server-Sent Events; `/admin/state`: counters,
 * rooms and the bus's status; `POST /admin/dead-letters/:id/replay`: replays an event's dead letters.
 */
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

  @Post('dead-letters/:id/replay')
  async replay(@Param('id') id: string): Promise<{ replayed: number }> {
    try {
      return { replayed: await this.feed.replay(id) };
    } catch (error) {
      throw new NotFoundException((error as Error).message);
    }
  }

  @Sse('events')
  events(): Observable<MessageEvent> {
    return this.feed.events().pipe(map((data) => ({ data })));
  }
}
