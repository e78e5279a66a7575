'use strict';
// A Customer Portal BFF on express 5.3 + pino-http 11.0 (pino 10.4) with
// pino-http's DEFAULTS, and prom-client 15.1 metrics, for synthetic's tests.
// Environment and request parameters: see common.js.
//
// Real behaviour it shows (that is why it is here):
// - pino-http's one line per response: "request completed" with req {id, method,
//   url, query, params, headers, remoteAddress, remotePort}, res {statusCode,
//   headers}, responseTime (ms). No customLogLevel: a 5xx is logged at level 30
//   ("request errored", with err "failed with status code 500"), so a 5xx never
//   counts as an error line. The default serializers log every request header.
// - req.id from genReqId: the X-Correlation-Id header when present, else a counter.
// - Lines logged through req.log carry the whole `req` too (so the request's id).
// - Outgoing calls (GET /api/calls/:dependency) logged through req.log:
//     success  level 30 {dependency: "whmcs", operation, duration, statusCode} "WHMCS API call completed"
//     failure  level 50 {err, dependency, operation, duration, statusCode?} "WHMCS API call failed"
//   (statusCode absent when the connection failed), then the app answers 502.
// - ?throw=1 on /api/orders/:id: the handler throws; the error middleware logs
//   level 50 {err} "Unhandled error" and answers 500.
// - Two listeners, public (PORT) and admin (ADMIN_PORT): /metrics on both gives
//   collectDefaultMetrics() plus bff_http_active_connections{server="public"|"admin"},
//   each from its own server's getConnections().
// - What prom-client apps export about their traffic (counted on 'finish', as
//   pino-http logs it, for every request of the public listener):
//     http_requests_total{method, route, status}   status by class: "2xx" ... "5xx"
//     http_request_duration_seconds{method, route}  a histogram
//     bff_dependency_duration_seconds{dependency, outcome="success"|"error"}
//   Buckets 5 ms ... 10 s with a boundary at 2 s (the guide's slow request). The
//   series the app knows it will have are exported at 0 from the start (the
//   Prometheus practice for series that may exist): an increase() over a window
//   then counts the first requests too.
// Routes: GET /api/orders/:id, GET /api/calls/:dependency, GET /health,
// PUT /__test/health, GET /metrics (public and admin).

const http = require('node:http');
const express = require('express');
const pino = require('pino');
const pinoHttp = require('pino-http');
const client = require('prom-client');
const common = require('./common');

async function main() {
  const logger = pino({ level: 'info' }, common.logStream());
  const dependencies = await common.dependencyUrl();
  const health = common.healthState();

  let nextId = 0;
  const httpLogger = pinoHttp({
    logger,
    genReqId: (req) => req.headers['x-correlation-id'] || ++nextId,
  });

  client.collectDefaultMetrics();
  const servers = {};
  const connections = (server) =>
    new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
  new client.Gauge({
    name: 'bff_http_active_connections',
    help: 'Open HTTP connections per listener',
    labelNames: ['server'],
    async collect() {
      for (const [name, server] of Object.entries(servers)) {
        this.set({ server: name }, await connections(server));
      }
    },
  });
  const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];
  const ROUTES = ['/api/orders/:id', '/api/calls/:dependency'];
  const requestsTotal = new client.Counter({
    name: 'http_requests_total',
    help: 'Requests answered, by route and status class',
    labelNames: ['method', 'route', 'status'],
  });
  const requestDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer a request',
    labelNames: ['method', 'route'],
    buckets: BUCKETS,
  });
  const dependencyDuration = new client.Histogram({
    name: 'bff_dependency_duration_seconds',
    help: 'Time of outgoing calls to the dependencies',
    labelNames: ['dependency', 'outcome'],
    buckets: BUCKETS,
  });
  for (const route of ROUTES) {
    for (const status of ['2xx', '3xx', '4xx', '5xx']) requestsTotal.inc({ method: 'GET', route, status }, 0);
    requestDuration.zero({ method: 'GET', route });
  }
  for (const dependency of Object.keys(common.DEPENDENCIES)) {
    for (const outcome of ['success', 'error']) dependencyDuration.zero({ dependency, outcome });
  }
  const countRequests = (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = req.route ? req.baseUrl + req.route.path : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      requestsTotal.inc({ method: req.method, route, status: `${Math.floor(res.statusCode / 100)}xx` });
      requestDuration.observe({ method: req.method, route }, seconds);
    });
    next();
  };

  const metrics = async (req, res) => {
    res.set('Content-Type', client.register.contentType);
    res.end(await client.register.metrics());
  };
  const guideHealth = (req, res) => {
    const { code, body } = health.guideBody();
    res.status(code).json(body);
  };

  const app = express();
  app.use(httpLogger);
  app.use(countRequests);
  app.use(express.json());

  app.get('/api/orders/:id', async (req, res) => {
    const params = common.orderParams(req.query);
    await common.sleep(params.delayMs);
    if (params.throws) throw new Error(`order ${req.params.id}: lookup crashed`);
    res.status(params.status).json({ id: req.params.id, status: 'active' });
  });

  app.get('/api/calls/:dependency', async (req, res) => {
    const dependency = req.params.dependency;
    const display = common.DEPENDENCIES[dependency];
    if (!display) {
      res.status(404).json({ error: `unknown dependency ${dependency}` });
      return;
    }
    const call = await common.callDependency(dependencies.url, dependency, common.callParams(req.query));
    const fields = { dependency, operation: call.operation, duration: call.duration, statusCode: call.statusCode };
    dependencyDuration.observe({ dependency, outcome: call.error ? 'error' : 'success' }, call.duration / 1000);
    if (call.error) {
      req.log.error({ err: call.error, ...fields }, `${display.name} API call failed`);
      res.status(502).json({ error: `${display.name} unavailable` });
      return;
    }
    req.log.info(fields, `${display.name} API call completed`);
    res.json({ dependency, result: 'success' });
  });

  app.get('/health', guideHealth);
  app.put('/__test/health', (req, res) => {
    try {
      res.json(health.set(req.body));
    } catch (err) {
      res.status(400).json({ error: err.message });
    }
  });
  app.get('/metrics', metrics);

  // Express 5 passes a rejected async handler's error here.
  app.use((err, req, res, next) => {
    req.log.error({ err }, 'Unhandled error');
    res.status(500).json({ error: 'Internal Server Error' });
  });

  const admin = express();
  admin.get('/metrics', metrics);
  admin.get('/health', guideHealth);

  const listen = (handler, portNumber) =>
    new Promise((resolve, reject) => {
      const server = http.createServer(handler);
      server.once('error', reject);
      server.listen(portNumber, common.host(), () => resolve(server));
    });
  servers.public = await listen(app, common.port('PORT', 0));
  servers.admin = await listen(admin, common.port('ADMIN_PORT', 0));
  logger.info({ port: servers.public.address().port, adminPort: servers.admin.address().port }, 'BFF listening');
  common.announce({
    port: servers.public.address().port,
    admin_port: servers.admin.address().port,
    dependency_port: dependencies.port,
  });
}

main().catch((err) => {
  // The stack for a person, then one line (the last) that says what was wrong.
  process.stderr.write(`${err.stack || err}\nexpress_bff: ${err.message || err}\n`);
  process.exit(1);
});
