// Runs against a live keyservice: tests/test_ts_client.py starts one and sets
// KEYSERVICE_TARGET and KEYSERVICE_API_KEY (the master key).
import assert from "node:assert/strict";
import { test } from "node:test";

import type { Interceptor } from "@connectrpc/connect";

import { Code, KeyServiceClient, KeyServiceError, VerifyReason } from "../src/index.js";

const target = process.env.KEYSERVICE_TARGET;
const apiKey = process.env.KEYSERVICE_API_KEY;
if (!target || !apiKey) {
  throw new Error("set KEYSERVICE_TARGET and KEYSERVICE_API_KEY to a running keyservice");
}
const client = new KeyServiceClient({ target, apiKey });

test("regenerate with settings keeps the old secret valid for the grace period", async () => {
  const issued = await client.generate({ keyAlias: "ts-client", models: ["gpt-4o"], maxBudget: 10 });
  assert.match(issued.secret, /^sk-/);
  assert.equal(issued.key.key, issued.key.tokenId);
  assert.deepEqual(issued.key.models, ["gpt-4o"]);

  const rotated = await client.regenerate(issued.secret, {
    maxBudget: 100,
    metadata: { team: "core-infra" },
    gracePeriod: "24h",
  });
  assert.notEqual(rotated.secret, issued.secret);
  assert.equal(rotated.key.id, issued.key.id);
  assert.equal(rotated.key.maxBudget, 100);
  assert.deepEqual(rotated.key.metadata, { team: "core-infra" });
  assert.equal(rotated.key.rotationCount, 1);

  const old = await client.verify(issued.secret);
  assert.equal(old.valid, true);
  assert.equal(old.inGracePeriod, true);
  const current = await client.verify(rotated.secret);
  assert.equal(current.valid, true);
  assert.equal(current.reason, VerifyReason.OK);
  assert.equal(current.inGracePeriod, false);
});

test("the other RPCs", async () => {
  const issued = await client.generate({ keyAlias: "ts-other", tags: ["a"] });
  assert.equal((await client.info(issued.key.tokenId)).keyAlias, "ts-other");
  assert.equal((await client.update(issued.secret, { rpmLimit: 7 })).rpmLimit, 7);
  assert.equal((await client.block(issued.secret)).blocked, true);
  assert.equal((await client.verify(issued.secret)).reason, VerifyReason.BLOCKED);
  assert.equal((await client.unblock(issued.secret)).blocked, false);
  assert.deepEqual(await client.delete([issued.secret]), [issued.key.tokenId]);
});

test("a missing key is NOT_FOUND with the server's error type", async () => {
  await assert.rejects(client.info("sk-" + "m".repeat(40)), (err: unknown) => {
    assert.ok(err instanceof KeyServiceError);
    assert.equal(err.code, Code.NotFound);
    assert.equal(err.errorType, "not_found_error");
    assert.ok(err.message.length > 0);
    return true;
  });
});

test("a call without a key is UNAUTHENTICATED", async () => {
  const anonymous = new KeyServiceClient({ target });
  await assert.rejects(anonymous.info(), (err: unknown) => {
    assert.ok(err instanceof KeyServiceError);
    assert.equal(err.code, Code.Unauthenticated);
    return true;
  });
});

test("list pages through keys as token ids or whole key objects", async () => {
  const teamId = `ts-list-${Date.now()}`;
  const first = await client.generate({ keyAlias: "ts-list-1", teamId });
  const second = await client.generate({ keyAlias: "ts-list-2", teamId });

  const ids = await client.list({ teamId, sortBy: "key_alias", sortOrder: "asc" });
  assert.deepEqual(ids.keys, [first.key.tokenId, second.key.tokenId]);
  assert.equal(ids.totalCount, 2);
  assert.equal(ids.currentPage, 1);

  const page = await client.list({
    teamId,
    returnFullObject: true,
    size: 1,
    page: 2,
    sortBy: "key_alias",
    sortOrder: "asc",
  });
  assert.equal(page.totalPages, 2);
  assert.equal(page.keys.length, 1);
  const [object] = page.keys;
  assert.ok(typeof object === "object");
  assert.equal(object.token_id, second.key.tokenId);
  assert.equal(object.key_alias, "ts-list-2");
});

test("generate sends an idempotency key, a fresh UUID unless one is given", async () => {
  const sent: (string | null)[] = [];
  const record: Interceptor = (next) => async (req) => {
    sent.push(req.header.get("idempotency-key"));
    return next(req);
  };
  const recording = new KeyServiceClient({ target, apiKey, interceptors: [record] });

  await recording.generate({ keyAlias: "ts-idem-default" });
  await recording.generate({ keyAlias: "ts-idem-default" });
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.equal(sent.length, 2);
  assert.match(sent[0] ?? "", uuid);
  assert.match(sent[1] ?? "", uuid);
  assert.notEqual(sent[0], sent[1]);

  // The same idempotency key again answers the first key instead of a second.
  const idempotencyKey = `ts-generate-${Date.now()}`;
  const once = await recording.generate({ keyAlias: "ts-idem", idempotencyKey });
  const again = await recording.generate({ keyAlias: "ts-idem", idempotencyKey });
  assert.equal(sent[2], idempotencyKey);
  assert.equal(again.secret, once.secret);
  assert.equal((await client.list({ keyAlias: "ts-idem" })).totalCount, 1);
});

test("a call's own timeout overrides the client's", async () => {
  // The deadline travels as the grpc-timeout header, which the server
  // enforces; reading it keeps the test free of timing.
  const timeouts: (string | null)[] = [];
  const record: Interceptor = (next) => async (req) => {
    timeouts.push(req.header.get("grpc-timeout"));
    return next(req);
  };
  const recording = new KeyServiceClient({
    target,
    apiKey,
    timeoutMs: 5_000,
    interceptors: [record],
  });
  const issued = await recording.generate({ keyAlias: "ts-timeout" }, { timeoutMs: 1_234 });

  assert.equal((await recording.info(issued.key.tokenId)).keyAlias, "ts-timeout");
  assert.equal((await recording.verify(issued.secret, { timeoutMs: 2_500 })).valid, true);
  assert.deepEqual(timeouts, ["1234m", "5000m", "2500m"]);
});

test("a request that cannot be built is a KeyServiceError, and nothing is sent", async () => {
  let calls = 0;
  const count: Interceptor = (next) => async (req) => {
    calls += 1;
    return next(req);
  };
  const counting = new KeyServiceClient({ target, apiKey, interceptors: [count] });

  await assert.rejects(counting.generate({ rpmLimit: 1.5 }), (err: unknown) => {
    assert.ok(err instanceof KeyServiceError);
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.message, /rpm_limit/);
    return true;
  });
  await assert.rejects(counting.list({ size: 2 ** 40 }), (err: unknown) => {
    assert.ok(err instanceof KeyServiceError);
    assert.equal(err.code, Code.InvalidArgument);
    return true;
  });
  assert.equal(calls, 0);
});
