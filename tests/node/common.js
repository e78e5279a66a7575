'use strict';
// What the three test BFFs (express_bff.js, nest_bff.js, fastify_bff.js) share:
// their environment contract, their log destinations, the request parameters
// that let a test choose each answer, and the loopback stand-in for the
// portal's dependencies (WHMCS, Salesforce, Freebit) that their outgoing
// calls really go to over HTTP.
//
// Environment:
//   HOST (127.0.0.1 only: the tests never listen elsewhere), PORT (0 = a free port)
//   ADMIN_PORT (express_bff.js: its second listener; 0 = a free port)
//   LOG_FILE        every log line (pino, written synchronously); unset: stderr
//   ERROR_LOG_FILE  optional: the lines of level >= 50 once more (pino.multistream,
//                   as real portals keep an error.log beside combined.log)
//   DEPENDENCY_URL  optional: where the outgoing calls go; unset: a stand-in
//                   server this process starts on a free loopback port
// When ready, each app prints one JSON line on stdout: {"port": N, ...}.

const http = require('node:http');
const pino = require('pino');

const LOOPBACK = '127.0.0.1';

// The display names real portals use in their messages ("WHMCS API call ...").
const DEPENDENCIES = {
  whmcs: { name: 'WHMCS', operation: 'GetClientsDetails' },
  salesforce: { name: 'Salesforce', operation: 'query Account' },
  freebit: { name: 'Freebit', operation: 'getSimStatus' },
};

function host() {
  const value = process.env.HOST || LOOPBACK;
  if (value !== LOOPBACK) {
    throw new Error(`HOST must be ${LOOPBACK} (test apps listen on loopback only), got ${value}`);
  }
  return value;
}

function port(name, fallback) {
  const raw = process.env[name] ?? String(fallback);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new Error(`${name} must be a port number (0 for a free one), got ${raw}`);
  }
  return value;
}

// Synchronous destinations: a line is in the file before the response that
// follows it is sent, so a test can read the file as soon as it has its answer.
function logStream() {
  const combined = process.env.LOG_FILE
    ? pino.destination({ dest: process.env.LOG_FILE, sync: true, mkdir: true })
    : pino.destination({ dest: 2, sync: true });
  const streams = [{ level: 'info', stream: combined }];
  if (process.env.ERROR_LOG_FILE) {
    const errors = pino.destination({ dest: process.env.ERROR_LOG_FILE, sync: true, mkdir: true });
    streams.push({ level: 'error', stream: errors });
  }
  return pino.multistream(streams);
}

function intParam(query, name, fallback) {
  const raw = query[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`query parameter ${name} must be a whole number >= 0, got ${raw}`);
  }
  return value;
}

// ?status=500&delay_ms=2500 on /api/orders/:id (and ?throw=1: the handler throws).
function orderParams(query) {
  return {
    status: intParam(query, 'status', 200),
    delayMs: intParam(query, 'delay_ms', 0),
    throws: query.throw === '1',
  };
}

// ?fail=1|reset&delay_ms=&status= on /api/calls/:dependency: what the dependency does.
function callParams(query) {
  const fail = query.fail || '';
  return {
    fail,
    delayMs: intParam(query, 'delay_ms', 0),
    status: intParam(query, 'status', fail === '1' ? 503 : 200),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The stand-in dependency: GET /<dependency>/<operation>?status=&delay_ms=&fail=
// answers that status after that delay; fail=reset drops the connection instead
// (a failed call with no status, as a real network error is).
function startDependencyStub() {
  const server = http.createServer(async (req, res) => {
    const query = Object.fromEntries(new URL(req.url, 'http://stub').searchParams);
    await sleep(intParam(query, 'delay_ms', 0));
    if (query.fail === 'reset') {
      req.socket.destroy();
      return;
    }
    const status = intParam(query, 'status', 200);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ result: status < 400 ? 'success' : 'error' }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve({ server, url: `http://${LOOPBACK}:${server.address().port}` }));
  });
}

