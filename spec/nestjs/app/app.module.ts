/**
 * A NestJS 11 application as a Nest developer writes one (express platform, legacy decorators
 * with their metadata), used by spec/nestjs/app.spec.ts in-process and as child processes.
 */
import 'reflect-metadata';
import { HttpModule, HttpService } from '@nestjs/axios';
import {
  Controller,
  Delete,
  Get,
  Injectable,
  Module,
  Param,
  SetMetadata,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { map, Observable } from 'rxjs';
import { Cached, CacheEvict, MemoryBackend, RedisBackend } from 'hoard';
import { HoardModule } from 'hoard/nestjs';

/** What the app reads from configuration; absent REDIS_URL means a MemoryBackend. */
export interface AppSettings {
  REDIS_URL?: string;
  UPSTREAM_URL?: string;
}

export interface Quote {
  id: string;
  price: number;
}

@Injectable()
export class CatsService {
  /** How many times a cached body ran in this application. */
  computed = 0;

  constructor(
    private readonly http: HttpService,
    private readonly config: ConfigService,
  ) {}

  @Cached({ ttl: 60, key: (id: string) => `cat:${id}` })
  async find(id: string) {
    this.computed++;
    return { id, name: `cat ${id}` };
  }

  @CacheEvict({ key: (id: string) => `cat:${id}` })
  async remove(id: string) {
    return { removed: id };
  }

  /** Nest's HttpService returns a cold Observable; hoard caches the response's data. */
  @Cached({ ttl: 60 })
  quote(id: string): Observable<Quote> {
    return this.http
      .get<Quote>(`${this.config.getOrThrow<string>('UPSTREAM_URL')}/quote/${id}`)
      .pipe(map((response) => response.data));
  }
}

const ROLE = 'role';

@Injectable()
export class RoleGuard implements CanActivate {
  static checked: string[] = [];

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const role = this.reflector.get<string | undefined>(ROLE, context.getHandler()) ?? 'none';
    RoleGuard.checked.push(role);
    return role !== 'nobody';
  }
}

@Controller('cats')
export class CatsController {
  constructor(private readonly cats: CatsService) {}

  @Get('stats')
  stats() {
    return { computed: this.cats.computed };
  }

  @Get(':id')
  find(@Param('id') id: string) {
    return this.cats.find(id);
  }

  @Delete(':id')
  remove(@Param('id') id: string) {
    return this.cats.remove(id);
  }

  @Get(':id/quote')
  quote(@Param('id') id: string) {
    return this.cats.quote(id);
  }
}

/** @Cached on handlers, above and below Nest's route, guard and metadata decorators. */
@Controller('order')
export class OrderController {
  handled = 0;

  @Cached({ ttl: 60 })
  @Get('above/:id')
  @UseGuards(RoleGuard)
  @SetMetadata(ROLE, 'reader')
  async above(@Param('id') id: string) {
    this.handled++;
    return { id, at: 'above' };
  }

  @Get('below/:id')
  @UseGuards(RoleGuard)
  @SetMetadata(ROLE, 'reader')
  @Cached({ ttl: 60 })
  async below(@Param('id') id: string) {
    this.handled++;
    return { id, at: 'below' };
  }

  @Cached({ ttl: 60 })
  @Get('closed')
  @UseGuards(RoleGuard)
  @SetMetadata(ROLE, 'nobody')
  async closed() {
    this.handled++;
    return { secret: true };
  }
}

/** A fresh root module reading `settings` through ConfigService, as forRootAsync users do. */
export function createAppModule(settings: AppSettings): Type<unknown> {
  @Module({
    imports: [
      ConfigModule.forRoot({ ignoreEnvFile: true, ignoreEnvVars: true, load: [() => settings] }),
      HoardModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => {
          const url = config.get<string>('REDIS_URL');
          return { backends: url ? new RedisBackend({ url, prefix: 'e2e:' }) : new MemoryBackend() };
        },
      }),
      HttpModule,
    ],
    controllers: [CatsController, OrderController],
    providers: [CatsService, RoleGuard],
  })
  class AppModule {}
  return AppModule;
}
