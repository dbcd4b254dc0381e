"""The one error tree of tarndb.

Every error a user can see derives from :class:`TarnError` and carries the Postgres SQLSTATE
that the wire protocol reports and the HTTP status the REST API answers with::

    TarnError (XX000, 500)
    ├── SyntaxError_            42601  400   SQL that does not parse
    ├── FeatureNotSupported     0A000  400   valid SQL that tarndb does not run
    ├── UndefinedTable          42P01  404
    ├── UndefinedColumn         42703  400
    ├── UndefinedObject         42704  404   unknown index, type, role, setting
    ├── UndefinedFunction       42883  400
    ├── DuplicateTable          42P07  409
    ├── DuplicateObject         42710  409   index, role
    ├── DuplicateSchema         42P06  409
    ├── DuplicateColumn         42701  409
    ├── SyntaxErrorOrAccessRuleViolation 42000 400
    ├── GroupingError           42803  400
    ├── DatatypeMismatch        42804  400   an operator class for another type
    ├── InvalidColumnReference  42P10  400   ON CONFLICT target matching no unique rule
    ├── InvalidForeignKey       42830  400   REFERENCES naming no unique key
    ├── DependentObjectsStillExist 2BP01 409
    ├── InvalidSchemaName       3F000  404
    ├── DataError               22000  400   wrong array dimensions, dimension mismatch
    │   ├── InvalidTextRepresentation  22P02  bad literal for a type
    │   ├── NumericValueOutOfRange     22003
    │   ├── DivisionByZero             22012
    │   └── InvalidParameterValue      22023
    ├── IntegrityError          23000  409
    │   ├── UniqueViolation     23505
    │   ├── NotNullViolation    23502
    │   ├── CheckViolation      23514
    │   └── ForeignKeyViolation 23503
    ├── GeneratedAlways         428C9  400   writing a GENERATED ALWAYS column
    ├── CardinalityViolation    21000  400   ON CONFLICT DO UPDATE hitting a row twice
    ├── InvalidTransactionState 25000  409
    │   ├── InFailedTransaction 25P02
    │   └── NoActiveTransaction 25P01
    ├── InvalidSavepointSpecification 3B001 400
    ├── SerializationFailure    40001  409   a concurrent commit won
    ├── DeadlockDetected        40P01  409
    ├── LockNotAvailable        55P03  409   lock_timeout passed
    ├── IdleInTransactionTimeout 25P03 408
    ├── QueryCanceled           57014  408
    ├── InsufficientPrivilege   42501  403
    ├── ReservedName            42939  400   role names starting with pg_, reserved workspaces
    ├── ProgramLimitExceeded    54000  400   nesting or sizes past a limit
    ├── DiskFull                53100  507   no space left on the lake's device
    ├── OutOfMemory             53200  503   DuckDB out of memory
    ├── ConfigurationLimitExceeded 53400 503 temp_file_limit passed
    ├── InvalidPassword         28P01  401
    ├── ProtocolViolation       08P01  400
    ├── InvalidRequest          22023  400   HTTP body that is not what the endpoint takes
    ├── NotFound                42704  404   HTTP objects (files, jobs)
    └── InternalError           XX000  500
"""

from __future__ import annotations

from typing import Any, ClassVar


