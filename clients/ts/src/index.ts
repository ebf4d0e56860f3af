// A small typed client for keyservice.v1.KeyService over real gRPC (HTTP/2),
// built on the code that `make gen` writes to gen/ts.
import { randomUUID } from "node:crypto";

import { fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import type { Key } from "../../../gen/ts/keyservice/v1/key_pb.js";
import {
  GenerateRequestSchema,
  KeyService,
  RegenerateRequestSchema,
  UpdateRequestSchema,
  VerifyReason,
} from "../../../gen/ts/keyservice/v1/key_service_pb.js";

export type { Key };
export { Code, VerifyReason };

/** Settings that Generate, Regenerate and Update accept; unsent keeps the stored value. */
export interface KeySettings {
  keyAlias?: string;
  userId?: string;
  teamId?: string;
  models?: string[];
  tags?: string[];
  spend?: number;
  maxBudget?: number;
  modelMaxBudget?: Record<string, { budget_limit?: number; time_period?: string }>;
  budgetDuration?: string;
  softBudget?: number;
  maxParallelRequests?: number;
  metadata?: JsonObject;
  tpmLimit?: number;
  rpmLimit?: number;
  modelRpmLimit?: Record<string, number>;
  modelTpmLimit?: Record<string, number>;
  allowedCacheControls?: string[];
  duration?: string;
  permissions?: JsonObject;
  guardrails?: string[];
  blocked?: boolean;
}

/** Generate and Update also take a shared budget and enforced parameters. */
export interface UpdateSettings extends KeySettings {
  budgetId?: string;
  enforcedParams?: string[];
}

/** Regenerate also takes a grace period, a chosen new secret and an idempotency key. */
export interface RegenerateSettings extends KeySettings {
  gracePeriod?: string;
  newKey?: string;
  /** Defaults to a fresh UUID, so the server rotates at most once per call. */
  idempotencyKey?: string;
}

/** A key just generated or rotated. `key.key` holds the token id, not the secret. */
export interface IssuedKey {
  secret: string;
  key: Key;
}

export interface Verification {
  valid: boolean;
  reason: VerifyReason;
  inGracePeriod: boolean;
  key?: Key;
}

/** A failed call: the gRPC code, the server's message, x-error-type and x-error-param. */
export class KeyServiceError extends Error {
  readonly code: Code;
  readonly errorType: string | undefined;
  readonly param: string | undefined;

  constructor(cause: ConnectError) {
    super(cause.rawMessage);
    this.name = "KeyServiceError";
    this.code = cause.code;
    this.errorType = cause.metadata.get("x-error-type") ?? undefined;
    this.param = cause.metadata.get("x-error-param") ?? undefined;
  }
}

export interface KeyServiceClientOptions {
  /** host:port of the gRPC server, such as 127.0.0.1:50051. */
  target: string;
  /** The caller's key, sent as `authorization: Bearer <key>`. */
  apiKey?: string;
  /** Deadline of each call in milliseconds; default 10 s. */
  timeoutMs?: number;
}

export class KeyServiceClient {
  readonly #client: Client<typeof KeyService>;
  readonly #timeoutMs: number;

  constructor(options: KeyServiceClientOptions) {
    const auth: Interceptor = (next) => async (req) => {
      if (options.apiKey) req.header.set("authorization", `Bearer ${options.apiKey}`);
      return next(req);
    };
    // Plain-text HTTP/2 ("h2c"): the transport speaks the gRPC protocol that
    // the Python grpc.aio server serves.
    const transport = createGrpcTransport({
      baseUrl: `http://${options.target}`,
      interceptors: [auth],
    });
    this.#client = createClient(KeyService, transport);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async generate(settings: UpdateSettings & { key?: string } = {}): Promise<IssuedKey> {
    const request = fromJson(GenerateRequestSchema, toJson(settings));
    const response = await this.#call(() =>
      this.#client.generate(request, { timeoutMs: this.#timeoutMs }),
    );
    return issued(response.key);
  }

  async regenerate(key: string, settings: RegenerateSettings = {}): Promise<IssuedKey> {
    const { idempotencyKey, ...rest } = settings;
    const request = fromJson(RegenerateRequestSchema, toJson({ ...rest, key }));
    const headers = { "idempotency-key": idempotencyKey ?? randomUUID() };
    const response = await this.#call(() =>
      this.#client.regenerate(request, { timeoutMs: this.#timeoutMs, headers }),
    );
    return issued(response.key);
  }

  async update(key: string, settings: UpdateSettings): Promise<Key> {
    const request = fromJson(UpdateRequestSchema, toJson({ ...settings, key }));
    const response = await this.#call(() =>
      this.#client.update(request, { timeoutMs: this.#timeoutMs }),
    );
    return required(response.key);
  }

  async delete(keys: string[], keyAliases: string[] = []): Promise<string[]> {
    const response = await this.#call(() =>
      this.#client.delete({ keys, keyAliases }, { timeoutMs: this.#timeoutMs }),
    );
    return response.deletedKeys;
  }

  async info(key = ""): Promise<Key> {
    const response = await this.#call(() =>
      this.#client.info({ key }, { timeoutMs: this.#timeoutMs }),
    );
    return required(response.info);
  }

  async block(key: string): Promise<Key> {
    const response = await this.#call(() =>
      this.#client.block({ key }, { timeoutMs: this.#timeoutMs }),
    );
    return required(response.key);
  }

  async unblock(key: string): Promise<Key> {
    const response = await this.#call(() =>
      this.#client.unblock({ key }, { timeoutMs: this.#timeoutMs }),
    );
    return required(response.key);
  }

  async verify(key: string): Promise<Verification> {
    const response = await this.#call(() =>
      this.#client.verify({ key }, { timeoutMs: this.#timeoutMs }),
    );
    return {
      valid: response.valid,
      reason: response.reason,
      inGracePeriod: response.inGracePeriod,
      ...(response.info ? { key: response.info } : {}),
    };
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new KeyServiceError(ConnectError.from(err));
    }
  }
}

function toJson(value: object): JsonValue {
  // The protobuf JSON mapping takes lowerCamelCase names, lists for ListValue
  // fields and objects for Struct fields; undefined means "not sent".
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

function required(key: Key | undefined): Key {
  if (key === undefined) throw new Error("keyservice answered without a key");
  return key;
}

function issued(key: Key | undefined): IssuedKey {
  const settings = required(key);
  // Keep the secret in one place only; elsewhere `key` holds the token id.
  return { secret: settings.key, key: { ...settings, key: settings.tokenId } };
}
