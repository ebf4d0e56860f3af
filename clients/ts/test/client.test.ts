// Runs against a live keyservice: tests/test_ts_client.py starts one and sets
// KEYSERVICE_TARGET and KEYSERVICE_API_KEY (the master key).
import assert from "node:assert/strict";
import { test } from "node:test";

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
