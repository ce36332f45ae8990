// Squall's JavaScript SDK: an action or a sensor as a plain ES module, built by
// `squall pack build` into a WebAssembly component of the `squall:plugin/action` or
// `squall:plugin/sensor` world (plugin-sdk/wit/squall.wit) with componentize-js
// (SpiderMonkey). The author's module imports nothing from Squall: everything arrives on
// `ctx`.
//
// An action (<pack>/actions/<name>/index.js, built to <pack>/actions/<name>.wasm):
//
//   export const parameters = { host: "string", count: "integer" };   // optional type checks
//   export async function run(ctx, params) {
//     ctx.log.info(`looking up ${params.host}`);
//     const r = await fetch(`https://dns.example/resolve?name=${params.host}`);
//     if (!r.ok) throw new ctx.ActionError("lookup failed", { status: r.status });
//     return await r.json();                      // the execution's result (JSON)
//   }
//
// A sensor (<pack>/sensors/<name>/index.js, built to <pack>/sensors/<name>.wasm):
//
//   export async function poll(ctx) {
//     const n = Number(ctx.datastore.get("n") ?? 0) + 1;
//     ctx.datastore.set("n", String(n));
//     ctx.emit("mypack.tick", { n });
//   }
//   export function webhook(ctx, request) {      // request: {url, headers, body, text(), json(), header(name)}
//     return { status: 202, body: { seen: request.body.length } };
//   }
//
// HTTP is the standard `fetch` (over wasi:http, under the pack's grants; a refused
// destination rejects with a TypeError and is recorded in the execution's denials). `ctx.log`
// has trace/debug/info/warn/error; `console.log` goes to the execution's stdout.

import { log as witLog } from "squall:plugin/log@0.1.1";

/// Writes to the execution's log (`squall:plugin/log`).
export const log = {
  trace: (message) => witLog("trace", String(message)),
  debug: (message) => witLog("debug", String(message)),
  info: (message) => witLog("info", String(message)),
  warn: (message) => witLog("warn", String(message)),
  error: (message) => witLog("error", String(message)),
};

/// Fails the run with `message`; `result` (any JSON value), when given, is recorded as the
/// failed execution's result (StackStorm's `(False, result)`), else `{"error": message}`.
export class ActionError extends Error {
  constructor(message, result) {
    super(String(message));
    this.name = "ActionError";
    this.result = result;
  }
}

const TYPES = {
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  array: (v) => Array.isArray(v),
};

function kindOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (Number.isInteger(value)) return "integer";
  return typeof value;
}

/// Checks `params` against the module's `parameters` ({name: "string" | "number" |
/// "integer" | "boolean" | "object" | "array"}); throws ActionError naming the parameter.
export function checkParameters(declared, params) {
  if (!declared) return;
  for (const [name, value] of Object.entries(params)) {
    const type = declared[name];
    if (type === undefined) {
      throw new ActionError(`parameter ${name}: not declared in the module's parameters`);
    }
    const check = TYPES[type];
    if (!check) throw new ActionError(`parameter ${name}: unknown type ${JSON.stringify(type)}`);
    if (value !== null && !check(value)) {
      throw new ActionError(
        `parameter ${name}: expected ${type}, got ${kindOf(value)} (${JSON.stringify(value).slice(0, 80)})`,
      );
    }
  }
}

function describe(e) {
  if (e instanceof ActionError) return e.message;
  if (e instanceof Error) {
    if (e.stack) console.error(`${e.name}: ${e.message}\n${e.stack}`);
    return `${e.name}: ${e.message}`;
  }
  return String(e);
}

/// The `run` export over the author's module (`run(ctx, params)`, maybe async).
export function action(app) {
  return async function run(witCtx, paramsJson) {
    const ctx = {
      executionId: witCtx.executionId,
      actionRef: witCtx.actionRef,
      pack: witCtx.pack,
      user: witCtx.user,
      log,
      ActionError,
    };
    try {
      if (typeof app.run !== "function") throw new ActionError("the module exports no run(ctx, params) function");
      const params = JSON.parse(paramsJson);
      checkParameters(app.parameters, params);
      const result = await app.run(ctx, params);
      return JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      const result = e instanceof ActionError && e.result !== undefined ? JSON.stringify(e.result) : undefined;
      throw { payload: { message: describe(e), resultJson: result } };
    }
  };
}
