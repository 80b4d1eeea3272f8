"""Contracts for the schema-profile tests: the README's example, the Pydantic shapes that
strict modes trip over, and hand-written schemas for what Pydantic does not emit."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, RootModel, create_model


class Sentiment(BaseModel):  # the README's example
    sentiment: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1, description="how sure you are of the sentiment")


class Ticket(BaseModel):
    title: str
    priority: Literal["low", "medium", "high"]
    tags: list[str]


class Contact(BaseModel):
    name: str
    email: str | None = None


class WithDefault(BaseModel):
    name: str
    count: int = 0


class Cat(BaseModel):
    pet_type: Literal["cat"]
    meows: int


class Dog(BaseModel):
    pet_type: Literal["dog"]
    barks: float


class Owner(BaseModel):
    pet: Annotated[Cat | Dog, Field(discriminator="pet_type")]


class AnyPet(BaseModel):
    pet: Cat | Dog


class Counts(BaseModel):
    counts: dict[str, int]


class Bounded(BaseModel):
    age: int = Field(ge=0, le=150)
    name: str = Field(min_length=1, max_length=50)
    tags: list[str] = Field(min_length=1, max_length=5)


class Priced(BaseModel):
    price: float = Field(multiple_of=0.5, gt=0)


class Pair(BaseModel):
    names: list[str] = Field(min_length=2)


class Customer(BaseModel):
    name: str


class LineItem(BaseModel):
    sku: str
    quantity: int


class Order(BaseModel):
    customer: Customer
    items: list[LineItem]


class Color(StrEnum):
    RED = "red"
    GREEN = "green"


class Paint(BaseModel):
    color: Color


class DescribedPaint(BaseModel):
    color: Color = Field(description="the main colour")


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    address: Address | None = None


class Node(BaseModel):
    label: str
    children: list[Node]


class Levels(BaseModel):
    level: Literal[1, 2, 3]
    flag: bool


class Event(BaseModel):
    when: datetime
    day: date
    id: UUID


class Link(BaseModel):
    url: HttpUrl


class Code(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}$")


class Point(BaseModel):
    pair: tuple[int, str]


class Unique(BaseModel):
    tags: set[str]


class Scores(BaseModel):
    scores: list[float | None]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class Example(BaseModel):
    name: str = Field(examples=["Ada"])


def _deep(levels: int) -> type[BaseModel]:
    model: type[BaseModel] = create_model("Level0", leaf=(str, ...))
    for i in range(1, levels):
        model = create_model(f"Level{i}", inner=(model, ...))
    return model


Deep = _deep(11)  # objects nested 11 levels: OpenAI takes 10
ManyOptional: type[BaseModel] = create_model(  # Anthropic takes 24 optional parameters
    "ManyOptional", **{f"f{i}": (str | None, None) for i in range(25)}
)
HugeEnum: type[BaseModel] = create_model(  # OpenAI takes 1,000 enum values in all
    "HugeEnum", code=(Literal[tuple(f"c{i}" for i in range(1001))], ...)
)


class Tags(RootModel[list[str]]):
    pass


# name -> contract: a Pydantic model or a JSON Schema
MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        Sentiment, Ticket, Contact, WithDefault, Owner, AnyPet, Counts, Bounded, Priced, Pair,
        Order, Paint, DescribedPaint, Person, Node, Levels, Event, Link, Code, Point, Unique,
        Scores, Open, Example, Deep, ManyOptional, HugeEnum, Tags,
    )
}  # fmt: skip

_X = {"type": "string"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "array-root": {"type": "array", "items": {"type": "integer"}},
    "enum-root": {"type": "string", "enum": ["a", "b"]},
    "properties-beside-anyOf": {
        "type": "object",
        "properties": {"a": _X},
        "anyOf": [{"required": ["a"]}, {"properties": {"b": {"type": "integer"}}}],
    },
    "overlapping-oneOf": {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "number"}, {"type": "integer"}]}},
        "required": ["v"],
    },
    "disjoint-oneOf": {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
        "required": ["v"],
    },
    "allOf-objects": {
        "allOf": [
            {"type": "object", "properties": {"a": _X}, "required": ["a"]},
            {"type": "object", "properties": {"b": _X}, "required": ["b"]},
        ]
    },
    "patternProperties": {
        "type": "object",
        "properties": {"a": _X},
        "patternProperties": {"^x-": _X},
        "required": ["a"],
    },
    "minLength": {
        "type": "object",
        "properties": {"x": {"type": "string", "minLength": 3}},
        "required": ["x"],
    },
    "not": {
        "type": "object",
        "properties": {"x": {"type": "string", "not": {"const": "bad"}}},
        "required": ["x"],
    },
    "if-then-beside-properties": {
        "type": "object",
        "properties": {"kind": _X},
        "required": ["kind"],
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"properties": {"extra": _X}, "required": ["extra"]},
    },
    "dependentRequired": {
        "type": "object",
        "properties": {"a": _X, "b": _X},
        "required": ["a", "b"],
        "dependentRequired": {"a": ["b"]},
    },
    "definitions-chain": {
        "type": "object",
        "properties": {"outer": {"$ref": "#/definitions/Outer"}},
        "required": ["outer"],
        "definitions": {
            "Outer": {
                "type": "object",
                "properties": {"inner": {"$ref": "#/definitions/Inner"}},
                "required": ["inner"],
            },
            "Inner": {"type": "object", "properties": {"v": _X}, "required": ["v"]},
        },
    },
    "type-list": {
        "type": "object",
        "properties": {"v": {"type": ["string", "null"]}},
        "required": ["v"],
    },
    "json-object": {"type": "object"},
    "const": {
        "type": "object",
        "properties": {"kind": {"const": "x"}},
        "required": ["kind"],
    },
    "untyped-property": {
        "type": "object",
        "properties": {"anything": {}},
        "required": ["anything"],
    },
}
