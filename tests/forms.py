"""Reading the HTML pages as a browser would: the forms, their fields and their buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[str, str]] = field(default_factory=list)
    """(name, type) of every input, in order."""
    buttons: list[tuple[str, str]] = field(default_factory=list)

    def submission(
        self, values: dict[str, str] | None = None, button: tuple[str, str] | None = None
    ) -> dict[str, str]:
        """What a browser posts: every input's value (hidden ones as given), the pressed button."""
        data = dict(self.fields)
        data.update(values or {})
        if button is not None:
            data[button[0]] = button[1]
        return data


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
            self.forms[-1].inputs.append((a["name"], a.get("type", "text")))
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> tuple[list[Form], str]:
    parser = _Parser()
    parser.feed(html)
    return parser.forms, " ".join(" ".join(parser.text).split())
