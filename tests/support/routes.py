"""The API routes declared in template.yaml, read from the template itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TemplateRoute:
    function: str
    event: str
    method: str
    path: str
    authorized: bool

    def sample_path(self) -> str:
        """The path with each {param} filled with a plausible id."""
        import re

        return re.sub(r"\{([^}]+)\}", lambda m: f"{m.group(1).split('_')[0]}_x1", self.path)


def template_routes(template_path: Path = ROOT / "template.yaml") -> list[TemplateRoute]:
    template = Template(template_path, stage="test")
    routes = []
    for lid in template.of_type("AWS::Serverless::Function"):
        events = (template.resources[lid].get("Properties") or {}).get("Events") or {}
        for name, event in events.items():
            if event.get("Type") != "Api":
                continue
            props = event["Properties"]
            auth = (props.get("Auth") or {}).get("Authorizer")
            routes.append(TemplateRoute(lid, name, props["Method"].upper(), props["Path"], auth != "NONE"))
    return routes
