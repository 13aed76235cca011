"""Every route of every service runs on the event loop, its dependencies included.

FastAPI runs a sync endpoint or a sync dependency in a worker thread, once per request: a
thread hop and a fight for the GIL with the loop, on a machine of two cores. The providers
are one-line attribute reads, so they are async and cost nothing.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import services
import shared.http


def _is_coroutine_callable(call: Callable[..., Any]) -> bool:
    # As FastAPI decides it: a function by itself, a callable object by its __call__.
    if inspect.isroutine(call):
        return inspect.iscoroutinefunction(call)
    if inspect.isclass(call):
        return False
    return inspect.iscoroutinefunction(type(call).__call__)


def _routers() -> Iterator[tuple[str, APIRouter]]:
    for package in (services, shared.http):
        for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".entrypoints." not in module_info.name and not module_info.name.startswith(
                "shared.http."
            ):
                continue
            module = importlib.import_module(module_info.name)
            for name, value in vars(module).items():
                if isinstance(value, APIRouter):
                    yield f"{module_info.name}.{name}", value


def _sync_calls(dependant: Dependant, where: str) -> Iterator[str]:
    for dependency in dependant.dependencies:
        call = dependency.call
        if call is not None and not _is_coroutine_callable(call):
            yield f"{where}: depends on sync {getattr(call, '__qualname__', call)!r}"
        yield from _sync_calls(dependency, where)


def test_every_route_and_dependency_is_async() -> None:
    routers = dict(_routers())
    assert len(routers) >= 10  # the walk found the services' routers
    sync: list[str] = []
    routes = 0
    for router_name, router in routers.items():
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            routes += 1
            where = f"{router_name} {sorted(route.methods or ())} {route.path}"
            if not _is_coroutine_callable(route.endpoint):
                sync.append(f"{where}: sync endpoint")
            sync.extend(_sync_calls(route.dependant, where))
    assert routes >= 50
    assert sync == []
