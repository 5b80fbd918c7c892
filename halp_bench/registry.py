"""One small generic registry (name -> factory) for every kind of plugin.

Methods, encoders, datasets, protocols and skeleton layouts each get a `Registry`. Discovery is an
explicit import list (`halp_bench.plugins`) plus the `halp_bench.methods` entry-point group for
methods that live in other packages; there is no import-time scanning.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Generic, TypeVar

from halp_bench.errors import ConfigError, UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUP = "halp_bench.methods"


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    description: str


class Registry(Generic[T]):
    """Maps names to factories; a duplicate name is an error, an unknown name lists the known ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator: `@registry.register("name", "one line")`."""

        def add(factory: T) -> T:
            self.add(name, factory, description)
            return factory

        return add

    def add(self, name: str, factory: T, description: str = "") -> None:
        if name in self._entries:
            raise ConfigError(f"{self.kind} '{name}' is registered twice")
        if not description:
            doc = getattr(factory, "__doc__", None) or ""
            description = doc.strip().splitlines()[0] if doc.strip() else ""
        self._entries[name] = Entry(name, factory, description)

    def get(self, name: str) -> T:
        try:
            return self._entries[name].factory
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._entries)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())


METHODS: Registry = Registry("method")
ENCODERS: Registry = Registry("encoder")
DATASETS: Registry = Registry("dataset")
PROTOCOLS: Registry = Registry("protocol")
LAYOUTS: Registry = Registry("skeleton layout")


def register_method(name: str, description: str = ""):
    """Register a `Method` subclass under `name` (usable from external plugin packages too)."""
    return METHODS.register(name, description)


def register_encoder(name: str, description: str = ""):
    return ENCODERS.register(name, description)


def register_dataset(name: str, description: str = ""):
    return DATASETS.register(name, description)


def register_protocol(name: str, description: str = ""):
    return PROTOCOLS.register(name, description)


_loaded = False


def load_plugins() -> None:
    """Import the built-in plugins and the entry points of installed packages (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import halp_bench.plugins  # noqa: F401  (the explicit import list of built-ins)

    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in METHODS:
            continue
        try:
            entry_point.load()
        except Exception as exc:  # a broken third-party plugin must not take the tool down
            raise ConfigError(
                f"plugin '{entry_point.name}' ({entry_point.value}) failed to import: {exc}"
            ) from exc
