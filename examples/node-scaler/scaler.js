#!/usr/bin/env node
// A line-count scaler for ebb, in JavaScript on @grpc/grpc-js.
//
// It scales on the number of non-empty lines in a file (a work list with one job per line), and
// serves on one port: ebb's `ebb.scaler.v1` (with the GetInfo metadata schema), KEDA's
// `externalscaler.ExternalScaler`, `grpc.health.v1` and server reflection.
//
// There is no generated code: @grpc/proto-loader reads ../../proto/*.proto when the process
// starts, so the service definitions always match the protocol files.
//
//   node scaler.js --address 127.0.0.1:50052     # port 0 picks a free port
//   ebb scaler conformance 127.0.0.1:50052 -m file=/var/spool/jobs.txt
'use strict';

const fs = require('node:fs/promises');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { HealthImplementation } = require('grpc-health-check');
const { ReflectionService } = require('@grpc/reflection');

const VERSION = '0.1.0';
const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');
const PROTOS = ['ebb/scaler/v1/scaler.proto', 'externalscaler/externalscaler.proto'];
const V1 = 'ebb.scaler.v1.Scaler';
const KEDA = 'externalscaler.ExternalScaler';

// keepCase: field names exactly as in the .proto (snake_case in v1, camelCase in KEDA's).
const definition = protoLoader.loadSync(PROTOS, {
  includeDirs: [PROTO_ROOT], keepCase: true, enums: String, longs: Number, defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition);

// The metadata schema GetInfo reports; parseTrigger below follows it.
const METADATA = [
  { key: 'file', required: true, kind: 'VALUE_KIND_STRING',
    description: 'File listing the waiting jobs, one per line; its non-empty lines are the value.' },
  { key: 'target', default_value: '10', kind: 'VALUE_KIND_NUMBER',
    description: 'Lines one replica should handle.' },
  { key: 'activationTarget', default_value: '0', kind: 'VALUE_KIND_NUMBER',
    description: 'Active when the line count is strictly above this.' },
  { key: 'metricName', kind: 'VALUE_KIND_STRING',
    description: 'Metric name; default lines-<file base name>.' },
  { key: 'inFlightFile', kind: 'VALUE_KIND_STRING',
    description: 'File listing the jobs being worked on; its line count is the in-flight work.' },
];

/** A failure carrying the gRPC status code the protocol documents for it. */
class ScalerError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function invalid(key, problem) {
  return new ScalerError(grpc.status.INVALID_ARGUMENT, `invalid metadata \`${key}\`: ${problem}`);
}

function number(values, key, fallback) {
  if (values[key] === undefined) return fallback;
  const parsed = Number(values[key].trim() || NaN);
  if (!Number.isFinite(parsed)) throw invalid(key, `\`${values[key]}\` is not a number`);
  return parsed;
}

/** A trigger's configuration, parsed the same way for every RPC of both protocols. */
function parseTrigger(values) {
  const file = (values.file || '').trim();
  if (!file) throw invalid('file', 'is required');
  const target = number(values, 'target', 10);
  if (target <= 0) throw invalid('target', 'must be > 0');
  const base = path.parse(file).name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return {
    file,
    target,
    activationTarget: number(values, 'activationTarget', 0),
    metricName: values.metricName || `lines-${base || 'file'}`,
    inFlightFile: values.inFlightFile || null,
  };
}

/** Counts the non-empty lines of `file`; a missing file is NOT_FOUND. */
async function countLines(file) {
  let text;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') throw new ScalerError(grpc.status.NOT_FOUND, `file ${file} does not exist`);
    throw new ScalerError(grpc.status.UNAVAILABLE, `cannot read ${file}: ${error.code}`);
  }
  return text.split('\n').filter((line) => line.trim() !== '').length;
}

/** One measurement: the value, activity and (when configured) the in-flight count. */
async function measure(trigger) {
  const value = await countLines(trigger.file);
  const inFlight = trigger.inFlightFile ? await countLines(trigger.inFlightFile) : null;
  return { value, active: value > trigger.activationTarget, inFlight };
}

/** v1: plain metadata with the secrets over it (a secret wins over a plain key). */
function v1Values(request) {
  return { ...request.metadata, ...request.secrets };
}

/** KEDA: `xFromEnv` carries the resolved value of `x`, used unless `x` itself is given. */
function kedaValues(metadata) {
  const values = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (!key.endsWith('FromEnv')) values[key] = value;
  }
  for (const [key, value] of Object.entries(metadata)) {
    const base = key.slice(0, -'FromEnv'.length);
    if (key.endsWith('FromEnv') && base && value && values[base] === undefined) values[base] = value;
  }
  return values;
}

/** Wraps an async unary handler: ScalerError becomes its status, anything else INTERNAL. */
function unary(handler) {
  return (call, callback) => {
    handler(call.request).then(
      (response) => callback(null, response),
      (error) => callback(statusOf(error)),
    );
  };
}

