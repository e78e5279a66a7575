'use strict';
// A Customer Portal BFF on NestJS 11.2 (@nestjs/core, common, platform-express)
// + nestjs-pino 4.6 (pino-http 11.0, pino 10.4) + @nestjs/terminus 11.1, for
// synthetic's tests. Plain CommonJS: the decorators a TypeScript portal writes
// as @Controller(...) are applied here as functions, and constructor
// parameters are injected with Inject(...) (there is no emitted type metadata).
// Environment and request parameters: see common.js.
//
// Real behaviour it shows:
// - Request lines from pino-http through LoggerModule.forRoot({pinoHttp: [options, stream]}),
//   configured as portals commonly do: genReqId = X-Correlation-Id header or a
//   random UUID, customLogLevel (5xx or an error: 50, 4xx: 40, else 30), the
//   authorization and cookie headers redacted. So unlike express_bff.js, a 5xx
//   request line IS an error line here. Shape: req {id, method, url, query,
//   params, headers, remoteAddress, remotePort}, res {statusCode, headers},
//   responseTime, msg "request completed" / "request errored".
// - app.useLogger(app.get(Logger)) with bufferLogs: Nest's own startup lines
//   (context InstanceLoader, RoutesResolver, RouterExplorer, NestApplication)
//   and every `new Logger(Service.name)` line go to the same pino file with
//   `context`; lines logged while serving a request carry its `req` (nestjs-pino
//   binds the request logger with AsyncLocalStorage).
// - WhmcsService, SalesforceService, FreebitService log each outgoing call:
//     success  level 30 {context: "WhmcsService", operation, duration, statusCode} "WHMCS API call completed"
//     failure  the Nest idiom logger.error(message, err.stack): nestjs-pino turns it
//              into level 50 {context, err: {type, message, stack}} with the message
//              ("WHMCS API call failed: GetClientsDetails after 12ms: ...") in err.message,
//              no duration or statusCode field; then the app answers 502.
// - ?throw=1 on /api/orders/:id: a plain Error that Nest's ExceptionsHandler logs
//   (level 50, context "ExceptionsHandler") and answers 500; ?status=5xx throws an
//   HttpException, which Nest does not log (only the request line shows it).
// - @nestjs/terminus: GET /health (database, cache) and GET /auth/health-check
//   (database, whmcs, salesforce); PUT /__test/health {"whmcs": "down"} switches an
//   indicator (its message "whmcs unreachable"), {"whmcs": {"status": "down",
//   "message": "..."}} with a message of the test's. A down indicator gives
//   terminus's real 503 {"status": "error", "info", "error", "details"} and its
//   level-50 "Health Check has failed! {...}" line. Terminus 11 has only "up" and
//   "down" (HealthIndicatorSession.degraded came in terminus 12).

require('reflect-metadata');
const nest = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { LoggerModule, Logger } = require('nestjs-pino');
const { TerminusModule, HealthCheckService, HealthCheck, HealthIndicatorService } = require('@nestjs/terminus');
const { randomUUID } = require('node:crypto');
const common = require('./common');

const DEPENDENCY_URL = 'DEPENDENCY_URL';
const HEALTH_STATE = 'HEALTH_STATE';

// Decorators as functions: what TypeScript emits for @Get() m(@Param('id') id).
function method(Cls, name, ...decorators) {
  const proto = Cls.prototype;
  for (const decorator of decorators) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    const result = decorator(proto, name, descriptor);
    if (result) Object.defineProperty(proto, name, result);
  }
}
function parameters(Cls, name, ...decorators) {
  decorators.forEach((decorator, index) => decorator(Cls.prototype, name, index));
}
function inject(Cls, ...tokens) {
  tokens.forEach((token, index) => nest.Inject(token)(Cls, undefined, index));
}

// One service per dependency, as portals have them, each logging under its own
// context (new Logger(WhmcsService.name)).
class DependencyService {
  constructor(baseUrl, dependency, context) {
    this.baseUrl = baseUrl;
    this.dependency = dependency;
    this.display = common.DEPENDENCIES[dependency].name;
    this.logger = new nest.Logger(context);
  }

