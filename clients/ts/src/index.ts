// A small typed client for keyservice.v1.KeyService over real gRPC (HTTP/2),
// built on the code that `make gen` writes to gen/ts.
import { randomUUID } from "node:crypto";

import {
  fromJson,
  toJson,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
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
  ListRequestSchema,
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

/** Generate also takes a caller-chosen secret and an idempotency key. */
export interface GenerateSettings extends UpdateSettings {
  /** A caller-chosen secret; unsent, the server draws one. */
  key?: string;
  /** Defaults to a fresh UUID, so the server creates at most one key per call. */
  idempotencyKey?: string;
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

/** The filters and the page of List; an unsent filter matches every key. */
export interface ListFilters {
  /** Counted from 1; defaults to 1. */
  page?: number;
  /** Keys per page, from 1 to 100; defaults to 10. */
  size?: number;
  userId?: string;
  teamId?: string;
  organizationId?: string;
  /** A token id. */
  keyHash?: string;
  keyAlias?: string;
  /** Whole key objects instead of token ids. */
  returnFullObject?: boolean;
  includeTeamKeys?: boolean;
  sortBy?: string;
  sortOrder?: "asc" | "desc";
}

/** One page of List: token ids, or key objects (legacy JSON) with returnFullObject. */
export interface KeyPage {
  keys: (string | JsonObject)[];
  totalCount: number;
  currentPage: number;
  totalPages: number;
}

/** Options of one call. */
export interface CallOptions {
  /**
   * Deadline of this call in milliseconds; defaults to the client's
   * timeoutMs. As everywhere in Connect, 0 or less means no deadline.
   */
  timeoutMs?: number;
}

/**
 * A failed call: the gRPC code, the server's message, x-error-type and
 * x-error-param. A request that cannot be built from the arguments fails the
 * same way, with Code.InvalidArgument, before anything is sent.
 */
export class KeyServiceError extends Error {
  readonly code: Code;
  readonly errorType: string | undefined;
  readonly param: string | undefined;

  constructor(cause: ConnectError) {
    super(cause.rawMessage, { cause });
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
  /** Deadline of each call in milliseconds unless the call sets its own; default 10 s. */
  timeoutMs?: number;
  /** Connect interceptors (tracing, logging), run after the one that adds the key. */
  interceptors?: Interceptor[];
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
      interceptors: [auth, ...(options.interceptors ?? [])],
    });
    this.#client = createClient(KeyService, transport);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Create a key. Its idempotency key makes a repeat return the first key. */
  generate(settings: GenerateSettings = {}, options: CallOptions = {}): Promise<IssuedKey> {
    return this.#call(async () => {
      const { idempotencyKey, ...rest } = settings;
      const request = build(GenerateRequestSchema, rest);
      const headers = { "idempotency-key": idempotencyKey ?? randomUUID() };
      const response = await this.#client.generate(request, this.#options(options, headers));
      return issued(response.key);
    });
  }

  /** Rotate a key's secret. Its idempotency key makes a repeat rotate once. */
  regenerate(
    key: string,
    settings: RegenerateSettings = {},
    options: CallOptions = {},
  ): Promise<IssuedKey> {
    return this.#call(async () => {
      const { idempotencyKey, ...rest } = settings;
      const request = build(RegenerateRequestSchema, { ...rest, key });
      const headers = { "idempotency-key": idempotencyKey ?? randomUUID() };
      const response = await this.#client.regenerate(request, this.#options(options, headers));
      return issued(response.key);
    });
  }

  update(key: string, settings: UpdateSettings, options: CallOptions = {}): Promise<Key> {
    return this.#call(async () => {
      const request = build(UpdateRequestSchema, { ...settings, key });
      const response = await this.#client.update(request, this.#options(options));
      return required(response.key);
    });
  }

  delete(keys: string[], keyAliases: string[] = [], options: CallOptions = {}): Promise<string[]> {
    return this.#call(async () => {
      const response = await this.#client.delete({ keys, keyAliases }, this.#options(options));
      return response.deletedKeys;
    });
  }

  info(key = "", options: CallOptions = {}): Promise<Key> {
    return this.#call(async () => {
      const response = await this.#client.info({ key }, this.#options(options));
      return required(response.info);
    });
  }

  /** One page of the keys that match the filters (the List RPC). */
  list(filters: ListFilters = {}, options: CallOptions = {}): Promise<KeyPage> {
    return this.#call(async () => {
      const request = build(ListRequestSchema, filters);
      const response = await this.#client.list(request, this.#options(options));
      return {
        keys: response.keys.map((value) => {
          const item = toJson(ValueSchema, value);
          if (typeof item === "string") return item;
          if (item !== null && typeof item === "object" && !Array.isArray(item)) return item;
          throw internal("keyservice listed a key that is neither a token id nor an object");
        }),
        totalCount: response.totalCount,
        currentPage: response.currentPage,
        totalPages: response.totalPages,
      };
    });
  }

  block(key: string, options: CallOptions = {}): Promise<Key> {
    return this.#call(async () => {
      const response = await this.#client.block({ key }, this.#options(options));
      return required(response.key);
    });
  }

  unblock(key: string, options: CallOptions = {}): Promise<Key> {
    return this.#call(async () => {
      const response = await this.#client.unblock({ key }, this.#options(options));
      return required(response.key);
    });
  }

  verify(key: string, options: CallOptions = {}): Promise<Verification> {
    return this.#call(async () => {
      const response = await this.#client.verify({ key }, this.#options(options));
      return {
        valid: response.valid,
        reason: response.reason,
        inGracePeriod: response.inGracePeriod,
        ...(response.info ? { key: response.info } : {}),
      };
    });
  }

  #options(options: CallOptions, headers?: Record<string, string>) {
    return { timeoutMs: options.timeoutMs ?? this.#timeoutMs, ...(headers ? { headers } : {}) };
  }

  // Every method runs inside #call, so whatever fails (building the request,
  // the call, reading the answer) rejects with a KeyServiceError.
  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof KeyServiceError) throw err;
      throw new KeyServiceError(ConnectError.from(err));
    }
  }
}

function build<Desc extends DescMessage>(schema: Desc, value: object): MessageShape<Desc> {
  // The protobuf JSON mapping takes lowerCamelCase names, lists for ListValue
  // fields and objects for Struct fields; undefined means "not sent".
  const json = JSON.parse(JSON.stringify(value)) as JsonValue;
  try {
    return fromJson(schema, json);
  } catch (err) {
    // Such as a fraction for an integer setting: the caller's arguments are
    // at fault, as for a request the server refuses.
    const message = err instanceof Error ? err.message : String(err);
    throw new KeyServiceError(
      new ConnectError(message, Code.InvalidArgument, undefined, undefined, err),
    );
  }
}

function internal(message: string): KeyServiceError {
  return new KeyServiceError(new ConnectError(message, Code.Internal));
}

function required(key: Key | undefined): Key {
  if (key === undefined) throw internal("keyservice answered without a key");
  return key;
}

function issued(key: Key | undefined): IssuedKey {
  const settings = required(key);
  // Keep the secret in one place only; elsewhere `key` holds the token id.
  return { secret: settings.key, key: { ...settings, key: settings.tokenId } };
}
