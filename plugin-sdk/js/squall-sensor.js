// The sensor half of Squall's JavaScript SDK (see squall.js): `onPoll` and `onWebhook` over
// the author's `poll(ctx)` and `webhook(ctx, request)`, with `ctx.datastore` (pack-local keys,
// kept with the call's trigger instances when it succeeds) and `ctx.emit(triggerRef, payload)`.

import * as witKv from "squall:plugin/datastore@0.1.1";
import { emit as witEmit } from "squall:plugin/emit@0.1.1";
import { log } from "./squall.js";

// A refused host call throws the host's reason (a string); make it an Error.
function host(f) {
  return (...args) => {
    try {
      return f(...args);
    } catch (e) {
      throw new Error(e && Object.hasOwn(e, "payload") ? String(e.payload) : String(e));
    }
  };
}

/// Pack-local keys (`squall:plugin/datastore`): values are strings, `undefined` when unset.
export const datastore = {
  get: host((name) => witKv.get(name) ?? undefined),
  set: host((name, value, ttlSeconds) => witKv.set(name, String(value), ttlSeconds)),
  delete: host((name) => witKv.delete(name)),
  getSystem: host((name) => witKv.getSystem(name) ?? undefined),
};

/// Emits a trigger instance of `triggerRef` with `payload` (an object).
export const emit = host((triggerRef, payload) => witEmit(triggerRef, JSON.stringify(payload)));

function context(witCtx) {
  return {
    sensorRef: witCtx.sensorRef,
    pack: witCtx.pack,
    config: JSON.parse(witCtx.configJson || "{}"),
    log,
    datastore,
    emit,
  };
}

function failure(e) {
  if (e instanceof Error && e.stack) console.error(`${e.name}: ${e.message}\n${e.stack}`);
  return { payload: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

/// The `on-poll` and `on-webhook` exports over the author's module.
export function sensor(app) {
  return {
    async onPoll(witCtx) {
      try {
        if (typeof app.poll !== "function") throw new Error("the module exports no poll(ctx) function");
        await app.poll(context(witCtx));
      } catch (e) {
        throw failure(e);
      }
    },
    async onWebhook(witCtx, request) {
      try {
        if (typeof app.webhook !== "function") throw new Error("the module exports no webhook(ctx, request) function");
        const body = request.body instanceof Uint8Array ? request.body : new Uint8Array(request.body);
        const req = {
          url: request.url,
          headers: request.headers,
          body,
          header: (name) => (request.headers.find(([k]) => k === name.toLowerCase()) ?? [])[1],
          text: () => new TextDecoder().decode(body),
          json: () => JSON.parse(new TextDecoder().decode(body)),
        };
        const answer = (await app.webhook(context(witCtx), req)) ?? {};
        return { status: answer.status ?? 202, bodyJson: JSON.stringify(answer.body ?? {}) };
      } catch (e) {
        throw failure(e);
      }
    },
  };
}