function statusOf(error) {
  if (error instanceof ScalerError) return { code: error.code, details: error.message };
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

/** Streams the activity now, then on every change, until the caller cancels. */
function streamActivity(pushInterval, values, toMessage) {
  return (call) => {
    let trigger;
    try {
      trigger = parseTrigger(values(call.request));
    } catch (error) {
      call.emit('error', statusOf(error));
      return;
    }
    let last = null;
    let timer = null;
    const sample = async () => {
      try {
        const { active } = await measure(trigger);
        if (active !== last && !call.cancelled) {
          last = active;
          call.write(toMessage(active));
        }
        if (!call.cancelled) timer = setTimeout(sample, pushInterval);
      } catch (error) {
        call.emit('error', statusOf(error));
      }
    };
    call.on('cancelled', () => clearTimeout(timer));
    sample();
  };
}

function v1Service(pushInterval) {
  const spec = (trigger) => ({
    metric_name: trigger.metricName,
    target: trigger.target,
    activation_target: trigger.activationTarget,
    target_type: 'METRIC_TARGET_TYPE_AVERAGE_VALUE',
  });
  return {
    GetInfo: unary(async () => ({
      protocol_version: 1,
      name: 'node-lines',
      version: VERSION,
      description: 'Scales on the number of lines in a file (Node example)',
      capabilities: { push: true, in_flight: true, keda_compatible: true },
      metadata: METADATA,
    })),
    GetMetricSpec: unary(async (request) => ({ metric_specs: [spec(parseTrigger(v1Values(request)))] })),
    GetMetrics: unary(async (request) => {
      const trigger = parseTrigger(v1Values(request));
      const { value, active, inFlight } = await measure(trigger);
      const { metric_name, target, activation_target } = spec(trigger);
      return {
        metric_values: [{ metric_name, value, target, activation_target }],
        active,
        // Absent (not zero) when the trigger has no in-flight file: unknown.
        in_flight: inFlight === null ? null : { count: inFlight },
      };
    }),
    IsActive: unary(async (request) => ({ active: (await measure(parseTrigger(v1Values(request)))).active })),
    StreamIsActive: streamActivity(pushInterval, v1Values, (active) => ({ active })),
  };
}

function kedaService(pushInterval) {
  const parse = (scalerMetadata) => parseTrigger(kedaValues(scalerMetadata));
  return {
    IsActive: unary(async (request) => ({ result: (await measure(parse(request.scalerMetadata))).active })),
    GetMetricSpec: unary(async (request) => {
      const { metricName, target } = parse(request.scalerMetadata);
      // The integer field is for KEDA versions older than targetSizeFloat.
      return { metricSpecs: [{ metricName, targetSize: Math.ceil(target), targetSizeFloat: target }] };
    }),
    GetMetrics: unary(async (request) => {
      const trigger = parse(request.scaledObjectRef.scalerMetadata);
      const { value } = await measure(trigger);
      const metricName = request.metricName || trigger.metricName;
      return { metricValues: [{ metricName, metricValue: value, metricValueFloat: value }] };
    }),
    StreamIsActive: streamActivity(pushInterval, (request) => kedaValues(request.scalerMetadata),
      (result) => ({ result })),
  };
}

function main() {
  const { values: args } = parseArgs({
    options: {
      address: { type: 'string', default: process.env.SCALER_ADDRESS || '127.0.0.1:50052' },
      'push-interval': { type: 'string', default: process.env.SCALER_PUSH_INTERVAL || '0.2' },
    },
  });
  const pushInterval = Number(args['push-interval']) * 1000;
  if (!(pushInterval > 0)) {
    throw new Error(`--push-interval must be a positive number of seconds, got ${args['push-interval']}`);
  }

  const server = new grpc.Server();
  server.addService(loaded.ebb.scaler.v1.Scaler.service, v1Service(pushInterval));
  server.addService(loaded.externalscaler.ExternalScaler.service, kedaService(pushInterval));
  const health = new HealthImplementation({ '': 'SERVING', [V1]: 'SERVING', [KEDA]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);

  server.bindAsync(args.address, grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) {
      console.error(`cannot listen on ${args.address}: ${error.message}`);
      process.exit(1);
    }
    const host = args.address.slice(0, args.address.lastIndexOf(':'));
    console.log(`listening on ${host}:${port}`);
  });

  const stop = () => {
    for (const service of ['', V1, KEDA]) health.setStatus(service, 'NOT_SERVING');
    server.tryShutdown(() => process.exit(0));
    // Open push streams never end by themselves; cut them after a grace period.
    setTimeout(() => server.forceShutdown(), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (error) {
  // Bad flags: say what is wrong, without a stack trace.
  console.error(error.message);
  process.exit(2);
}
