"""The catalogue of CDS services: loaded from YAML, validated, and served as discovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

from api.prefetch import validate_service_prefetch

BUNDLED_SERVICES = Path(__file__).with_name("services") / "default.yaml"
SCORER_TOPIC_SYSTEM = "urn:cds-control-plane:scorer"
OVERRIDE_REASON_SYSTEM = "urn:cds-control-plane:override-reason"


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str = Field(min_length=1)


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    label: str = Field(min_length=1)
    url: AnyHttpUrl
    type: Literal["absolute", "smart"]
    app_context: str | None = Field(default=None, alias="appContext")

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        body = super().model_dump(**kwargs)
        body["url"] = str(self.url)
        return body


class CardSettings(BaseModel):
    """What every card of a service carries besides the decision's own text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source_label: str = Field(default="cds-control-plane", alias="sourceLabel", min_length=1)
    source_url: AnyHttpUrl | None = Field(default=None, alias="sourceUrl")
    override_reasons: list[Coding] = Field(default_factory=list, alias="overrideReasons")
    links: list[Link] = Field(default_factory=list)

    def source(self, scorer_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "label": self.source_label,
            "topic": {"system": SCORER_TOPIC_SYSTEM, "code": scorer_id, "display": f"Risk score {scorer_id}"},
        }
        if self.source_url is not None:
            body["url"] = str(self.source_url)
        return body


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
    card: CardSettings = Field(default_factory=CardSettings)

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
        problems = [f"service {s.id!r}: {p}" for s in services for p in validate_service_prefetch(s.hook, s.prefetch)]
        if problems:
            raise ServiceCatalogError("; ".join(problems))
        self._by_id = {s.id: s for s in services}

    @classmethod
    def load(cls, path: Path = BUNDLED_SERVICES) -> ServiceCatalog:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ServiceCatalogError(f"cannot read the service catalogue {path}: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("services", []), list):
            raise ServiceCatalogError(f"{path}: expected a mapping with a list of `services`")
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
