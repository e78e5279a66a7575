// Real BullMQ jobs in every state, made by Node BullMQ itself, for the tests.
//
//   node bullmq_jobs.js REDIS_URL PREFIX '{"email": {"waiting": 3, "prioritized": 2,
//       "delayed": 4, "active": 1, "completed": 5, "failed": 6, "children": 1,
//       "paused": false}, ...}'
//
// Per queue (every count optional, default 0): `completed` jobs a Worker finishes,
// `failed` jobs whose processor throws, `active` jobs the Worker holds (its
// processor never returns), then, while the Worker's slots are all taken by those,
// `waiting` plain jobs, `prioritized` jobs (priority 1..5), `delayed` jobs (due in
// an hour) and `children` flows (a parent in waiting-children, its child waiting).
// `paused: true` pauses the queue before those are added.
//
// Prints one JSON line, {"bullmq": version, "queues": {name: {"counts":
// getJobCounts(), "paused": getJobCounts("paused").paused, "isPaused": bool}}},
// then keeps running (the Worker keeps holding the active jobs) until stopped by
// its PID. Exits 1 on an error, 2 when the setup takes longer than SETUP_TIMEOUT_MS.
"use strict";

const { Queue, Worker, FlowProducer } = require("bullmq");
const bullmqVersion = require("bullmq/package.json").version;

const SETUP_TIMEOUT_MS = 30000;
const HOUR_MS = 3600 * 1000;

function usage(message) {
  process.stderr.write(`bullmq_jobs.js: ${message}\n`);
  process.exit(1);
}

async function makeQueue(connection, prefix, name, spec) {
  const count = (key) => Number(spec[key] || 0);
  const queue = new Queue(name, { connection, prefix });
  // Jobs for the Worker first, in this order: it takes them first in, first out,
  // so the held ones come last and fill every slot (concurrency = held jobs).
  for (let n = 0; n < count("completed"); n++) await queue.add("ok", { n });
  for (let n = 0; n < count("failed"); n++) await queue.add("fail", { n });
  for (let n = 0; n < count("active"); n++) await queue.add("hold", { n });
  const expected = { finished: count("completed") + count("failed"), held: count("active") };

  let worker = null;
  if (expected.finished + expected.held > 0) {
    const seen = { finished: 0, held: 0 };
    let ready;
    const allThere = new Promise((resolve) => (ready = resolve));
    const progress = () => {
      if (seen.finished === expected.finished && seen.held === expected.held) ready();
    };
    const processor = async (job) => {
      if (job.name === "fail") throw new Error(`provisioning failed for job ${job.id}`);
      if (job.name === "hold") {
        seen.held++;
        progress();
        return new Promise(() => {}); // held until the process ends
      }
      return "sent";
    };
    worker = new Worker(name, processor, {
      connection,
      prefix,
      concurrency: Math.max(1, expected.held),
    });
    worker.on("completed", () => (seen.finished++, progress()));
    worker.on("failed", () => (seen.finished++, progress()));
    worker.on("error", (error) => usage(`worker of ${name}: ${error.message}`));
    await allThere;
    if (expected.held === 0) {
      await worker.close(); // idle: nothing to hold, and it must not take what comes next
      worker = null;
    }
  }

  if (spec.paused) await queue.pause();
  for (let n = 0; n < count("waiting"); n++) await queue.add("send", { n });
  for (let n = 0; n < count("prioritized"); n++) {
    await queue.add("send", { n }, { priority: 1 + (n % 5) });
  }
  for (let n = 0; n < count("delayed"); n++) await queue.add("send", { n }, { delay: HOUR_MS });
  if (count("children") > 0) {
    const flows = new FlowProducer({ connection, prefix });
    for (let n = 0; n < count("children"); n++) {
      await flows.add({
        name: "report",
        queueName: name,
        data: { n },
        children: [{ name: "part", queueName: name, data: { n } }],
      });
    }
    await flows.close();
  }
  return { queue, worker };
}

async function main() {
  const [url, prefix, specText] = process.argv.slice(2);
  if (!url || !prefix || !specText) usage("usage: bullmq_jobs.js REDIS_URL PREFIX QUEUES_JSON");
  let specs;
  try {
    specs = JSON.parse(specText);
  } catch (error) {
    usage(`QUEUES_JSON is not JSON: ${error.message}`);
  }
  const connection = { url };
  const made = {};
  for (const [name, spec] of Object.entries(specs)) {
    made[name] = await makeQueue(connection, prefix, name, spec);
  }
  const queues = {};
  for (const [name, { queue }] of Object.entries(made)) {
    queues[name] = {
      counts: await queue.getJobCounts(),
      paused: (await queue.getJobCounts("paused")).paused,
      isPaused: await queue.isPaused(),
    };
  }
  process.stdout.write(JSON.stringify({ bullmq: bullmqVersion, queues }) + "\n");
}

const timer = setTimeout(() => {
  process.stderr.write(`bullmq_jobs.js: setup took longer than ${SETUP_TIMEOUT_MS} ms\n`);
  process.exit(2);
}, SETUP_TIMEOUT_MS);

main().then(
  () => clearTimeout(timer), // stays up: the Workers hold their active jobs
  (error) => usage(error && error.stack ? error.stack : String(error)),
);
process.on("SIGTERM", () => process.exit(0));
