// A minimal Node app exposing real prom-client metrics, for the tests.
//
//   node prom_metrics.js
//
// Two HTTP listeners, "public" and "admin" (each answers any request with "ok",
// keeping the connection open), and a third one serving GET /metrics:
// prom-client's collectDefaultMetrics() plus the gauge
// bff_http_active_connections{server="public"|"admin"}, which reads each
// listener's open connections (server.getConnections) at every scrape. The
// metrics listener is not counted, so a scrape does not change the numbers.
//
// Prints {"public": port, "admin": port, "metrics": port} as one JSON line once
// all three listen on 127.0.0.1, then runs until stopped by its PID.
"use strict";

const http = require("node:http");
const client = require("prom-client");

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

function listener() {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { "Content-Type": "text/plain", "Content-Length": "2" });
    response.end("ok");
  });
  server.keepAliveTimeout = 0; // a held connection stays open for the whole test
  return server;
}

const servers = { public: listener(), admin: listener() };

new client.Gauge({
  name: "bff_http_active_connections",
  help: "Open HTTP connections per listener.",
  labelNames: ["server"],
  registers: [registry],
  async collect() {
    for (const [name, server] of Object.entries(servers)) {
      const open = await new Promise((resolve, reject) =>
        server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      );
      this.set({ server: name }, open);
    }
  },
});

const metrics = http.createServer(async (request, response) => {
  if (request.method !== "GET" || request.url !== "/metrics") {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await registry.metrics();
    response.writeHead(200, { "Content-Type": registry.contentType }).end(body);
  } catch (error) {
    response.writeHead(500, { "Content-Type": "text/plain" }).end(String(error));
  }
});

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

(async () => {
  const ports = {
    public: await listen(servers.public),
    admin: await listen(servers.admin),
    metrics: await listen(metrics),
  };
  process.stdout.write(JSON.stringify(ports) + "\n");
})().catch((error) => {
  process.stderr.write(`prom_metrics.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
process.on("SIGTERM", () => process.exit(0));