  async call(params) {
    const call = await common.callDependency(this.baseUrl, this.dependency, params);
    if (call.error) {
      this.logger.error(
        `${this.display} API call failed: ${call.operation} after ${call.duration}ms: ${call.error.message}`,
        call.error.stack,
      );
      throw new nest.BadGatewayException(`${this.display} unavailable`);
    }
    this.logger.log(
      { operation: call.operation, duration: call.duration, statusCode: call.statusCode },
      `${this.display} API call completed`,
    );
    return { dependency: this.dependency, result: 'success' };
  }
}
class WhmcsService extends DependencyService {
  constructor(baseUrl) {
    super(baseUrl, 'whmcs', WhmcsService.name);
  }
}
class SalesforceService extends DependencyService {
  constructor(baseUrl) {
    super(baseUrl, 'salesforce', SalesforceService.name);
  }
}
class FreebitService extends DependencyService {
  constructor(baseUrl) {
    super(baseUrl, 'freebit', FreebitService.name);
  }
}
for (const Service of [WhmcsService, SalesforceService, FreebitService]) {
  nest.Injectable()(Service);
  inject(Service, DEPENDENCY_URL);
}

class OrdersController {
  async get(id, query, res) {
    const params = common.orderParams(query);
    await common.sleep(params.delayMs);
    if (params.throws) throw new Error(`order ${id}: lookup crashed`);
    if (params.status >= 400) throw new nest.HttpException(`order ${id}: lookup failed`, params.status);
    res.status(params.status);
    return { id, status: 'active' };
  }
}
nest.Controller('api/orders')(OrdersController);
method(OrdersController, 'get', nest.Get(':id'));
parameters(OrdersController, 'get', nest.Param('id'), nest.Query(), nest.Res({ passthrough: true }));

class CallsController {
  constructor(whmcs, salesforce, freebit) {
    this.services = { whmcs, salesforce, freebit };
  }

  call(dependency, query) {
    const service = this.services[dependency];
    if (!service) throw new nest.NotFoundException(`unknown dependency ${dependency}`);
    return service.call(common.callParams(query));
  }
}
nest.Controller('api/calls')(CallsController);
inject(CallsController, WhmcsService, SalesforceService, FreebitService);
method(CallsController, 'call', nest.Get(':dependency'));
parameters(CallsController, 'call', nest.Param('dependency'), nest.Query());

class HealthController {
  constructor(health, indicators, state) {
    this.health = health;
    this.indicators = indicators;
    this.state = state;
  }

  indicator(name) {
    return async () => {
      const session = this.indicators.check(name);
      if (this.state.get(name) === 'up') return session.up();
      return session.down({ message: this.state.message(name) ?? `${name} unreachable` });
    };
  }

  check() {
    return this.health.check(['database', 'cache'].map((name) => this.indicator(name)));
  }

  authCheck() {
    return this.health.check(['database', 'whmcs', 'salesforce'].map((name) => this.indicator(name)));
  }

  switchHealth(body) {
    try {
      return this.state.set(body);
    } catch (err) {
      throw new nest.BadRequestException(err.message);
    }
  }
}
nest.Controller()(HealthController);
inject(HealthController, HealthCheckService, HealthIndicatorService, HEALTH_STATE);
method(HealthController, 'check', nest.Get('health'), HealthCheck());
method(HealthController, 'authCheck', nest.Get('auth/health-check'), HealthCheck());
method(HealthController, 'switchHealth', nest.Put('__test/health'));
parameters(HealthController, 'switchHealth', nest.Body());

function appModule(dependencyUrl) {
  class AppModule {}
  nest.Module({
    imports: [
      LoggerModule.forRoot({
        pinoHttp: [
          {
            level: 'info',
            genReqId: (req) => req.headers['x-correlation-id'] || randomUUID(),
            customLogLevel: (req, res, err) => {
              if (err || res.statusCode >= 500) return 'error';
              if (res.statusCode >= 400) return 'warn';
              return 'info';
            },
            redact: ['req.headers.authorization', 'req.headers.cookie'],
          },
          common.logStream(),
        ],
      }),
      TerminusModule.forRoot(),
    ],
    controllers: [OrdersController, CallsController, HealthController],
    providers: [
      { provide: DEPENDENCY_URL, useValue: dependencyUrl },
      { provide: HEALTH_STATE, useValue: common.healthState({ messages: true }) },
      WhmcsService,
      SalesforceService,
      FreebitService,
    ],
  })(AppModule);
  return AppModule;
}

async function main() {
  const host = common.host();
  const port = common.port('PORT', 0);
  const dependencies = await common.dependencyUrl();
  const app = await NestFactory.create(appModule(dependencies.url), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  await app.listen(port, host);
  common.announce({ port: app.getHttpServer().address().port, dependency_port: dependencies.port });
}

main().catch((err) => {
  // The stack for a person, then one line (the last) that says what was wrong.
  process.stderr.write(`${err.stack || err}\nnest_bff: ${err.message || err}\n`);
  process.exit(1);
});
