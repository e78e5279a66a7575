// A minimal NestJS BFF whose health endpoints are @nestjs/terminus's own, for
// tests/test_health_terminus.py: GET /health (database, cache) and
// GET /auth/health-check (database, whmcs, salesforce), answered by terminus's
// HealthCheckService (HTTP 503 with its JSON body when an indicator is down).
//
// Plain CommonJS: decorators are applied as functions. The packages come from
// NODE_PATH (.ci/tools/node_modules); Nest 12 is ESM, loaded by require(esm)
// (Node >= 20.19).
//
//   PORT=0 node tests/node/terminus_health.js   ->  prints {"port": N} when ready
//   PUT /__test/health {"whmcs": "down"}         ->  switches indicators at run time
//   PUT /__test/health {"whmcs": {"status": "down", "message": "..."}}
// A status is "up", "down" or "degraded". A down indicator fails the way a
// real one does: its check throws, and terminus's attempt() marks it down with
// the error's message.
"use strict";

require("reflect-metadata");
const { NestFactory } = require("@nestjs/core");
const {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Module,
  Put,
  BadRequestException,
} = require("@nestjs/common");
const { HealthCheck, HealthCheckService, HealthIndicatorService, TerminusModule } = require(
  "@nestjs/terminus",
);

const STATUSES = new Set(["up", "down", "degraded"]);
const state = {
  database: { status: "up" },
  cache: { status: "up" },
  whmcs: { status: "up" },
  salesforce: { status: "up" },
};

function indicator(indicators, name) {
  const current = state[name];
  if (current.status === "degraded") {
    return () => indicators.check(name).degraded({ message: current.message ?? "slow answers" });
  }
  return () =>
    indicators.check(name).attempt(async () => {
      if (current.status === "down") {
        throw new Error(current.message ?? `connect ECONNREFUSED 127.0.0.1:1 (${name})`);
      }
      return {};
    });
}

class HealthController {
  constructor(health, indicators) {
    this.health = health;
    this.indicators = indicators;
  }

  core() {
    return this.health.check(["database", "cache"].map((n) => indicator(this.indicators, n)));
  }

  integrations() {
    return this.health.check(
      ["database", "whmcs", "salesforce"].map((n) => indicator(this.indicators, n)),
    );
  }

  set(body) {
    if (typeof body !== "object" || body === null) {
      throw new BadRequestException('expected JSON like {"whmcs": "down"}');
    }
    for (const [name, wanted] of Object.entries(body)) {
      const entry = typeof wanted === "string" ? { status: wanted } : wanted;
      if (!(name in state) || !entry || !STATUSES.has(entry.status)) {
        throw new BadRequestException(`bad indicator or status: ${name}`);
      }
      state[name] = { status: entry.status, message: entry.message };
    }
    return state;
  }
}

function method(cls, name, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  for (const decorate of decorators) decorate(cls.prototype, name, descriptor);
}

Controller()(HealthController);
Inject(HealthCheckService)(HealthController, undefined, 0);
Inject(HealthIndicatorService)(HealthController, undefined, 1);
method(HealthController, "core", Get("health"), HealthCheck());
method(HealthController, "integrations", Get("auth/health-check"), HealthCheck());
method(HealthController, "set", Put("__test/health"), HttpCode(200));
Body()(HealthController.prototype, "set", 0);

class AppModule {}
Module({ imports: [TerminusModule.forRoot()], controllers: [HealthController] })(AppModule);

async function main() {
  const app = await NestFactory.create(AppModule, { logger: ["error", "warn"] });
  await app.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
  const { port } = app.getHttpServer().address();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const stop = () => app.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
