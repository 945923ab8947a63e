"""The field types of the HTTP bodies: what each accepts, how OpenAPI shows it, what a refusal says.

A field's type is a pydantic annotation with a :class:`Says` telling the
message for a value of the wrong kind (``reason: must be a text, not a
number``). What a value means (an id's characters, a price's decimals) is
the ledger's to check, with its own messages; the patterns here only
describe it in the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic_core import core_schema

__all__ = [
    "Body",
    "Says",
    "OneOf",
    "kind",
    "Text",
    "Name",
    "OrderId",
    "NodeId",
    "Symbol",
    "Scope",
    "Number",
    "Qty",
    "Signed",
    "Flag",
    "digits",
    "EXACT",
    "ID_PATTERN",
    "NODE_PATTERN",
    "SYMBOL_PATTERN",
]

#: Characters of an order or fill id (ledger.keys.ORDER_ID).
ID_PATTERN = "^[A-Za-z0-9._:/@#+=-]{1,128}$"
#: A node id: trader, strategy, account, desk, firm, venue.
NODE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SYMBOL_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$"


class Body(BaseModel):
    """A request body: exact JSON types (no coercion), and no field the route does not take."""

    model_config = ConfigDict(strict=True, extra="forbid")


@dataclass(frozen=True)
class Says:
    """What the answer says of a value the field refuses (``{input!r}`` shows the value).

    A value of the wrong JSON type also gets ``, not a number`` (or an array, ...).
    """

    wrong: str
    #: For an array longer than the field allows.
    too_many: str | None = None


#: Marks a money-like field: a decimal string or an integer, never a JSON float.
EXACT = Says("must be a string or integer")


@dataclass(frozen=True)
class OneOf:
    """One of these strings; validated and shown as an ``enum``."""

    values: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))


def kind(value: Any) -> str:
    """What a JSON (or msgpack) value is, for a message: ``an array``, ``a number``, ``null``."""
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        bytes: "binary data",
    }.get(type(value), "null")


def digits(value: Any) -> Any:
    """A whole number may come as digits in a string (``"1000"``), as the CLI takes it."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


_NUMBER_DOC = {
    "oneOf": [
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        {"type": "integer", "minimum": 1},
    ],
    "description": "A decimal string or an integer; JSON floats are refused.",
}

#: Free text: a reason, a ticket.
Text = Annotated[str, Says("must be a text")]
#: A name or id given as a string.
Name = Annotated[str, Says("must be a string")]
OrderId = Annotated[Name, WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]
NodeId = Annotated[Name, WithJsonSchema({"type": "string", "pattern": NODE_PATTERN})]
Symbol = Annotated[Name, WithJsonSchema({"type": "string", "pattern": SYMBOL_PATTERN})]
#: ``global`` or ``KIND:ID``.
Scope = Annotated[
    str,
    Says("must be a string such as 'desk:EQ-CASH' or 'global'"),
    WithJsonSchema({"type": "string", "description": "global or KIND:ID, e.g. desk:EQ-CASH"}),
]
#: Money or a price: parsed exactly by the ledger (decimal strings become Decimal, never float).
Number = Annotated[str | int, EXACT, WithJsonSchema(_NUMBER_DOC)]
#: Whole units.
Qty = Annotated[
    str | int,
    EXACT,
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": "^[0-9]+$"},
                {"type": "integer", "minimum": 1},
            ],
            "description": "Whole units, as a string or an integer; JSON floats are refused.",
        }
    ),
]
#: A signed amount (a P&L).
Signed = Annotated[
    str | int,
    EXACT,
    WithJsonSchema({"type": ["string", "integer"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}),
]
Flag = Annotated[bool, Says("must be true or false")]
