"""A reader of the dashboard's HTML on the standard library's parser (independent of rspfed)."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["Page"]


class Page(HTMLParser):
    """Elements (tag, attrs) in order, the text of each element by id/class path, all text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[tuple[tuple[str, dict[str, str | None]], ...], str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        entry = (tag, dict(attrs))
        self.elements.append(entry)
        if tag not in ("meta", "circle", "line", "polyline", "br"):
            self.stack.append(entry)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            top, _ = self.stack.pop()
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.stack), data))

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == name]

    def text_in(self, marker: str) -> list[str]:
        """Texts inside an element matching ``marker``: ``tag``, ``tag.class`` or ``#id``."""
        return [d for path, d in self.texts if any(_matches(e, marker) for e in path)]

    def all_text(self) -> str:
        return "".join(d for _, d in self.texts)


def _matches(element: tuple[str, dict[str, str | None]], marker: str) -> bool:
    tag, attrs = element
    if marker.startswith("#"):
        return attrs.get("id") == marker[1:]
    name, _, cls = marker.partition(".")
    return tag == name and (not cls or cls in (attrs.get("class") or "").split())
