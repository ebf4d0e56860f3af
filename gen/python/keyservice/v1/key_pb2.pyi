import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Key(_message.Message):
    __slots__ = ("id", "key", "key_name", "token_id", "token", "expires", "key_alias", "duration", "models", "spend", "max_budget", "user_id", "team_id", "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration", "allowed_cache_controls", "guardrails", "blocked", "budget_id", "tags", "enforced_params", "soft_budget", "metadata", "model_max_budget", "model_rpm_limit", "model_tpm_limit", "permissions", "budget_reset_at", "created_at", "updated_at", "rotation_count", "last_rotated_at")
    class ModelMaxBudgetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: BudgetConfig
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[BudgetConfig, _Mapping]] = ...) -> None: ...
    class ModelRpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ModelTpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CACHE_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_RESET_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ROTATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    key_name: str
    token_id: str
    token: str
    expires: _timestamp_pb2.Timestamp
    key_alias: str
    duration: str
    models: _containers.RepeatedScalarFieldContainer[str]
    spend: float
    max_budget: float
    user_id: str
    team_id: str
    max_parallel_requests: int
    tpm_limit: int
    rpm_limit: int
    budget_duration: str
    allowed_cache_controls: _containers.RepeatedScalarFieldContainer[str]
    guardrails: _containers.RepeatedScalarFieldContainer[str]
    blocked: bool
    budget_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    enforced_params: _containers.RepeatedScalarFieldContainer[str]
    soft_budget: float
    metadata: _struct_pb2.Struct
    model_max_budget: _containers.MessageMap[str, BudgetConfig]
    model_rpm_limit: _containers.ScalarMap[str, int]
    model_tpm_limit: _containers.ScalarMap[str, int]
    permissions: _struct_pb2.Struct
    budget_reset_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    rotation_count: int
    last_rotated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., key_name: _Optional[str] = ..., token_id: _Optional[str] = ..., token: _Optional[str] = ..., expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_alias: _Optional[str] = ..., duration: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., spend: _Optional[float] = ..., max_budget: _Optional[float] = ..., user_id: _Optional[str] = ..., team_id: _Optional[str] = ..., max_parallel_requests: _Optional[int] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., budget_duration: _Optional[str] = ..., allowed_cache_controls: _Optional[_Iterable[str]] = ..., guardrails: _Optional[_Iterable[str]] = ..., blocked: _Optional[bool] = ..., budget_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., enforced_params: _Optional[_Iterable[str]] = ..., soft_budget: _Optional[float] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_max_budget: _Optional[_Mapping[str, BudgetConfig]] = ..., model_rpm_limit: _Optional[_Mapping[str, int]] = ..., model_tpm_limit: _Optional[_Mapping[str, int]] = ..., permissions: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget_reset_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rotation_count: _Optional[int] = ..., last_rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BudgetConfig(_message.Message):
    __slots__ = ("budget_limit", "time_period")
    BUDGET_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TIME_PERIOD_FIELD_NUMBER: _ClassVar[int]
    budget_limit: float
    time_period: str
    def __init__(self, budget_limit: _Optional[float] = ..., time_period: _Optional[str] = ...) -> None: ...
