from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from keyservice.v1 import key_pb2 as _key_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VerifyReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFY_REASON_UNSPECIFIED: _ClassVar[VerifyReason]
    VERIFY_REASON_OK: _ClassVar[VerifyReason]
    VERIFY_REASON_NOT_FOUND: _ClassVar[VerifyReason]
    VERIFY_REASON_EXPIRED: _ClassVar[VerifyReason]
    VERIFY_REASON_BLOCKED: _ClassVar[VerifyReason]
    VERIFY_REASON_OVER_BUDGET: _ClassVar[VerifyReason]
VERIFY_REASON_UNSPECIFIED: VerifyReason
VERIFY_REASON_OK: VerifyReason
VERIFY_REASON_NOT_FOUND: VerifyReason
VERIFY_REASON_EXPIRED: VerifyReason
VERIFY_REASON_BLOCKED: VerifyReason
VERIFY_REASON_OVER_BUDGET: VerifyReason

class GenerateRequest(_message.Message):
    __slots__ = ("key", "key_alias", "user_id", "team_id", "models", "tags", "spend", "max_budget", "model_max_budget", "budget_duration", "soft_budget", "max_parallel_requests", "metadata", "tpm_limit", "rpm_limit", "model_rpm_limit", "model_tpm_limit", "allowed_cache_controls", "duration", "permissions", "guardrails", "blocked", "budget_id", "enforced_params")
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CACHE_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    key: str
    key_alias: str
    user_id: str
    team_id: str
    models: _struct_pb2.ListValue
    tags: _struct_pb2.ListValue
    spend: float
    max_budget: float
    model_max_budget: _struct_pb2.Struct
    budget_duration: str
    soft_budget: float
    max_parallel_requests: int
    metadata: _struct_pb2.Struct
    tpm_limit: int
    rpm_limit: int
    model_rpm_limit: _struct_pb2.Struct
    model_tpm_limit: _struct_pb2.Struct
    allowed_cache_controls: _struct_pb2.ListValue
    duration: str
    permissions: _struct_pb2.Struct
    guardrails: _struct_pb2.ListValue
    blocked: bool
    budget_id: str
    enforced_params: _struct_pb2.ListValue
    def __init__(self, key: _Optional[str] = ..., key_alias: _Optional[str] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., models: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., tags: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., spend: _Optional[float] = ..., max_budget: _Optional[float] = ..., model_max_budget: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget_duration: _Optional[str] = ..., soft_budget: _Optional[float] = ..., max_parallel_requests: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., model_rpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_tpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., allowed_cache_controls: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., duration: _Optional[str] = ..., permissions: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., guardrails: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., blocked: _Optional[bool] = ..., budget_id: _Optional[str] = ..., enforced_params: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _key_pb2.Key
    def __init__(self, key: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class RegenerateRequest(_message.Message):
    __slots__ = ("key", "key_alias", "user_id", "team_id", "models", "tags", "spend", "max_budget", "model_max_budget", "budget_duration", "soft_budget", "max_parallel_requests", "metadata", "tpm_limit", "rpm_limit", "model_rpm_limit", "model_tpm_limit", "allowed_cache_controls", "duration", "permissions", "guardrails", "blocked", "grace_period", "new_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CACHE_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    NEW_KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    key_alias: str
    user_id: str
    team_id: str
    models: _struct_pb2.ListValue
    tags: _struct_pb2.ListValue
    spend: float
    max_budget: float
    model_max_budget: _struct_pb2.Struct
    budget_duration: str
    soft_budget: float
    max_parallel_requests: int
    metadata: _struct_pb2.Struct
    tpm_limit: int
    rpm_limit: int
    model_rpm_limit: _struct_pb2.Struct
    model_tpm_limit: _struct_pb2.Struct
    allowed_cache_controls: _struct_pb2.ListValue
    duration: str
    permissions: _struct_pb2.Struct
    guardrails: _struct_pb2.ListValue
    blocked: bool
    grace_period: str
    new_key: str
    def __init__(self, key: _Optional[str] = ..., key_alias: _Optional[str] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., models: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., tags: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., spend: _Optional[float] = ..., max_budget: _Optional[float] = ..., model_max_budget: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget_duration: _Optional[str] = ..., soft_budget: _Optional[float] = ..., max_parallel_requests: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., model_rpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_tpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., allowed_cache_controls: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., duration: _Optional[str] = ..., permissions: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., guardrails: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., blocked: _Optional[bool] = ..., grace_period: _Optional[str] = ..., new_key: _Optional[str] = ...) -> None: ...

class RegenerateResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _key_pb2.Key
    def __init__(self, key: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("key", "key_alias", "user_id", "team_id", "models", "tags", "spend", "max_budget", "model_max_budget", "budget_duration", "soft_budget", "max_parallel_requests", "metadata", "tpm_limit", "rpm_limit", "model_rpm_limit", "model_tpm_limit", "allowed_cache_controls", "duration", "permissions", "guardrails", "blocked", "budget_id", "enforced_params")
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CACHE_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    key: str
    key_alias: str
    user_id: str
    team_id: str
    models: _struct_pb2.ListValue
    tags: _struct_pb2.ListValue
    spend: float
    max_budget: float
    model_max_budget: _struct_pb2.Struct
    budget_duration: str
    soft_budget: float
    max_parallel_requests: int
    metadata: _struct_pb2.Struct
    tpm_limit: int
    rpm_limit: int
    model_rpm_limit: _struct_pb2.Struct
    model_tpm_limit: _struct_pb2.Struct
    allowed_cache_controls: _struct_pb2.ListValue
    duration: str
    permissions: _struct_pb2.Struct
    guardrails: _struct_pb2.ListValue
    blocked: bool
    budget_id: str
    enforced_params: _struct_pb2.ListValue
    def __init__(self, key: _Optional[str] = ..., key_alias: _Optional[str] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., models: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., tags: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., spend: _Optional[float] = ..., max_budget: _Optional[float] = ..., model_max_budget: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget_duration: _Optional[str] = ..., soft_budget: _Optional[float] = ..., max_parallel_requests: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., model_rpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_tpm_limit: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., allowed_cache_controls: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., duration: _Optional[str] = ..., permissions: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., guardrails: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., blocked: _Optional[bool] = ..., budget_id: _Optional[str] = ..., enforced_params: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...

class UpdateResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _key_pb2.Key
    def __init__(self, key: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("keys", "key_aliases")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIASES_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    key_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., key_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted_keys",)
    DELETED_KEYS_FIELD_NUMBER: _ClassVar[int]
    deleted_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("key", "info")
    KEY_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    key: str
    info: _key_pb2.Key
    def __init__(self, key: _Optional[str] = ..., info: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("page", "size", "user_id", "team_id", "organization_id", "key_hash", "key_alias", "return_full_object", "include_team_keys", "sort_by", "sort_order")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    RETURN_FULL_OBJECT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TEAM_KEYS_FIELD_NUMBER: _ClassVar[int]
    SORT_BY_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    page: int
    size: int
    user_id: str
    team_id: str
    organization_id: str
    key_hash: str
    key_alias: str
    return_full_object: bool
    include_team_keys: bool
    sort_by: str
    sort_order: str
    def __init__(self, page: _Optional[int] = ..., size: _Optional[int] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., key_hash: _Optional[str] = ..., key_alias: _Optional[str] = ..., return_full_object: _Optional[bool] = ..., include_team_keys: _Optional[bool] = ..., sort_by: _Optional[str] = ..., sort_order: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("keys", "total_count", "current_page", "total_pages")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PAGES_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    total_count: int
    current_page: int
    total_pages: int
    def __init__(self, keys: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., total_count: _Optional[int] = ..., current_page: _Optional[int] = ..., total_pages: _Optional[int] = ...) -> None: ...

class BlockRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class BlockResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _key_pb2.Key
    def __init__(self, key: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class UnblockRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class UnblockResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _key_pb2.Key
    def __init__(self, key: _Optional[_Union[_key_pb2.Key, _Mapping]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("valid", "reason", "info", "in_grace_period")
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    IN_GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reason: VerifyReason
    info: _key_pb2.Key
    in_grace_period: bool
    def __init__(self, valid: _Optional[bool] = ..., reason: _Optional[_Union[VerifyReason, str]] = ..., info: _Optional[_Union[_key_pb2.Key, _Mapping]] = ..., in_grace_period: _Optional[bool] = ...) -> None: ...