class TarnError(Exception):
    """Root of every tarndb error."""

    sqlstate: ClassVar[str] = "XX000"
    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        detail: str | None = None,
        hint: str | None = None,
        column: str | None = None,
        table: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: 1-based character offset into the statement text, as Postgres reports it.
        self.position = position
        self.detail = detail
        self.hint = hint
        self.column = column
        self.table = table

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of an error, used by the HTTP API."""
        out: dict[str, Any] = {
            "code": self.code,
            "sqlstate": self.sqlstate,
            "message": self.message,
        }
        for key in ("position", "detail", "hint", "column", "table"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out



class SyntaxError_(TarnError):  # noqa: N801 - avoid shadowing the builtin
    sqlstate = "42601"
    http_status = 400
    code = "syntax_error"


class FeatureNotSupported(TarnError):
    sqlstate = "0A000"
    http_status = 400
    code = "feature_not_supported"


class UndefinedTable(TarnError):
    sqlstate = "42P01"
    http_status = 404
    code = "undefined_table"


class UndefinedColumn(TarnError):
    sqlstate = "42703"
    http_status = 400
    code = "undefined_column"


class UndefinedObject(TarnError):
    sqlstate = "42704"
    http_status = 404
    code = "undefined_object"


class DuplicatePreparedStatement(TarnError):
    sqlstate = "42P05"
    http_status = 409
    code = "duplicate_prepared_statement"


class InvalidSqlStatementName(TarnError):
    """A prepared statement (protocol-level or SQL ``PREPARE``) that does not exist."""

    sqlstate = "26000"
    http_status = 400
    code = "invalid_sql_statement_name"


class UndefinedFunction(TarnError):
    sqlstate = "42883"
    http_status = 400
    code = "undefined_function"


class DuplicateTable(TarnError):
    sqlstate = "42P07"
    http_status = 409
    code = "duplicate_table"


class DuplicateObject(TarnError):
    sqlstate = "42710"
    http_status = 409
    code = "duplicate_object"


class DuplicateSchema(TarnError):
    sqlstate = "42P06"
    http_status = 409
    code = "duplicate_schema"


class DuplicateColumn(TarnError):
    sqlstate = "42701"
    http_status = 409
    code = "duplicate_column"


class SyntaxErrorOrAccessRuleViolation(TarnError):
    sqlstate = "42000"
    http_status = 400
    code = "syntax_error_or_access_rule_violation"


class GroupingError(TarnError):
    sqlstate = "42803"
    http_status = 400
    code = "grouping_error"


class DatatypeMismatch(TarnError):
    sqlstate = "42804"
    http_status = 400
    code = "datatype_mismatch"


class CannotCoerce(TarnError):
    sqlstate = "42846"
    http_status = 400
    code = "cannot_coerce"


class InvalidColumnReference(TarnError):
    sqlstate = "42P10"
    http_status = 400
    code = "invalid_column_reference"


class InvalidForeignKey(TarnError):
    sqlstate = "42830"
    http_status = 400
    code = "invalid_foreign_key"


class CardinalityViolation(TarnError):
    sqlstate = "21000"
    http_status = 400
    code = "cardinality_violation"


class InvalidTableDefinition(TarnError):
    sqlstate = "42P16"
    http_status = 400
    code = "invalid_table_definition"


class ObjectNotInPrerequisiteState(TarnError):
    sqlstate = "55000"
    http_status = 409
    code = "object_not_in_prerequisite_state"


class DependentObjectsStillExist(TarnError):
    sqlstate = "2BP01"
    http_status = 409
    code = "dependent_objects_still_exist"


class WrongObjectType(TarnError):
    sqlstate = "42809"
    http_status = 400
    code = "wrong_object_type"


class AmbiguousFunction(TarnError):
    sqlstate = "42725"
    http_status = 400
    code = "ambiguous_function"


class InvalidRecursion(TarnError):
    sqlstate = "42P17"
    http_status = 400
    code = "invalid_object_definition"


class InvalidSchemaName(TarnError):
    sqlstate = "3F000"
    http_status = 404
    code = "invalid_schema_name"


class DataError(TarnError):
    sqlstate = "22000"
    http_status = 400
    code = "data_exception"


class InvalidTextRepresentation(DataError):
    sqlstate = "22P02"
    code = "invalid_text_representation"


class NumericValueOutOfRange(DataError):
    sqlstate = "22003"
    code = "numeric_value_out_of_range"


class SequenceGeneratorLimitExceeded(DataError):
    sqlstate = "2200H"
    code = "sequence_generator_limit_exceeded"


class StringDataLengthMismatch(DataError):
    sqlstate = "22026"
    code = "string_data_length_mismatch"


class StringDataRightTruncation(DataError):
    sqlstate = "22001"
    code = "string_data_right_truncation"


class DivisionByZero(DataError):
    sqlstate = "22012"
    code = "division_by_zero"


class InvalidParameterValue(DataError):
    sqlstate = "22023"
    code = "invalid_parameter_value"


class NullValueNotAllowed(DataError):
    sqlstate = "22004"
    code = "null_value_not_allowed"


class IntegrityError(TarnError):
    sqlstate = "23000"
    http_status = 409
    code = "integrity_constraint_violation"


class UniqueViolation(IntegrityError):
    sqlstate = "23505"
    code = "unique_violation"


class NotNullViolation(IntegrityError):
    sqlstate = "23502"
    code = "not_null_violation"


class CheckViolation(IntegrityError):
    sqlstate = "23514"
    code = "check_violation"


class ForeignKeyViolation(IntegrityError):
    sqlstate = "23503"
    code = "foreign_key_violation"


class GeneratedAlways(TarnError):
    sqlstate = "428C9"
    http_status = 400
    code = "generated_always"


class InvalidTransactionState(TarnError):
    sqlstate = "25000"
    http_status = 409
    code = "invalid_transaction_state"


class InFailedTransaction(InvalidTransactionState):
    sqlstate = "25P02"
    code = "in_failed_sql_transaction"


class ActiveSqlTransaction(InvalidTransactionState):
    sqlstate = "25001"
    code = "active_sql_transaction"


class NoActiveTransaction(InvalidTransactionState):
    sqlstate = "25P01"
    code = "no_active_sql_transaction"


class InvalidSavepointSpecification(TarnError):
    sqlstate = "3B001"
    http_status = 400
    code = "invalid_savepoint_specification"


class SerializationFailure(TarnError):
    sqlstate = "40001"
    http_status = 409
    code = "serialization_failure"


class DeadlockDetected(TarnError):
    sqlstate = "40P01"
    http_status = 409
    code = "deadlock_detected"


class LockNotAvailable(TarnError):
    sqlstate = "55P03"
    http_status = 409
    code = "lock_not_available"


class IdleInTransactionTimeout(TarnError):
    sqlstate = "25P03"
    http_status = 408
    code = "idle_in_transaction_session_timeout"


class QueryCanceled(TarnError):
    sqlstate = "57014"
    http_status = 408
    code = "query_canceled"


class InsufficientPrivilege(TarnError):
    sqlstate = "42501"
    http_status = 403
    code = "insufficient_privilege"


class ReservedName(TarnError):
    sqlstate = "42939"
    http_status = 400
    code = "reserved_name"


class ProgramLimitExceeded(TarnError):
    sqlstate = "54000"
    http_status = 400
    code = "program_limit_exceeded"


class DiskFull(TarnError):
    sqlstate = "53100"
    http_status = 507
    code = "disk_full"


class OutOfMemory(TarnError):
    sqlstate = "53200"
    http_status = 503
    code = "out_of_memory"


class ConfigurationLimitExceeded(TarnError):
    sqlstate = "53400"
    http_status = 503
    code = "configuration_limit_exceeded"


class InvalidPassword(TarnError):
    sqlstate = "28P01"
    http_status = 401
    code = "invalid_password"


class ProtocolViolation(TarnError):
    sqlstate = "08P01"
    http_status = 400
    code = "protocol_violation"


class InvalidRequest(TarnError):
    sqlstate = "22023"
    http_status = 400
    code = "invalid_request"


class NotFound(TarnError):
    sqlstate = "42704"
    http_status = 404
    code = "not_found"


class InternalError(TarnError):
    sqlstate = "XX000"
    http_status = 500
    code = "internal_error"


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, TarnError)]
