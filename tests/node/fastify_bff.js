'use strict';
// A Customer Portal BFF on fastify 5.12 with its built-in pino logger (pino 10.4),
// for synthetic's tests. Environment and request parameters: see common.js.
//
// Real behaviour it shows:
// - Two lines per request, both with `reqId`: "incoming request" (req {method,
//   url, host, remoteAddress, remotePort}: no headers, so no User-Agent) and
//   "request completed" (res {statusCode}, responseTime in ms with decimals).
//   Both at level 30, a 5xx included.
// - requestIdHeader 'x-correlation-id' (fastify 5 reads no header unless told):
//   reqId is the X-Correlation-Id header when present, else "req-1", "req-2", ...
// - Outgoing calls (GET /api/calls/:dependency) logged through request.log (so
//   with the request's reqId):
//     success  level 30 {dependency: "whmcs", operation, duration, statusCode} "WHMCS API call completed"
//     failure  level 50 {err, dependency, operation, duration, statusCode?} "WHMCS API call failed"
//   then the app answers 502.
// - ?throw=1 on /api/orders/:id: fastify's default error handler logs the error at
//   level 50 (msg = the error's message, with req, res and err) and answers 500.
// Routes: GET /api/orders/:id, GET /api/calls/:dependency, GET /health, PUT /__test/health.

const Fastify = require('fastify');
const common = require('./common');

async function main() {
  const dependencies = await common.dependencyUrl();
  const health = common.healthState();
  const app = Fastify({
    logger: { level: 'info', stream: common.logStream() },
    requestIdHeader: 'x-correlation-id',
  });

  app.get('/api/orders/:id', async (request, reply) => {
    const params = common.orderParams(request.query);
    await common.sleep(params.delayMs);
    if (params.throws) throw new Error(`order ${request.params.id}: lookup crashed`);
    reply.code(params.status);
    return { id: request.params.id, status: 'active' };
  });

  app.get('/api/calls/:dependency', async (request, reply) => {
    const dependency = request.params.dependency;
    const display = common.DEPENDENCIES[dependency];
    if (!display) {
      reply.code(404);
      return { error: `unknown dependency ${dependency}` };
    }
    const call = await common.callDependency(dependencies.url, dependency, common.callParams(request.query));
    const fields = { dependency, operation: call.operation, duration: call.duration, statusCode: call.statusCode };
    if (call.error) {
      request.log.error({ err: call.error, ...fields }, `${display.name} API call failed`);
      reply.code(502);
      return { error: `${display.name} unavailable` };
    }
    request.log.info(fields, `${display.name} API call completed`);
    return { dependency, result: 'success' };
  });

  app.get('/health', async (request, reply) => {
    const { code, body } = health.guideBody();
    reply.code(code);
    return body;
  });
  app.put('/__test/health', async (request, reply) => {
    try {
      return health.set(request.body);
    } catch (err) {
      reply.code(400);
      return { error: err.message };
    }
  });

  await app.listen({ host: common.host(), port: common.port('PORT', 0) });
  common.announce({ port: app.server.address().port, dependency_port: dependencies.port });
}

main().catch((err) => {
  // The stack for a person, then one line (the last) that says what was wrong.
  process.stderr.write(`${err.stack || err}\nfastify_bff: ${err.message || err}\n`);
  process.exit(1);
});
