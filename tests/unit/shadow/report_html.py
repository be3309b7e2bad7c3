"""Reading a rendered report back: its sections, the data on each figure's marks, and any external resource."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ReportPage:
    sections: list[str] = field(default_factory=list)
    # Per figure (its data-figure), the attributes of every mark that carries data.
    marks: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    external: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = ReportPage()
        self.figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.page.tags.add(tag)
        for name in ("src", "href", "xlink:href", "srcset", "action", "data"):
            value = a.get(name, "").strip().lower()
            if value.startswith(("http:", "https:", "//")) or "url(" in a.get("style", ""):
                self.page.external.append(f"{tag} {name}={value}")
        if tag == "section":
            self.page.sections.append(a.get("id", ""))
        if tag == "svg":
            self.figure = a.get("data-figure", "")
            self.page.marks[self.figure] = []
        elif self.figure is not None and any(k.startswith("data-") for k in a):
            self.page.marks[self.figure].append({"tag": tag, **a})

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.figure = None


def read_report(html: str) -> ReportPage:
    reader = _Reader()
    reader.feed(html)
    return reader.page
