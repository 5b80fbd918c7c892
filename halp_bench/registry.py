"""One small generic registry (name -> factory) for every kind of plugin.

Methods, encoders, datasets, protocols and skeleton layouts each get a `Registry`. Discovery is an
explicit import list (`halp_bench.plugins`) plus the entry-point groups `halp_bench.methods` and
`halp_bench.encoders` for plugins that live in other packages (importing the module an entry point
names registers what it defines); there is no import-time scanning.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Generic, TypeVar

from halp_bench.errors import ConfigError, HalpBenchWarning, UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUPS = ("halp_bench.methods", "halp_bench.encoders")


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


def _attach_settings(kind: str, name: str, cls: type, attribute: str, settings: type | None, extends_parent: bool = True) -> None:
    """Give a plugin class its settings class: its own, or its parent's (a subclass's own settings
    must extend the parent's, so that every key the parent reads is still there, unless
    `extends_parent` is False: the parent's code that reads them is replaced)."""
    if settings is None:
        if getattr(cls, attribute, None) is None:
            raise ConfigError(f"{kind} '{name}' ({cls.__name__}) has no settings class; pass settings=... to its register call")
        return
    if not dataclasses.is_dataclass(settings):
        raise ConfigError(f"{kind} '{name}': settings {settings.__name__} must be a dataclass")
    inherited = getattr(cls, attribute, None)
    if extends_parent and inherited is not None and not issubclass(settings, inherited):
        raise ConfigError(f"{kind} '{name}': settings {settings.__name__} must extend its parent's {inherited.__name__}")
    setattr(cls, attribute, settings)


def register_method(name: str, description: str = "", *, settings: type | None = None, augment: type | None = None):
    """Register a `Method` subclass under `name` with its own typed settings (`settings`, a
    `config.MethodSettings` dataclass; default: its parent class's) and, if it makes views of its
    own, their settings (`augment`, default: the standard views' `config.AugmentSettings`; a
    class that defines `make_views` itself reads only its own and may register any
    `config.ViewSettings`). Usable from external plugin packages too."""

    def add(cls: type) -> type:
        _attach_settings("method", name, cls, "settings_class", settings)
        if augment is not None:
            _attach_settings("method", name, cls, "augment_class", augment, extends_parent="make_views" not in vars(cls))
        METHODS.add(name, cls, description)
        return cls

    return add


def register_encoder(name: str, description: str = "", *, settings: type | None = None):
    """Register an `Encoder` subclass under `name` with its typed settings (a
    `config.EncoderSettings` dataclass; default: its parent class's)."""

    def add(cls: type) -> type:
        _attach_settings("encoder", name, cls, "settings_class", settings)
        ENCODERS.add(name, cls, description)
        return cls

    return add


def register_dataset(name: str, description: str = ""):
    return DATASETS.register(name, description)


def register_protocol(name: str, description: str = "", *, uses: tuple[str, ...] = ()):
    """Register a protocol function; `uses` names the config sections besides `eval` whose values
    change its numbers (e.g. `linear`), so only they enter its cells' identity."""

    def add(fn: Callable) -> Callable:
        fn.uses = uses  # type: ignore[attr-defined]
        PROTOCOLS.add(name, fn, description)
        return fn

    return add


_loaded = False


def load_plugins() -> None:
    """Import the built-in plugins and the entry points of installed packages (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import halp_bench.plugins  # noqa: F401  (the explicit import list of built-ins)

    for entry_point in [ep for group in ENTRY_POINT_GROUPS for ep in metadata.entry_points(group=group)]:
        if entry_point.module in sys.modules:  # one module may be named by several entry points
            continue
        try:
            entry_point.load()
        except Exception as exc:  # a broken third-party plugin must not take the tool down: reported once, left out
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            warnings.warn(
                BrokenPlugin(f"plugin '{entry_point.name}' ({entry_point.value}) failed to import and is left out ({reason}); fix or uninstall its package"),
                stacklevel=2,
            )


class BrokenPlugin(HalpBenchWarning):
    """An installed plugin whose module raised on import; what it would have registered is missing."""
