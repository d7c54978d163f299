"""The dependency graph CloudFormation builds from a (translated) template, and its cycles.

An edge A -> B means CloudFormation must create B before A: A holds a `Ref` to B, an `Fn::GetAtt`
of B (list or "B.Attr" form), a `${B}` or `${B.Attr}` in an `Fn::Sub` (string form, or list form
minus the names its own variable map defines; `${!Literal}` is text, `${AWS::Region}` a pseudo
parameter), or names B in `DependsOn`. Both branches of `Fn::If` count, whatever the condition:
CloudFormation orders resources before it evaluates conditions, so a reference in the branch that
is never taken still closes a cycle.

Cycles are the strongly connected components (Tarjan) with more than one member, or one member
that references itself.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def sub_names(text: str, local_names: frozenset[str] = frozenset()) -> Iterator[str]:
    """The logical ids a Fn::Sub string refers to: `${X}` and `${X.Attr}`, not `${!X}`, pseudo
    parameters or the list form's own variables."""
    for match in _SUB_VARIABLE.finditer(text):
        name = match.group(1).strip()
        if not name or name.startswith("!"):
            continue
        name = name.split(".", 1)[0]
        if name.startswith("AWS::") or name in local_names:
            continue
        yield name


def referenced_names(node: Any) -> Iterator[str]:
    """Every name `node` refers to through Ref, Fn::GetAtt or Fn::Sub (parameters included)."""
    if isinstance(node, list):
        for item in node:
            yield from referenced_names(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "Ref" and isinstance(value, str):
            if not value.startswith("AWS::"):
                yield value
        elif key == "Fn::GetAtt":
            if isinstance(value, str):
                yield value.split(".", 1)[0]
            elif isinstance(value, list) and value and isinstance(value[0], str):
                yield value[0]
                yield from referenced_names(value[1:])  # the attribute may itself be a Ref
        elif key == "Fn::Sub":
            if isinstance(value, str):
                yield from sub_names(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                variables = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
                yield from sub_names(value[0], frozenset(variables))
                yield from referenced_names(variables)
        else:
            # Fn::If lands here: its condition name is a plain string, both branches are walked
            yield from referenced_names(value)


def dependency_graph(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """logical id -> the resources it depends on (only resources: parameters are not nodes)."""
    resources = template.get("Resources") or {}
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        edges: set[str] = set()
        if isinstance(resource, dict):
            for key in ("Properties", "UpdatePolicy", "CreationPolicy"):
                edges.update(name for name in referenced_names(resource.get(key)) if name in resources)
            depends_on = resource.get("DependsOn") or []
            for name in [depends_on] if isinstance(depends_on, str) else depends_on:
                if name in resources:
                    edges.add(name)
        graph[logical_id] = edges
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on big templates). Components sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycles(template: Mapping[str, Any]) -> list[list[str]]:
    """The template's reference cycles, each as its sorted members; [] when CloudFormation can order it."""
    graph = dependency_graph(template)
    found = [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    return sorted(found, key=lambda c: (-len(c), c))


def shortest_loop(graph: Mapping[str, set[str]], start: str, members: set[str]) -> list[str]:
    """One concrete loop start -> ... -> start inside a component (breadth first), for the message."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child == start:
                path = [node]
                while (before := previous[path[-1]]) is not None:
                    path.append(before)
                return [*reversed(path), start]
            if child in members and child not in previous:
                previous[child] = node
                queue.append(child)
    return [start]
