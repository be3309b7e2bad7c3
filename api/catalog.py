"""The catalogue of CDS services: loaded from YAML, validated, and served as discovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

BUNDLED_SERVICES = Path(__file__).with_name("services") / "default.yaml"


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    hook: str
    title: str
    description: str
    scorers: list[str] = Field(min_length=1)
    policy: str
    prefetch: dict[str, str] = Field(default_factory=dict)
    usage_requirements: str | None = Field(default=None, alias="usageRequirements")

    def discovery(self) -> dict[str, Any]:
        """This service as the discovery endpoint shows it: no null or empty members."""
        body: dict[str, Any] = {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description}
        if self.prefetch:
            body["prefetch"] = dict(self.prefetch)
        if self.usage_requirements:
            body["usageRequirements"] = self.usage_requirements
        return body


class ServiceCatalogError(ValueError):
    pass


class ServiceCatalog:
    def __init__(self, services: list[ServiceDefinition]) -> None:
        ids = [s.id for s in services]
        if len(ids) != len(set(ids)):
            raise ServiceCatalogError(f"duplicate service ids in catalogue: {sorted(ids)}")
        self._by_id = {s.id: s for s in services}

    @classmethod
    def load(cls, path: Path = BUNDLED_SERVICES) -> ServiceCatalog:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            services = [ServiceDefinition.model_validate(item) for item in raw.get("services", [])]
        except ValidationError as exc:
            raise ServiceCatalogError(f"{path}: {exc}") from exc
        return cls(services)

    def get(self, service_id: str) -> ServiceDefinition | None:
        return self._by_id.get(service_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self._by_id.values()]}