async function dependencyUrl() {
  if (process.env.DEPENDENCY_URL) return { url: process.env.DEPENDENCY_URL.replace(/\/$/, ''), port: null };
  const stub = await startDependencyStub();
  return { url: stub.url, port: stub.server.address().port };
}

// One outgoing call, timed the way portals time theirs (Date.now() around the
// fetch). Resolves to {statusCode, duration, error}: error is set for a
// non-2xx answer and for a network failure (then statusCode is undefined).
async function callDependency(baseUrl, dependency, params) {
  const { operation } = DEPENDENCIES[dependency];
  const query = new URLSearchParams({ status: String(params.status), delay_ms: String(params.delayMs) });
  if (params.fail === 'reset') query.set('fail', 'reset');
  const url = `${baseUrl}/${dependency}/${encodeURIComponent(operation)}?${query}`;
  const started = Date.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(30000) });
    await response.arrayBuffer();
    const duration = Date.now() - started;
    const error = response.ok ? null : new Error(`${DEPENDENCIES[dependency].name} answered HTTP ${response.status}`);
    return { operation, statusCode: response.status, duration, error };
  } catch (err) {
    return { operation, statusCode: undefined, duration: Date.now() - started, error: err };
  }
}

// Health of the guide's /health (database, cache) and /auth/health-check
// (database, whmcs, salesforce) indicators, switched at run time by a test
// with PUT /__test/health {"whmcs": "down"}. healthState({ messages: true })
// (nest_bff.js, whose terminus indicators carry a message) also takes
// {"whmcs": {"status": "down", "message": "..."}}; the guide's bodies have no
// place for one, so the other apps refuse it rather than drop it.
function healthState({ messages = false } = {}) {
  const state = { database: 'up', cache: 'up', whmcs: 'up', salesforce: 'up' };
  const downMessages = {};
  const wanted = messages ? 'up|down or {"status": "down", "message": "..."}' : 'up|down';
  // One value of the body as {status, message}, or null when it is not one.
  const parse = (value) => {
    if (value === 'up' || value === 'down') return { status: value, message: undefined };
    if (!messages || typeof value !== 'object' || value === null) return null;
    const { status, message, ...rest } = value;
    if (status !== 'down' || typeof message !== 'string' || Object.keys(rest).length > 0) return null;
    return { status, message };
  };
  return {
    get: (name) => state[name],
    // The message a test gave with "down", or undefined (the app says its own).
    message: (name) => downMessages[name],
    set(body) {
      // Every value checked before any is applied: a refused switch changes nothing.
      const changes = Object.entries(body || {}).map(([name, value]) => {
        const parsed = name in state ? parse(value) : null;
        if (parsed === null) {
          throw new Error(`health switch: ${name} must be one of ${Object.keys(state)} set to ${wanted}`);
        }
        return [name, parsed];
      });
      for (const [name, { status, message }] of changes) {
        state[name] = status;
        downMessages[name] = message;
      }
      return { ...state };
    },
    // The guide's /health body: {"status": "ok", "checks": {"database": "ok", "cache": "ok"}};
    // a down check makes it {"status": "degraded", "checks": {..., "cache": "fail"}} with a 503.
    guideBody() {
      const checks = { database: state.database === 'up' ? 'ok' : 'fail', cache: state.cache === 'up' ? 'ok' : 'fail' };
      const healthy = Object.values(checks).every((value) => value === 'ok');
      return { code: healthy ? 200 : 503, body: { status: healthy ? 'ok' : 'degraded', checks } };
    },
  };
}

function announce(fields) {
  process.stdout.write(`${JSON.stringify({ pid: process.pid, ...fields })}\n`);
}

module.exports = {
  DEPENDENCIES,
  announce,
  callDependency,
  callParams,
  dependencyUrl,
  healthState,
  host,
  logStream,
  orderParams,
  port,
  sleep,
};
